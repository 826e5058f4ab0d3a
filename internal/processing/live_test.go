package processing_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/processing"
	"github.com/runnerhub/webhooks/internal/storage/embedded"
)

// publisherFunc adapts a function to live.Publisher.
type publisherFunc func(ctx context.Context, rec *delivery.Record, plan *jobs.Plan) error

func (f publisherFunc) Publish(ctx context.Context, rec *delivery.Record, plan *jobs.Plan) error {
	return f(ctx, rec, plan)
}

// Live updates follow the commit: they see the committed plan, and whatever they do
// (fail, hang) the delivery is processed, exactly once.
func TestLivePublishFollowsTheCommitAndNeverFailsIt(t *testing.T) {
	tests := []struct {
		name    string
		publish func(ctx context.Context) error
	}{
		{"succeeds", func(context.Context) error { return nil }},
		{"fails", func(context.Context) error { return errors.New("API Gateway unavailable") }},
		{"hangs until its deadline", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := embedded.Open(filepath.Join(t.TempDir(), "p.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			store := db.Store()
			ctx := context.Background()
			var calls int
			p := &processing.Processor{
				Deliveries: store, Counters: store, Engine: &jobs.Engine{Store: store},
				Signals: discardSignals{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now,
				Live: publisherFunc(func(pctx context.Context, rec *delivery.Record, plan *jobs.Plan) error {
					calls++
					if _, ok := pctx.Deadline(); !ok {
						t.Error("Publish runs without a deadline")
					}
					got, err := store.Get(ctx, rec.Key)
					if err != nil || got.State != delivery.Processed || plan.State != delivery.Processed || plan.Change.Finish == nil {
						t.Errorf("Publish before the commit: stored %v (%v), plan %s", got.State, err, plan.State)
					}
					return tc.publish(pctx)
				}),
			}
			rec := &delivery.Record{Key: delivery.Key{HookID: "1", DeliveryID: "live"}, Event: "ping",
				ReceivedAt: time.Now().UTC(), Payload: []byte(`{"zen":"z"}`), State: delivery.Received}
			if _, err := store.Create(ctx, rec); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			for range 2 { // the second time the delivery is already done: nothing to announce
				if err := p.Process(ctx, delivery.Message{Key: rec.Key, Event: rec.Event}); err != nil {
					t.Fatalf("Process: %v", err)
				}
			}
			if calls != 1 {
				t.Errorf("Publish called %d times, want once", calls)
			}
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("processing took %v: a hanging publisher held it up", elapsed)
			}
		})
	}
}
