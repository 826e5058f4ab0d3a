package jobs

// The commit pipeline: every state change, whether a delivery or a fleet operation, is
// planned from fresh reads, committed as one version-checked Change, planned again when
// something it read changed meanwhile, and then announced once, as a Commit, to the
// engine's subscribers (metrics, signals, live updates, logs).
//
//	            ┌──────── conflict: wait (jittered, bounded by the context) ───────┐
//	            v                                                                  │
//	Apply / RegisterRunner / Heartbeat / RemoveRunner ──> plan ──> Store.Commit ───┘
//	                                                                   │ committed
//	                                                                   v
//	                                              Commit ──> each Subscriber, in order

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
)

// Deliveries is what the pipeline reads of the delivery records: a delivery's record
// again after a conflict, since another processor may have finished it meanwhile.
type Deliveries interface {
	Get(ctx context.Context, key delivery.Key) (*delivery.Record, error)
}

// Subscriber hears of every committed change, once, right after its commit. It runs on
// the committing goroutine (a processor, an API request), so it must return quickly:
// bound any I/O with a short timeout. It cannot fail the change, which is done; it logs
// what goes wrong. A consumer that must not miss a change it failed to act on (a lost
// demand, a dropped live update) relies on a level-triggered catch-up, as ResendDemands
// and the API's listings are. Subscribers must not change the Commit.
type Subscriber interface {
	Committed(ctx context.Context, c *Commit)
}

// SubscriberFunc adapts a function to Subscriber.
type SubscriberFunc func(ctx context.Context, c *Commit)

// Committed implements Subscriber.
func (f SubscriberFunc) Committed(ctx context.Context, c *Commit) { f(ctx, c) }

// Operation names what caused a Commit.
type Operation string

const (
	OpDelivery  Operation = "delivery"
	OpRegister  Operation = "runner.register"
	OpHeartbeat Operation = "runner.heartbeat"
	OpRemove    Operation = "runner.remove"
	OpStart     Operation = "runner.start"
	OpCreated   Operation = "runner.created"
)

// Commit is the post-commit event: what one committed change did, in facts the engine
// had while planning it, so no subscriber re-derives them (or decodes the payload again).
type Commit struct {
	*Plan
	Operation Operation
	// Delivery is the applied delivery (OpDelivery), nil for fleet operations.
	Delivery *delivery.Record
	// Runner is the runner a fleet operation was about, as committed (as it was, for
	// OpRemove); nil for deliveries and for a burst of starts (see Engine.StartRunners).
	Runner *Runner
	// At is when the change was committed (the delivery's finish time), UTC.
	At time.Time
	// Elapsed is the time from the first plan to the commit, re-plans included.
	Elapsed time.Duration
	// Conflicts counts the plans that lost a race and were planned again.
	Conflicts int
	// Transitions are the jobs the change wrote, by id, each with what it did to them.
	Transitions []Transition
	// Pools are the pools whose pending jobs or idle runners the change changed, by name.
	Pools []string
}

// OwnTransition returns the transition of the delivery's own job, if it has one.
func (c *Commit) OwnTransition() (Transition, bool) {
	for _, t := range c.Transitions {
		if t.Own {
			return t, true
		}
	}
	return Transition{}, false
}

// ConflictError is returned when a change kept conflicting until the pipeline's time ran
// out (see Engine.Apply). It wraps ErrConflict; nothing was committed.
type ConflictError struct {
	Operation Operation
	Conflicts int
	Last      error
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s: gave up after %d conflicts: %v", e.Operation, e.Conflicts, e.Last)
}

func (e *ConflictError) Unwrap() error { return e.Last }

// Bounds of the re-planning after a conflict.
const (
	// conflictBackoffBase and conflictBackoffMax bound the jittered wait before a re-plan:
	// a random time up to base × 2^conflicts, at most max.
	conflictBackoffBase = 2 * time.Millisecond
	conflictBackoffMax  = time.Second
	// ConflictMargin is the part of a context's deadline kept for after the pipeline: a
	// Lambda invocation still reports its batch, and a re-plan that starts later could not
	// finish in time anyway.
	ConflictMargin = 2 * time.Second
)

// payloadDecodes counts decoded delivery payloads (see PayloadDecodes).
var payloadDecodes atomic.Int64

// PayloadDecodes returns how many delivery payloads the engine has decoded since the
// process started: one per applied delivery whatever the number of re-plans. The
// processor's benchmark reports it per delivery.
func PayloadDecodes() int64 { return payloadDecodes.Load() }

