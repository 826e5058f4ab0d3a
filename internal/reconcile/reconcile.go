// Package reconcile closes the loop webhooks alone cannot: once per interval it asks
// GitHub what RunnerHub may have missed.
//
//   - Redelivery: each watched hook's delivery log is read back to a checkpoint (never
//     more than GitHub's three days), attempts grouped by GUID, and a GUID that never
//     succeeded and that RunnerHub never recorded is redelivered once per cycle, up to a
//     cap, until it succeeds or is given up. A GUID GitHub shows as failed but RunnerHub
//     recorded (acknowledged too late) is counted, not redelivered.
//   - Jobs: jobs queued or in progress for longer than After are checked against GitHub,
//     oldest first, a bounded number per cycle, each at most once per interval. Where
//     GitHub's view is later, it is recorded as a delivery of its own (hook "reconcile")
//     and queued for the processor: the same engine path, effects, counters and live
//     updates as a webhook, applied exactly once. A job GitHub no longer has is finished
//     as abandoned the same way.
//   - Runners: see runners.go.
//
// GitHub being slow or down never blocks ingest or processing: the reconciler runs on
// its own schedule, every call has a timeout, and a rate limit ends the cycle early.
package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	gh "github.com/google/go-github/v88/github"

	"github.com/runnerhub/webhooks/internal/checkpoint"
	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/github"
	"github.com/runnerhub/webhooks/internal/jobs"
)

// GitHub is what the reconciler asks GitHub; *github.Client implements it.
type GitHub interface {
	ListDeliveries(ctx context.Context, hook github.Hook, cursor string, perPage int) ([]github.Delivery, string, error)
	Redeliver(ctx context.Context, hook github.Hook, id int64) error
	HookID(ctx context.Context, hook github.Hook, attempt int64) (string, error)
	Job(ctx context.Context, owner, repo string, id int64) (*gh.WorkflowJob, error)
	ListRunners(ctx context.Context, scope github.Scope) ([]github.Runner, error)
}

var _ GitHub = (*github.Client)(nil)

// Metrics count what the reconciler found and did.
type Metrics interface {
	// RedeliveryRequested: webhook_redeliveries_requested_total{hook}.
	RedeliveryRequested(hook string)
	// DeliveryGivenUp: webhook_deliveries_given_up_total.
	DeliveryGivenUp(hook string)
	// LateAcknowledgement: webhook_late_acknowledgements_total.
	LateAcknowledgement(hook string)
	// StrandedJob: a job whose news RunnerHub had missed; status is GitHub's
	// (in_progress, completed) or "gone" for a 404.
	StrandedJob(status string)
}

// Limits bound one cycle.
type Limits struct {
	RedeliveriesPerCycle int           // redelivery requests per cycle, all hooks together
	MaxRedeliveries      int           // redeliveries of one GUID before it is given up
	GiveUpAge            time.Duration // a GUID first attempted longer ago is given up
	PagesPerHook         int           // delivery log pages read per hook and cycle
	JobsPerCycle         int           // jobs asked about per cycle
	JobPages             int           // pages of stored jobs read per status
}

// DefaultLimits are production's.
var DefaultLimits = Limits{
	RedeliveriesPerCycle: 50, MaxRedeliveries: 3, GiveUpAge: 71 * time.Hour, PagesPerHook: 20,
	JobsPerCycle: 50, JobPages: 20,
}

// Window is how far back GitHub keeps deliveries redeliverable.
const Window = 3 * 24 * time.Hour

// Hook is the hook id of the deliveries the reconciler records: GitHub's view of a job
// applied as a delivery. Their ids are "reconcile-<job id>-<status>".
const Hook = "reconcile"

// Reconciler runs the cycles.
type Reconciler struct {
	GitHub      GitHub
	Hooks       []github.Hook
	Deliveries  delivery.Store
	Queue       delivery.Queue
	Jobs        jobs.Store
	Checkpoints checkpoint.Store
	// Runners, when set with Scopes, holds RunnerHub's runners against GitHub's.
	Runners *RunnerReconciler
	Metrics Metrics
	Limits  Limits
	// Interval is the time between cycles; After is how long a job may go without news.
	Interval, After time.Duration
	Log             *slog.Logger
	Now             func() time.Time
}

