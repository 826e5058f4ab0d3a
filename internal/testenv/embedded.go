package testenv

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/storage/embedded"
)

// Embedded opens a fresh embedded database in the test's temporary directory, closed
// when the test ends.
func Embedded(t testing.TB) *embedded.DB {
	t.Helper()
	db, err := embedded.Open(filepath.Join(t.TempDir(), "runnerhub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// drainWait is how long DrainEmbedded waits for one more message before it takes the
// queue for empty: the queue is in-process, so what was enqueued is there at once.
const drainWait = 50 * time.Millisecond

// DrainEmbedded receives and acknowledges every message q holds, in the order received,
// until a receive waits drainWait for nothing.
func DrainEmbedded(ctx context.Context, q *embedded.Queue) []delivery.Message {
	var out []delivery.Message
	for {
		waitCtx, cancel := context.WithTimeout(ctx, drainWait)
		items, _ := q.Receive(waitCtx, 100)
		cancel()
		if len(items) == 0 {
			return out
		}
		for _, it := range items {
			out = append(out, it.Message)
			q.Ack(it.ID)
		}
	}
}
