package embedded_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/testenv"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// A database written before the time index existed gets one at the next start, holding
// every delivery recorded until then.
func TestTimeIndexIsBuiltForOlderDatabases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runnerhub.db")
	db := openAt(t, path)
	ctx := context.Background()
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for i, id := range []string{"old-1", "old-2", "old-3"} {
		rec := record(id)
		rec.ReceivedAt = at.Add(time.Duration(i) * time.Minute)
		if _, err := db.Store().Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	dropTimeIndex(t, path)

	db = openAt(t, path)
	defer db.Close()
	page, err := db.Store().List(ctx, delivery.ListQuery{Since: at, Until: at.Add(time.Hour), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range page.Records {
		ids = append(ids, r.DeliveryID)
	}
	if len(ids) != 3 || ids[0] != "old-3" || ids[2] != "old-1" {
		t.Fatalf("listed %v after the index was rebuilt, want old-3, old-2, old-1", ids)
	}
}

// dropTimeIndex makes path look like a database of a version without the time index.
func dropTimeIndex(t *testing.T, path string) {
	t.Helper()
	raw, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	err = raw.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("byTime")) })
	if err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
		t.Fatal(err)
	}
}

func TestDeadLettersPort(t *testing.T) {
	ctx := context.Background()
	db := testenv.Embedded(t)
	q := db.Queue(1)
	for _, id := range []string{"ok", "poison"} {
		accept(t, db.Store(), q, id)
	}
	items, _ := q.Receive(ctx, 2)
	if err := q.Nack(items[1].ID, errors.New("bug")); err != nil {
		t.Fatal(err)
	}
	var port delivery.DeadLetters = q
	if d, err := port.Depths(ctx); err != nil || d != (delivery.Depths{Queued: 1, Dead: 1}) {
		t.Fatalf("depths %+v %v, want 1 queued (in flight), 1 dead", d, err)
	}
	if n, err := port.Redrive(ctx); err != nil || n != 1 {
		t.Fatalf("redrive moved %d, %v", n, err)
	}
	if d, err := port.Depths(ctx); err != nil || d != (delivery.Depths{Queued: 2}) {
		t.Fatalf("depths after redrive %+v %v, want 2 queued, none dead", d, err)
	}
}