// Report is what one cycle did.
type Report struct {
	// Disabled: no GitHub credentials are configured, so nothing was done.
	Disabled        bool      `json:"disabled,omitempty"`
	Redelivered     int       `json:"redelivered"`
	LateAcks        int       `json:"lateAcknowledgements"`
	GivenUp         int       `json:"givenUp"`
	JobsChecked     int       `json:"jobsChecked"`
	JobsApplied     int       `json:"jobsApplied"`
	RunnersRetired  int       `json:"runnersRetired"`
	RunnersImported int       `json:"runnersImported"`
	RunnersSeen     int       `json:"runnersSeen"`
	PausedUntil     time.Time `json:"pausedUntil,omitzero"`
	Errors          []string  `json:"errors,omitempty"`
}

// Run runs one cycle. A rate limit ends it early (the next cycle resumes); other
// failures of one step are reported and the other steps still run.
func (r *Reconciler) Run(ctx context.Context) Report {
	// The reconciler can wait for the next rate-limit window; runners being started
	// cannot, so it leaves them the budget's last tenth.
	ctx = github.Background(ctx)
	var rep Report
	steps := []struct {
		name string
		run  func(context.Context, *Report) error
	}{
		{"redelivery", r.redeliver},
		{"jobs", r.reconcileJobs},
	}
	if r.Runners != nil {
		steps = append(steps, struct {
			name string
			run  func(context.Context, *Report) error
		}{"runners", r.Runners.run})
	}
	for _, step := range steps {
		err := step.run(ctx, &rep)
		var limited *github.RateLimitedError
		if errors.As(err, &limited) {
			rep.PausedUntil = limited.Until
			rep.Errors = append(rep.Errors, step.name+": "+err.Error())
			break
		}
		if err != nil {
			rep.Errors = append(rep.Errors, step.name+": "+err.Error())
			if ctx.Err() != nil {
				break
			}
		}
	}
	level := slog.LevelInfo
	if len(rep.Errors) > 0 {
		level = slog.LevelWarn
	}
	r.Log.Log(ctx, level, "reconciliation cycle", slog.Int("redelivered", rep.Redelivered), slog.Int("late_acks", rep.LateAcks),
		slog.Int("given_up", rep.GivenUp), slog.Int("jobs_checked", rep.JobsChecked), slog.Int("jobs_applied", rep.JobsApplied),
		slog.Int("runners_retired", rep.RunnersRetired), slog.Int("runners_imported", rep.RunnersImported), slog.Any("errors", rep.Errors))
	return rep
}

func (r *Reconciler) loadCheckpoint(ctx context.Context, name string, v any) error {
	raw, err := r.Checkpoints.Checkpoint(ctx, name)
	if err != nil || raw == nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		// A damaged checkpoint costs one full look back, never a stuck reconciler.
		r.Log.WarnContext(ctx, "checkpoint unreadable: starting afresh", "checkpoint", name, "error", err)
	}
	return nil
}

func (r *Reconciler) saveCheckpoint(ctx context.Context, name string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(raw) > checkpoint.MaxBytes {
		return fmt.Errorf("checkpoint %s: %d bytes exceed %d", name, len(raw), checkpoint.MaxBytes)
	}
	return r.Checkpoints.PutCheckpoint(ctx, name, raw)
}

// record stores a delivery the reconciler makes and queues it, as ingest does with
// GitHub's: a record already there and finished is left alone, one not yet processed
// is queued again.
func (r *Reconciler) record(ctx context.Context, rec *delivery.Record) error {
	existing, err := r.Deliveries.Create(ctx, rec)
	if err != nil {
		return fmt.Errorf("recording %s: %w", rec.DeliveryID, err)
	}
	if existing != nil && existing.State.Done() {
		return nil
	}
	if err := r.Queue.Enqueue(ctx, delivery.Message{Key: rec.Key, Event: rec.Event}); err != nil {
		return fmt.Errorf("queueing %s: %w", rec.DeliveryID, err)
	}
	return nil
}

// Handle runs one cycle for a scheduled invocation (the ReconcilerFunction). A nil
// Reconciler (no GitHub credentials) does nothing and says so.
func (r *Reconciler) Handle(ctx context.Context) (Report, error) {
	if r == nil {
		return Report{Disabled: true}, nil
	}
	return r.Run(ctx), nil
}
