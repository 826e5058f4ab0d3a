package standalone

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/runnerhub/webhooks/internal/config"
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

// BackupCommand is `backup [-url URL] [-token TOKEN] FILE`: it saves a consistent copy of
// the running local stack's database to FILE. It asks the stack for it (bbolt locks the
// file, so no second process can read it while the stack runs), checks that the copy is
// whole and a sound database, and only then puts it in place, so a failed backup never
// replaces a good one. -h prints the flags and returns flag.ErrHelp.
func BackupCommand(ctx context.Context, cfg config.Config, args []string, out, errOut io.Writer) error {
	fs := newFlags("backup", "backup [-url URL] [-token TOKEN] FILE", errOut)
	url := fs.String("url", localBase(cfg)+BackupPath, "backup endpoint of the running stack")
	token := fs.String("token", APIToken(cfg), "admin API token (default: the first of RUNNERHUB_API_TOKENS, else the one the stack keeps in its data directory)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *token == "" {
		return errors.New("usage: backup [-url URL] [-token TOKEN] FILE (an admin token of the running stack: -token, RUNNERHUB_API_TOKENS or the data directory's api-token)")
	}
	target := fs.Arg(0)
	n, err := download(ctx, *url, *token, target)
	if err != nil {
		return fmt.Errorf("backup to %s: %w", target, err)
	}
	fmt.Fprintf(out, "backed up %d bytes to %s\n", n, target)
	return nil
}

// download fetches the backup into a temporary file beside target, checks it and renames
// it to target.
func download(ctx context.Context, url, token, target string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("is the local stack running? %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s answered %s%s", url, resp.Status, errorMessage(resp.Body))
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".partial-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	n, err := io.Copy(tmp, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("received %d of %d bytes", n, resp.ContentLength)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return n, err
	}
	if err := embedded.Verify(tmp.Name()); err != nil {
		return n, fmt.Errorf("the copy received does not check out: %w", err)
	}
	return n, os.Rename(tmp.Name(), target)
}

// errorMessage is the message of a JSON error answer, for the command line.
func errorMessage(body io.Reader) string {
	var answer httpjson.Failure
	if err := json.NewDecoder(io.LimitReader(body, 64<<10)).Decode(&answer); err != nil || answer.Error.Message == "" {
		return ""
	}
	return ": " + answer.Error.Message
}
