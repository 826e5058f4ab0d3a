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

// StartSpec is what records a starting runner.
type StartSpec struct {
	Name      string
	Pool      string
	Labels    []string
	Ephemeral bool
	// JobID is the job the runner is started for; 0 for a warm runner (minIdle, prewarm).
	JobID int64
	// GitHubID is GitHub's id of the runner, from its just-in-time configuration.
	GitHubID int64
}

// CheckStart runs StartRunner's checks without writing anything: the pool has a
// provider, the job (unless jobID is 0) still waits in it with no runner starting for
// it, and the pool has room under maxRunners, starting runners included. It returns the
// pool. The provisioner calls it before minting a just-in-time configuration, which
// registers a runner with GitHub; StartRunner checks again in its commit.
func (e *Engine) CheckStart(ctx context.Context, pool string, jobID int64, now time.Time) (Pool, error) {
	p := e.newPlanner(ctx, now)
	return p.checkStart(pool, jobID)
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

// StartRunner records a runner as starting at now, in one commit with the pool's
// capacity gate (so that concurrent starts cannot both take the last place; allocation
// never writes that side, so starts do not contend with deliveries) and, for a job's runner,
// the job's StartedRunner (so that a repeated demand starts nothing more). It fails as
// CheckStart does, or with ErrExists for a name in use.
func (e *Engine) StartRunner(ctx context.Context, spec StartSpec, now time.Time) (*Runner, *Plan, error) {
	if err := ValidateRunnerName(spec.Name); err != nil {
		return nil, nil, err
	}
	if err := validateRunnerLabels(spec.Labels); err != nil {
		return nil, nil, err
	}
	return e.fleetChange(ctx, OpStart, now, func(p *planner) (*Runner, error) {
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
		if spec.JobID != 0 {
			job := p.jobs[spec.JobID] // read by checkStart
			job.StartedRunner = r.Name
			p.touch(job)
		}
		p.plan.Outcome = Outcome{Code: OutcomeStarting, Runner: r.Name, Pool: r.Pool, Job: spec.JobID}
		return r, nil
	})
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
