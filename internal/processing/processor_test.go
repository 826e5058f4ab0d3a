package processing

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/storage/embedded"
)

type flakyStore struct {
	delivery.Store
	failGet error
}

func (f *flakyStore) Get(ctx context.Context, k delivery.Key) (*delivery.Record, error) {
	if f.failGet != nil && k.DeliveryID == "flaky" {
		return nil, f.failGet
	}
	return f.Store.Get(ctx, k)
}

func newProcessor(t *testing.T) (*Processor, *flakyStore) {
	db, err := embedded.Open(filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store := &flakyStore{Store: db.Store()}
	return &Processor{Store: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now}, store
}

func record(id, event string) *delivery.Record {
	return &delivery.Record{Key: delivery.Key{HookID: "1", DeliveryID: id}, Event: event,
		ReceivedAt: time.Now(), Payload: []byte(`{}`), State: delivery.Received}
}

func TestProcessMarksOutcomes(t *testing.T) {
	p, store := newProcessor(t)
	ctx := context.Background()
	for _, c := range []struct {
		event string
		state delivery.State
	}{{"ping", delivery.Processed}, {"workflow_job", delivery.Ignored}, {"star", delivery.Ignored}} {
		rec := record("d-"+c.event, c.event)
		if _, err := store.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		msg := delivery.Message{Key: rec.Key, Event: c.event}
		if err := p.Process(ctx, msg); err != nil {
			t.Fatal(err)
		}
		got, _ := store.Get(ctx, rec.Key)
		if got.State != c.state || got.Outcome == "" || got.ProcessedAt.IsZero() {
			t.Fatalf("%s: %+v", c.event, got)
		}
		// Processing again (SQS delivers at least once) changes nothing.
		first := got.ProcessedAt
		if err := p.Process(ctx, msg); err != nil {
			t.Fatal(err)
		}
		if again, _ := store.Get(ctx, rec.Key); !again.ProcessedAt.Equal(first) {
			t.Fatalf("%s: reprocessing changed the record", c.event)
		}
	}
}

func TestHandleSQSReportsEachFailureAlone(t *testing.T) {
	p, store := newProcessor(t)
	ctx := context.Background()
	for _, id := range []string{"ok", "flaky"} {
		if _, err := store.Create(ctx, record(id, "ping")); err != nil {
			t.Fatal(err)
		}
	}
	store.failGet = errors.New("throttled")
	resp, err := p.HandleSQS(ctx, events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m-ok", Body: `{"hookId":"1","deliveryId":"ok","event":"ping"}`},
		{MessageId: "m-flaky", Body: `{"hookId":"1","deliveryId":"flaky","event":"ping"}`},
		{MessageId: "m-poison", Body: `not json`},
		{MessageId: "m-unknown", Body: `{"hookId":"1","deliveryId":"never-recorded","event":"ping"}`},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	if len(failed) != 2 || failed[0] != "m-flaky" || failed[1] != "m-poison" {
		t.Fatalf("batch item failures %v, want [m-flaky m-poison]", failed)
	}
	if rec, _ := store.Get(ctx, delivery.Key{HookID: "1", DeliveryID: "ok"}); rec.State != delivery.Processed {
		t.Fatalf("the good record was not processed: %+v", rec)
	}
	if rec, _ := store.Store.Get(ctx, delivery.Key{HookID: "1", DeliveryID: "flaky"}); rec.State != delivery.Received {
		t.Fatalf("the failed record was marked: %+v", rec)
	}
}
