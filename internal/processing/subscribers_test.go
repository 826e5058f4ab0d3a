package processing_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/live"
	"github.com/runnerhub/webhooks/internal/live/localhub"
	"github.com/runnerhub/webhooks/internal/metrics"
)

// outboxFunc adapts a function to live.Outbox.
type outboxFunc func(ctx context.Context, a live.Announcement) error

func (f outboxFunc) Publish(ctx context.Context, a live.Announcement) error { return f(ctx, a) }

// The engine's subscribers hear of each commit once, after it: they see the committed
// state, and whatever handing the live update on does (fail, hang) the delivery is
// processed, exactly once, without waiting for it.
func TestSubscribersFollowTheCommitAndNeverFailIt(t *testing.T) {
	tests := []struct {
		name    string
		publish func(ctx context.Context) error
	}{
		{"live update succeeds", func(context.Context) error { return nil }},
		{"live update fails", func(context.Context) error { return errors.New("SQS unavailable") }},
		{"live update hangs until its deadline", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := embeddedStores(t)
			p, _ := newProcessor(t, s)
			ctx := context.Background()
			var heard []*jobs.Commit
			var published int
			announcer := &live.Announcer{Log: slog.New(slog.DiscardHandler),
				Outbox: outboxFunc(func(pctx context.Context, _ live.Announcement) error {
					published++
					if _, ok := pctx.Deadline(); !ok {
						t.Error("a live update is handed on without a deadline")
					}
					return tc.publish(pctx)
				})}
			p.Engine.Subscribe(jobs.SubscriberFunc(func(_ context.Context, c *jobs.Commit) {
				heard = append(heard, c)
				got, err := s.Deliveries.Get(ctx, c.Delivery.Key)
				if err != nil || got.State != delivery.Processed || c.State != delivery.Processed || c.Change.Finish == nil {
					t.Errorf("a subscriber heard of the commit before it: stored %v (%v), commit %s", got.State, err, c.State)
				}
			}), announcer)
			rec := record(t, s, "live", "ping", []byte(`{"zen":"z"}`))
			start := time.Now()
			for range 2 { // the second time the delivery is already done: nothing to announce
				if err := p.Process(ctx, delivery.Message{Key: rec.Key, Event: rec.Event}); err != nil {
					t.Fatalf("Process: %v", err)
				}
			}
			if len(heard) != 1 || heard[0].Operation != jobs.OpDelivery || heard[0].Delivery.DeliveryID != "live" {
				t.Errorf("subscriber heard %d commits, want this delivery's once", len(heard))
			}
			if published != 1 {
				t.Errorf("%d live updates handed on, want the commit's one", published)
			}
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("processing took %v: a hanging live update held it up", elapsed)
			}
		})
	}
}

// senderFunc adapts a function to live.Sender.
type senderFunc func(ctx context.Context) error

func (f senderFunc) Send(ctx context.Context, _ string, _ []byte) error { return f(ctx) }

// A delivery's payload is decoded once on its whole way: planned, planned again after a
// conflict, committed and announced to every subscriber (signals, metrics, a live
// update to a connected dashboard, logs). The engine owns the one decode; the live
// messages of a workflow_job come from the commit's facts.
func TestOneDecodePerDelivery(t *testing.T) {
	s := embeddedStores(t)
	store := &conflicting{Store: s.Jobs, times: 1}
	p, _ := newProcessor(t, Stores{Deliveries: s.Deliveries, Counters: s.Counters, Jobs: store})
	p.Engine.Store = store
	ctx := context.Background()
	var frames, posts int
	hub := &live.Hub{Registry: localhub.NewRegistry(), Pools: s.Jobs, Log: slog.New(slog.DiscardHandler),
		Sender: senderFunc(func(context.Context) error { posts++; return nil })}
	if err := hub.Connect(ctx, live.Connection{ID: "dashboard"}); err != nil {
		t.Fatal(err)
	}
	if _, err := hub.Subscribe(ctx, "dashboard", nil); err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	// The fan-out runs at once here, so that its reads count too.
	announcer := &live.Announcer{Outbox: outboxFunc(func(ctx context.Context, a live.Announcement) error {
		frames += len(a.Frames)
		return hub.Deliver(ctx, []live.Announcement{a})
	})}
	p.Engine.Subscribe(m, jobs.Log{Logger: slog.New(slog.DiscardHandler)}, announcer)
	rec := fixtureRecord(t, "workflow_job.queued.json", "decoded-once")
	if _, err := s.Deliveries.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	before := jobs.PayloadDecodes()
	if err := p.Process(ctx, delivery.Message{Key: rec.Key}); err != nil {
		t.Fatal(err)
	}
	if n := jobs.PayloadDecodes() - before; n != 1 || store.seen != 2 {
		t.Errorf("%d payload decodes over %d plans, want 1", n, store.seen)
	}
	if frames < 2 || posts != 1 { // workflow-job and webhook-event at least, in one post
		t.Errorf("the commit announced %d messages, posted to the dashboard in %d posts", frames, posts)
	}
}
