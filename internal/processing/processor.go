// Package processing turns recorded deliveries into state. It is driven by the events
// queue: by SQS in Lambda (HandleSQS) and by the embedded queue's consumer in the local
// stack. Every message may arrive more than once, late, or at the same time as another
// processor handles the same delivery: the job engine plans the effects from what it
// reads, and the store commits them together with the delivery's "finished" mark in one
// version-checked write, so they apply exactly once.
package processing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
)

// Processor applies deliveries: it loads each queued delivery's record and hands it to
// the engine's commit pipeline (jobs.Engine.Apply), which plans, commits, re-plans on
// conflict and announces the commit to its subscribers (metrics, signals, live updates,
// logs). What is left here is the queue's side: a message without a record, and failed
// attempts (counted, and retried by the queue).
type Processor struct {
	Deliveries delivery.Store
	Counters   delivery.Counters
	Engine     *jobs.Engine
	// Signals receives the demands ResendDemands finds (the engine's subscribers send the
	// signals of each commit).
	Signals jobs.Signals
	Log     *slog.Logger
	Now     func() time.Time
	// Observer, when set, is told about every failed attempt (metrics); what is applied it
	// hears from the engine, as a subscriber.
	Observer Observer
}

// Observer learns of failed attempts, after the fact (the queue retries them). A
// jobs.ConflictError is no failure of the delivery, only of this attempt's time: it is
// not counted as an error. Failed is called on the processing path: it must not block.
type Observer interface {
	Failed(rec *delivery.Record, err error, elapsed time.Duration)
}

// countErrorTimeout bounds counting a failed attempt.
const countErrorTimeout = time.Second

// Process applies one queued delivery. An error means nothing was committed and the
// message must be retried.
func (p *Processor) Process(ctx context.Context, msg delivery.Message) error {
	start := time.Now()
	rec, err := p.Deliveries.Get(ctx, msg.Key)
	if errors.Is(err, delivery.ErrNotFound) {
		// The queue only carries keys of recorded deliveries; a message without a record
		// can never succeed, so it is dropped (and logged) rather than retried forever.
		p.Log.WarnContext(ctx, "queued delivery has no record", "delivery_id", msg.DeliveryID, "hook_id", msg.HookID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("load delivery %s: %w", msg.DeliveryID, err)
	}
	c, err := p.Engine.Apply(ctx, rec)
	if err != nil {
		if !errors.Is(err, jobs.ErrConflict) {
			// Counted even when the attempt failed because its context ended (a Lambda
			// invocation out of time): the count has a short time of its own.
			countCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), countErrorTimeout)
			defer cancel()
			if countErr := p.Counters.CountError(countCtx, rec.Event, rec.ReceivedAt); countErr != nil {
				p.Log.ErrorContext(ctx, "counting a processing error failed", "error", countErr)
			}
		}
		if p.Observer != nil {
			p.Observer.Failed(rec, err, time.Since(start))
		}
		return err
	}
	if c == nil {
		p.Log.DebugContext(ctx, "delivery already processed", "delivery_id", rec.DeliveryID)
	}
	return nil
}
