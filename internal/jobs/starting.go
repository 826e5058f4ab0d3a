package jobs

// The fleet operations through which the provisioner starts runners: a runner is
// recorded as starting, under its pool's capacity gate, before its provider is asked for it.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNotWaiting is returned when starting a runner for a job that no longer waits in the
// pool: it took a runner, ended, or was never seen.
var ErrNotWaiting = errors.New("job is not waiting for a runner")

// ErrAlreadyStarting is returned when a runner is already starting for the job: a
// repeated demand starts nothing more.
var ErrAlreadyStarting = errors.New("a runner is already starting for this job")

// ErrNoProvider is returned when starting a runner in a pool without a provider.
var ErrNoProvider = errors.New("pool has no provider")

// StartSpec is what records a starting runner: what registers it, and what it is
// started for.
type StartSpec struct {
	RunnerSpec
	// JobID is the job the runner is started for; 0 for a warm runner (minIdle, prewarm).
	JobID int64
	// GitHubID is GitHub's id of the runner, from its just-in-time configuration.
	GitHubID int64
}

// CheckStart runs StartRunners' checks of one spec without writing anything: the pool has a
// provider, the job (unless jobID is 0) still waits in it with no runner starting for
// it, and the pool has room under maxRunners, starting runners included. It returns the
// pool and the job as read (nil for jobID 0). The provisioner calls it before minting a
// just-in-time configuration, which registers a runner with GitHub; StartRunners checks
// again in its commit.
func (e *Engine) CheckStart(ctx context.Context, pool string, jobID int64, now time.Time) (Pool, *Job, error) {
	p := e.newPlanner(ctx, now)
	pl, err := p.checkStart(pool, jobID)
	if err != nil || jobID == 0 {
		return pl, nil, err
	}
	return pl, p.jobs[jobID], nil // read by checkStart
}

func (p *planner) checkStart(pool string, jobID int64) (Pool, error) {
	if err := ValidatePoolName(pool); err != nil {
		return Pool{}, err
	}
	pl, ok, err := p.pool(pool)
	if err != nil || !ok {
		return Pool{}, cmp.Or(err, fmt.Errorf("pool %q: %w", pool, ErrUnknownPool))
	}
	if pl.Provider == nil {
		return Pool{}, fmt.Errorf("pool %s: %w", pool, ErrNoProvider)
	}
	if jobID != 0 {
		job, err := p.job(jobID)
		if err != nil {
			return Pool{}, err
		}
		if job.Allocation != AllocationPending || job.Pool != pool || job.Status != StatusQueued {
			return Pool{}, fmt.Errorf("job %d in pool %s: %w", jobID, pool, ErrNotWaiting)
		}
		if started, err := p.runner(job.StartedRunner); err != nil || serves(started, jobID) {
			return Pool{}, cmp.Or(err, fmt.Errorf("job %d: runner %s: %w", jobID, job.StartedRunner, ErrAlreadyStarting))
		}
	}
	if n, err := p.countRunners(pl.Name); err != nil || n >= pl.MaxRunners {
		return Pool{}, cmp.Or(err, fmt.Errorf("pool %s has its %d runners: %w", pl.Name, pl.MaxRunners, ErrPoolFull))
	}
	return pl, nil
}

// serves says whether the runner started for job still serves it: it is starting, or
// it holds the job. One that booted and took another job does not, so the job may have
// a runner of its own.
func serves(r *Runner, job int64) bool {
	return r != nil && (r.State == RunnerStarting || r.JobID == job)
}

// MaxStartBatch bounds the runners one StartRunners commit records, so that its change
// stays well inside one DynamoDB transaction (100 items): each start writes its runner
// and its job, beside the pool's gate and counts.
const MaxStartBatch = 32

// Started is what StartRunners did with one spec: the runner as committed, or why it
// was refused (as CheckStart refuses, ErrExists for a name in use, or ErrInvalid).
type Started struct {
	Runner *Runner
	Err    error
}

