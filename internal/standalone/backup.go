package standalone

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/runnerhub/webhooks/internal/httpapi"
	"github.com/runnerhub/webhooks/internal/httpjson"
	"github.com/runnerhub/webhooks/internal/storage/embedded"
)

// BackupPath answers POST with a consistent copy of the running stack's database, taken
// in one read transaction while deliveries go on being recorded (embedded.WriteBackup).
// It is POST, not GET, because it hands out everything the stack keeps: a token that
// may only read must not get it.
const BackupPath = "/api/admin/backup"

func backupRoutes(db *embedded.DB, log *slog.Logger) []httpapi.Route {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started, sending := time.Now(), false
		n, err := db.WriteBackup(w, func(size int64) {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
			w.Header().Set("Content-Disposition", `attachment; filename="runnerhub.db"`)
			sending = true
		})
		if err != nil {
			log.Error("backup failed", "written_bytes", n, "error", err)
			if !sending {
				httpjson.Error(w, http.StatusInternalServerError, "backup_failed", "the database could not be read for a backup")
			}
			// Otherwise the status line is sent: the body ends short of its
			// Content-Length, which every client takes for a failed download.
			return
		}
		log.Info("backup sent", "bytes", n, "duration", time.Since(started))
	})
	return []httpapi.Route{{Method: http.MethodPost, Pattern: BackupPath, Handler: h}}
}
