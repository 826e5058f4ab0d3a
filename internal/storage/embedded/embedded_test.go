package embedded_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/delivery/deliverytest"
	"github.com/runnerhub/webhooks/internal/storage/embedded"
)

func open(t *testing.T) *embedded.DB {
	t.Helper()
	db, err := embedded.Open(filepath.Join(t.TempDir(), "runnerhub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestStoreConformance(t *testing.T) {
	deliverytest.StoreSuite(t, func(t *testing.T) delivery.Store { return open(t).Store() })
}

func TestQueueConformance(t *testing.T) {
	deliverytest.QueueSuite(t, func(t *testing.T) (delivery.Queue, func(context.Context) []delivery.Message) {
		q := open(t).Queue(3)
		return q, func(ctx context.Context) []delivery.Message {
			var out []delivery.Message
			for {
				ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
				items, _ := q.Receive(ctx, 100)
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
	})
}

func msg(id string) delivery.Message {
	return delivery.Message{Key: delivery.Key{HookID: "1", DeliveryID: id}, Event: "push"}
}

func record(id string) *delivery.Record {
	return &delivery.Record{Key: delivery.Key{HookID: "1", DeliveryID: id}, Event: "push",
		ReceivedAt: time.Now(), Payload: []byte(`{}`), State: delivery.Received}
}

// Whatever was recorded and not finished when the process stopped — queued, or taken by
// the consumer but not done — is queued again after the next start; finished ones are not.
func TestUnfinishedDeliveriesAreRecoveredAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runnerhub.db")
	db, err := embedded.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store, q := db.Store(), db.Queue(3)
	for _, id := range []string{"a", "b", "c"} {
		rec := record(id)
		if _, err := store.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		if err := q.Enqueue(ctx, delivery.Message{Key: rec.Key, Event: rec.Event}); err != nil {
			t.Fatal(err)
		}
	}
	items, err := q.Receive(ctx, 2)
	if err != nil || len(items) != 2 {
		t.Fatalf("receive: %v %v", items, err)
	}
	// "a" is finished; "b" is taken but the process dies before it finishes.
	if err := store.Finish(ctx, items[0].Key, delivery.Processed, "done", time.Now()); err != nil {
		t.Fatal(err)
	}
	q.Ack(items[0].ID)
	db.Close()

	db, err = embedded.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q = db.Queue(3)
	if n, err := q.Recover(); err != nil || n != 2 {
		t.Fatalf("recovered %d, %v", n, err)
	}
	items, err = q.Receive(ctx, 10)
	if err != nil || len(items) != 2 || items[0].DeliveryID != "b" || items[1].DeliveryID != "c" {
		t.Fatalf("after restart: %+v %v", items, err)
	}
	if pending, _, _ := q.Depth(); pending != 2 {
		t.Fatalf("pending %d, want 2", pending)
	}
}

func TestQueueDeadLettersAfterMaxAttempts(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	q := db.Queue(2)
	if _, err := db.Store().Create(ctx, record("poison")); err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(ctx, msg("poison")); err != nil {
		t.Fatal(err)
	}
	for attempt := range 2 {
		items, err := q.Receive(ctx, 1)
		if err != nil || len(items) != 1 || items[0].Attempts != attempt {
			t.Fatalf("attempt %d: %+v %v", attempt, items, err)
		}
		if err := q.Nack(items[0].ID, errors.New("cannot parse")); err != nil {
			t.Fatal(err)
		}
	}
	pending, dead, err := q.Depth()
	if err != nil || pending != 0 || dead != 1 {
		t.Fatalf("depth pending=%d dead=%d %v", pending, dead, err)
	}
	if n, _ := q.Recover(); n != 0 {
		t.Fatal("a dead-lettered delivery would be retried at the next start")
	}
	letters, err := q.DeadLetters()
	if err != nil || len(letters) != 1 || letters[0].DeliveryID != "poison" || letters[0].LastError != "cannot parse" || letters[0].Attempts != 2 {
		t.Fatalf("dead letters %+v %v", letters, err)
	}
}

func TestReceiveWaitsForEnqueue(t *testing.T) {
	q := open(t).Queue(3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(chan []embedded.Item, 1)
	go func() {
		items, _ := q.Receive(ctx, 10)
		got <- items
	}()
	time.Sleep(20 * time.Millisecond)
	if err := q.Enqueue(ctx, msg("late")); err != nil {
		t.Fatal(err)
	}
	if items := <-got; len(items) != 1 || items[0].DeliveryID != "late" {
		t.Fatalf("got %+v", items)
	}
}