// StartRunners records the runners of specs, all of one pool, as starting at now, in one
// commit with the pool's capacity gate (so that concurrent starts cannot both take the
// last place; allocation never writes that side, so starts do not contend with
// deliveries) and, for each job's runner, the job's StartedRunner (so that a repeated
// demand starts nothing more). Each spec is refused or started on its own, in order:
// those past the pool's room are refused with ErrPoolFull. One commit for a burst of
// starts is what keeps them from waiting in line behind each other's commits, since
// every start writes the pool's gate. The plan is nil when every spec was refused; an
// error means nothing was recorded.
func (e *Engine) StartRunners(ctx context.Context, specs []StartSpec, now time.Time) ([]Started, *Plan, error) {
	if len(specs) == 0 || len(specs) > MaxStartBatch {
		return nil, nil, invalid("start 1 to %d runners at once, not %d", MaxStartBatch, len(specs))
	}
	pool := specs[0].Pool
	for _, s := range specs {
		if s.Pool != pool {
			return nil, nil, invalid("runners started at once are of one pool, not %s and %s", pool, s.Pool)
		}
	}
	var started []Started
	c, err := e.commit(ctx, OpStart, func(int) (*Commit, error) {
		p := e.newPlanner(ctx, now)
		started = make([]Started, len(specs))
		var runners []*Runner
		for i, spec := range specs {
			r, err := p.startRunner(spec)
			if err != nil && !isRefusal(err) {
				return nil, err
			}
			started[i] = Started{Runner: r, Err: err}
			if r != nil {
				runners = append(runners, r)
			}
		}
		if len(runners) == 0 {
			return nil, nil
		}
		p.plan.Outcome = startingOutcome(runners)
		if err := p.collect(); err != nil {
			return nil, err
		}
		c := &Commit{Plan: p.plan}
		if len(runners) == 1 {
			c.Runner = runners[0]
		}
		return c, nil
	})
	if err != nil || c == nil {
		return started, nil, err
	}
	return started, c.Plan, nil
}

// startRunner adds spec's runner to the plan, as starting, or says why not.
func (p *planner) startRunner(spec StartSpec) (*Runner, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	if err := p.holdGate(spec.Pool); err != nil {
		return nil, err
	}
	if _, err := p.checkStart(spec.Pool, spec.JobID); err != nil {
		return nil, err
	}
	if existing, err := p.runner(spec.Name); err != nil || existing != nil {
		return nil, cmp.Or(err, fmt.Errorf("runner %s: %w", spec.Name, ErrExists))
	}
	r := &Runner{Name: spec.Name, Pool: spec.Pool, Labels: spec.Labels, Ephemeral: spec.Ephemeral,
		State: RunnerStarting, JobID: spec.JobID, GitHubID: spec.GitHubID, UpdatedAt: p.at}
	p.runners[r.Name] = r
	p.touch(r)
	p.added[r.Pool]++
	if spec.JobID != 0 {
		job := p.jobs[spec.JobID] // read by checkStart
		job.StartedRunner = r.Name
		p.touch(job)
	}
	return r, nil
}

// isRefusal says whether err refuses one start, rather than failing the plan (a read).
func isRefusal(err error) bool {
	for _, refusal := range []error{ErrInvalid, ErrNotWaiting, ErrAlreadyStarting, ErrNoProvider, ErrUnknownPool, ErrPoolFull, ErrExists} {
		if errors.Is(err, refusal) {
			return true
		}
	}
	return false
}

// startingOutcome names the one runner started, or counts the runners of a burst.
func startingOutcome(runners []*Runner) Outcome {
	r := runners[0]
	if len(runners) == 1 {
		return Outcome{Code: OutcomeStarting, Runner: r.Name, Pool: r.Pool, Job: r.JobID}
	}
	o := Outcome{Code: OutcomeStarting, Pool: r.Pool}
	for _, r := range runners {
		o.Runners = append(o.Runners, r.Name)
	}
	return o
}

// RunnerCreated records the provider's id for the machine of a runner at now. It fails
// with ErrNotFound when the runner is gone meanwhile (its boot timed out, or it was
// removed): the caller then deletes the machine.
func (e *Engine) RunnerCreated(ctx context.Context, name, providerID string, now time.Time) (*Runner, *Plan, error) {
	return e.fleetChange(ctx, OpCreated, now, func(p *planner) (*Runner, error) {
		r, err := p.managedRunner(name)
		if err != nil {
			return nil, err
		}
		r.ProviderID = providerID
		p.touch(r)
		p.plan.Outcome = Outcome{Code: OutcomeCreated, Runner: name}
		return r, nil
	})
}