// payload is a delivery's payload, decoded once per Apply.
type payload struct {
	job *jobEvent
	run *runEvent
	err error
}

func decode(rec *delivery.Record) *payload {
	var p payload
	switch rec.Event {
	case "workflow_job":
		payloadDecodes.Add(1)
		p.job, p.err = decodeJobEvent(rec.Payload)
	case "workflow_run":
		payloadDecodes.Add(1)
		p.run, p.err = decodeRunEvent(rec.Payload)
	}
	return &p
}

// Apply plans rec's effects, commits them together with the delivery's finished mark,
// re-plans from fresh reads when the commit conflicts, and announces the commit to the
// subscribers. It returns nil, nil when the delivery is (or turns out to be) finished
// already: its effects were applied once, by whoever finished it.
//
// A conflict is no failure: the delivery is planned again after a jittered wait, as long
// as the context lasts. With a deadline (a Lambda invocation's) it stops ConflictMargin
// before it and returns a ConflictError, so that the invocation can still report the
// record; without one (the local stack's consumer, an API request) it goes on until the
// change commits or the context ends. Any other error means nothing was committed.
func (e *Engine) Apply(ctx context.Context, rec *delivery.Record) (*Commit, error) {
	decoded := decode(rec)
	key := rec.Key
	return e.commit(ctx, OpDelivery, func(conflicts int) (*Commit, error) {
		if conflicts > 0 {
			// Someone changed what the last plan read, or finished this very delivery.
			if e.Deliveries == nil {
				return nil, fmt.Errorf("delivery %s conflicted, and the engine has no Deliveries to read it again from", key.DeliveryID)
			}
			reloaded, err := e.Deliveries.Get(ctx, key)
			if err != nil {
				return nil, fmt.Errorf("reload delivery %s: %w", key.DeliveryID, err)
			}
			rec = reloaded
		}
		if rec.State.Done() {
			return nil, nil
		}
		plan, err := e.plan(ctx, rec, decoded)
		if errors.Is(err, ErrBadPayload) {
			// Retrying cannot fix the payload: record why and finish it.
			plan, err = &Plan{State: delivery.Ignored, Outcome: Outcome{Code: OutcomeIgnored, Reason: err.Error()}}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("plan delivery %s: %w", key.DeliveryID, err)
		}
		plan.Change.Finish = &Finish{
			Key: rec.Key, Event: rec.Event, State: plan.State, Outcome: plan.Outcome.Text(),
			At: e.now(), ReceivedAt: rec.ReceivedAt,
		}
		return &Commit{Plan: plan, Delivery: rec}, nil
	})
}

