// Package processing turns recorded deliveries into state. It is driven by the events
// queue: by SQS in Lambda (HandleSQS) and by the embedded queue's consumer in the local
// stack. Every message may arrive more than once; a delivery already finished is skipped.
package processing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
)

// Processor applies deliveries.
type Processor struct {
	Store delivery.Store
	Log   *slog.Logger
	Now   func() time.Time
}

// Process applies one queued delivery and marks it finished. An error means nothing was
// marked and the message must be retried.
func (p *Processor) Process(ctx context.Context, msg delivery.Message) error {
	start := time.Now()
	rec, err := p.Store.Get(ctx, msg.Key)
	if errors.Is(err, delivery.ErrNotFound) {
		// The queue only carries keys of recorded deliveries; a message without a record
		// can never succeed, so it is dropped (and logged) rather than retried forever.
		p.Log.WarnContext(ctx, "queued delivery has no record", "delivery_id", msg.DeliveryID, "hook_id", msg.HookID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("load delivery %s: %w", msg.DeliveryID, err)
	}
	if rec.State.Done() {
		p.Log.DebugContext(ctx, "delivery already processed", "delivery_id", rec.DeliveryID)
		return nil
	}
	state, outcome := p.apply(rec)
	if err := p.Store.Finish(ctx, rec.Key, state, outcome, p.Now().UTC()); err != nil {
		return err
	}
	p.Log.InfoContext(ctx, "delivery processed",
		slog.String("delivery_id", rec.DeliveryID), slog.String("hook_id", rec.HookID),
		slog.String("event", rec.Event), slog.String("action", rec.Action),
		slog.String("repository", rec.Repository), slog.String("outcome", outcome),
		slog.Duration("duration", time.Since(start)))
	return nil
}

// apply decides what a delivery means. Only ping has an effect so far; every other event
// is recorded and marked ignored with the reason, never refused.
func (p *Processor) apply(rec *delivery.Record) (delivery.State, string) {
	switch rec.Event {
	case "ping":
		return delivery.Processed, "pong"
	default:
		return delivery.Ignored, "ignored: no handler for " + rec.Event + " events yet"
	}
}
