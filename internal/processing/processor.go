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
	"math/rand/v2"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/live"
)

// maxConflicts is how often a delivery is re-planned after concurrent changes before the
// attempt is given up (and the queue retries it later).
const maxConflicts = 8

// Processor applies deliveries.
type Processor struct {
	Deliveries delivery.Store
	Counters   delivery.Counters
	Engine     *jobs.Engine
	Signals    jobs.Signals
	// Live, when set, announces each committed delivery to WebSocket clients.
	Live live.Publisher
	Log  *slog.Logger
	Now  func() time.Time
	// Observer, when set, is told about every delivery applied or failed (metrics).
	Observer Observer
}

// Observer learns what the processor did, after the fact: Applied once a delivery's plan
// is committed (never for a delivery found finished already), Failed when an attempt
// fails (the queue retries it). Both are called on the processing path: they must not
// block.
type Observer interface {
	Applied(rec *delivery.Record, plan *jobs.Plan, elapsed time.Duration)
	Failed(rec *delivery.Record, err error, elapsed time.Duration)
}

// publishTimeout bounds announcing one delivery: live updates must never hold up
// processing (in Lambda, the batch and its visibility timeout).
const publishTimeout = 2 * time.Second

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
	plan, err := p.apply(ctx, rec)
	if err != nil {
		if countErr := p.Counters.CountError(ctx, rec.Event, rec.ReceivedAt); countErr != nil {
			p.Log.ErrorContext(ctx, "counting a processing error failed", "error", countErr)
		}
		if p.Observer != nil {
			p.Observer.Failed(rec, err, time.Since(start))
		}
		return err
	}
	if plan == nil {
		p.Log.DebugContext(ctx, "delivery already processed", "delivery_id", rec.DeliveryID)
		return nil
	}
	if p.Observer != nil {
		p.Observer.Applied(rec, plan, time.Since(start))
	}
	p.send(ctx, plan)
	p.publish(ctx, rec, plan)
	p.Log.InfoContext(ctx, "delivery processed",
		slog.String("delivery_id", rec.DeliveryID), slog.String("hook_id", rec.HookID),
		slog.String("event", rec.Event), slog.String("action", rec.Action),
		slog.String("repository", rec.Repository), slog.String("outcome", plan.Outcome),
		slog.Duration("duration", time.Since(start)))
	return nil
}

// apply plans and commits rec's effects, re-planning after concurrent changes. It
// returns nil, nil when the delivery turns out to be finished already.
func (p *Processor) apply(ctx context.Context, rec *delivery.Record) (*jobs.Plan, error) {
	for attempt := 1; ; attempt++ {
		if rec.State.Done() {
			return nil, nil
		}
		plan, err := p.Engine.Plan(ctx, rec)
		if errors.Is(err, jobs.ErrBadPayload) {
			// Retrying cannot fix the payload: record why and finish it.
			plan, err = &jobs.Plan{State: delivery.Ignored, Outcome: "ignored: " + err.Error()}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("plan delivery %s: %w", rec.DeliveryID, err)
		}
		plan.Change.Finish = &jobs.Finish{
			Key: rec.Key, Event: rec.Event, State: plan.State, Outcome: plan.Outcome,
			At: p.Now().UTC(), ReceivedAt: rec.ReceivedAt,
		}
		err = p.Engine.Store.Commit(ctx, &plan.Change)
		if err == nil {
			return plan, nil
		}
		if !errors.Is(err, jobs.ErrConflict) || attempt == maxConflicts {
			return nil, fmt.Errorf("commit delivery %s: %w", rec.DeliveryID, err)
		}
		// Someone changed what this plan read, or finished this very delivery: re-read.
		key := rec.Key
		if rec, err = p.Deliveries.Get(ctx, key); err != nil {
			return nil, fmt.Errorf("reload delivery %s: %w", key.DeliveryID, err)
		}
		time.Sleep(time.Duration(rand.IntN(1<<attempt)) * time.Millisecond)
	}
}

// send emits the plan's signals. They follow a committed change, so a failure here is
// logged, not retried: re-running the delivery would not send them again either, but
// ResendDemands sends a waiting job's demand again later.
func (p *Processor) send(ctx context.Context, plan *jobs.Plan) {
	for _, d := range plan.Demands {
		p.sendDemand(ctx, d)
	}
	for _, w := range plan.Prewarms {
		if err := p.Signals.Prewarm(ctx, w); err != nil {
			p.Log.ErrorContext(ctx, "sending pre-warm signal failed", "repository", w.Repository, "error", err)
		}
	}
}

// sendDemand sends d and reports whether it went; a failure is logged (a job still
// waiting gets its demand again from ResendDemands).
func (p *Processor) sendDemand(ctx context.Context, d jobs.Demand) bool {
	if err := p.Signals.Demand(ctx, d); err != nil {
		p.Log.ErrorContext(ctx, "sending scale-up demand failed", "pool", d.Pool, "job_id", d.JobID, "resent", d.Resent, "error", err)
		return false
	}
	return true
}

// publish announces a committed delivery to WebSocket clients. Like the signals it
// follows the commit, so a failure is logged, never retried or returned: the delivery
// is done, and a dashboard that missed an update catches up through the API.
func (p *Processor) publish(ctx context.Context, rec *delivery.Record, plan *jobs.Plan) {
	if p.Live == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if err := p.Live.Publish(ctx, rec, plan); err != nil {
		p.Log.WarnContext(ctx, "live update failed", "delivery_id", rec.DeliveryID, "error", err)
	}
}