// commit runs the pipeline for one change: build plans it (conflicts is how many plans
// before it lost a race) into a Commit of its Plan and what it is about (nil: nothing
// to do), which is committed, re-planned on conflict, completed and announced.
func (e *Engine) commit(ctx context.Context, op Operation, build func(conflicts int) (*Commit, error)) (*Commit, error) {
	start := time.Now()
	giveUp, bounded := ctx.Deadline()
	giveUp = giveUp.Add(-ConflictMargin)
	for conflicts := 0; ; conflicts++ {
		c, err := build(conflicts)
		if err != nil || c == nil {
			return nil, err
		}
		err = e.Store.Commit(ctx, &c.Plan.Change)
		if err == nil {
			c.Operation, c.Elapsed, c.Conflicts = op, time.Since(start), conflicts
			c.complete(e.now())
			e.announce(ctx, c)
			return c, nil
		}
		if !errors.Is(err, ErrConflict) {
			return nil, err
		}
		wait := conflictWait(conflicts + 1)
		if bounded && time.Now().Add(wait).After(giveUp) {
			return nil, &ConflictError{Operation: op, Conflicts: conflicts + 1, Last: err}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// conflictWait is a random wait (full jitter) before the re-plan after the n-th conflict,
// so that the plans that collided do not collide again in step.
func conflictWait(n int) time.Duration {
	ceiling := min(conflictBackoffBase<<min(n, 16), conflictBackoffMax)
	return rand.N(ceiling) + time.Millisecond
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

// Subscribe adds subscribers, heard in the order added. Call it while building the
// engine, before it applies anything.
func (e *Engine) Subscribe(s ...Subscriber) { e.Subscribers = append(e.Subscribers, s...) }

func (e *Engine) announce(ctx context.Context, c *Commit) {
	for _, s := range e.Subscribers {
		s.Committed(ctx, c)
	}
}

// complete states the facts of the committed plan, committed at (or at the delivery's
// finish time).
func (c *Commit) complete(at time.Time) {
	plan := c.Plan
	c.At = at
	if f := plan.Change.Finish; f != nil && !f.At.IsZero() {
		c.At = f.At.UTC()
	}
	pools := map[string]bool{}
	for _, r := range slices.Concat(plan.Change.Runners, plan.Change.DeleteRunners) {
		pools[r.Pool] = true
	}
	for _, j := range plan.Change.Jobs {
		t := Transition{Job: j, From: j.Status, Applied: true}
		if j == plan.Job {
			// The delivery's own job is written even when its event changed nothing
			// (a late or repeated event): applied only when it moved the job forward.
			t.Own, t.Applied = true, plan.Advanced != nil
			if plan.Advanced != nil {
				t.From = plan.Advanced.From
			}
		}
		// Jobs changed in passing (a runner freed went to them, a reservation broken sent
		// them back to the queue) keep their status: only their allocation moved.
		c.Transitions = append(c.Transitions, t)
		if t.Applied {
			pools[j.Pool] = true
		}
	}
	delete(pools, "")
	c.Pools = slices.Sorted(maps.Keys(pools))
}

// Log is the subscriber that logs each commit: "delivery processed" once per delivery,
// "fleet change" once per fleet operation, and "fleet handover" for each job a fleet
// operation passed to a runner or back to its pool's queue (a heartbeat's reservation, a
// removed runner's job), so a job's moves can be followed in the logs.
type Log struct{ Logger *slog.Logger }

// Committed implements Subscriber.
func (l Log) Committed(ctx context.Context, c *Commit) {
	if c.Operation == OpDelivery {
		rec := c.Delivery
		l.Logger.InfoContext(ctx, "delivery processed",
			slog.String("delivery_id", rec.DeliveryID), slog.String("hook_id", rec.HookID),
			slog.String("event", rec.Event), slog.String("action", rec.Action),
			slog.String("repository", rec.Repository), slog.String("outcome", c.Outcome.Text()),
			slog.String("outcome_code", string(c.Outcome.Code)),
			slog.Int("conflicts", c.Conflicts), slog.Duration("duration", c.Elapsed))
		return
	}
	level := slog.LevelInfo
	if c.Operation == OpHeartbeat && len(c.Transitions) == 0 {
		level = slog.LevelDebug // the usual heartbeat, every few seconds per runner
	}
	l.Logger.Log(ctx, level, "fleet change", "operation", c.Operation, "outcome", c.Outcome.Text(),
		"outcome_code", c.Outcome.Code, "conflicts", c.Conflicts)
	for _, t := range c.Transitions {
		j := t.Job
		runner := j.StartedRunner // a burst of starts is about several runners
		if c.Runner != nil {
			runner = c.Runner.Name
		}
		l.Logger.InfoContext(ctx, "fleet handover", "operation", c.Operation, "runner", runner,
			"job_id", j.ID, "repository", j.Repository, "allocation", j.Allocation, "pool", j.Pool,
			"reserved_runner", j.ReservedRunner)
	}
}

// SignalSender is the subscriber that sends a commit's demand and pre-warm signals. They
// follow a committed change, so a failure is logged, not retried: ResendDemands sends a
// waiting job's demand again later.
type SignalSender struct {
	Signals Signals
	Log     *slog.Logger
}

// Committed implements Subscriber.
func (s *SignalSender) Committed(ctx context.Context, c *Commit) {
	for _, d := range c.Demands {
		s.Demand(ctx, d)
	}
	for _, w := range c.Prewarms {
		if err := s.Signals.Prewarm(ctx, w); err != nil {
			s.Log.ErrorContext(ctx, "sending pre-warm signal failed", "repository", w.Repository, "error", err)
		}
	}
	for _, r := range c.Retires {
		if err := s.Signals.Retire(ctx, r); err != nil {
			s.Log.ErrorContext(ctx, "sending retire signal failed: orphan reaping will delete the runner", "runner", r.Runner, "pool", r.Pool, "error", err)
		}
	}
}

// Demand sends d and reports whether it went; a failure is logged.
func (s *SignalSender) Demand(ctx context.Context, d Demand) bool {
	if err := s.Signals.Demand(ctx, d); err != nil {
		s.Log.ErrorContext(ctx, "sending scale-up demand failed", "pool", d.Pool, "job_id", d.JobID, "resent", d.Resent, "error", err)
		return false
	}
	return true
}

var (
	_ Subscriber = Log{}
	_ Subscriber = (*SignalSender)(nil)
)
