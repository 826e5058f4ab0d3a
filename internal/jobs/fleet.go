package jobs

// The operations through which whatever starts runners registers, keeps alive and
// retires them.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrExists is returned when registering a runner whose name is registered already.
var ErrExists = errors.New("already exists")

// ErrUnknownPool is returned when registering a runner in a pool that is neither
// configured nor created through the API.
var ErrUnknownPool = errors.New("no such pool")

// ErrPoolFull is returned when registering a runner in a pool that has maxRunners
// runners already.
var ErrPoolFull = errors.New("pool is full")

// RunnerSpec is what registers a runner.
type RunnerSpec struct {
	Name      string
	Pool      string
	Labels    []string
	Ephemeral bool
}

// validate checks the spec's names and labels, before anything is read.
func (s RunnerSpec) validate() error {
	if err := ValidateRunnerName(s.Name); err != nil {
		return err
	}
	if err := ValidatePoolName(s.Pool); err != nil {
		return err
	}
	return validateRunnerLabels(s.Labels)
}

// RegisterRunner adds an idle runner to a pool at now and gives it at once the
// highest-ranked pending job of the pool that it can run, if any (it is then reserved).
// It returns the runner as committed and the plan (for its outcome).
func (e *Engine) RegisterRunner(ctx context.Context, spec RunnerSpec, now time.Time) (*Runner, *Plan, error) {
	if err := spec.validate(); err != nil {
		return nil, nil, err
	}
	return e.fleetChange(ctx, OpRegister, now, func(p *planner) (*Runner, error) {
		pl, ok, err := p.pool(spec.Pool)
		if err != nil || !ok {
			return nil, cmp.Or(err, fmt.Errorf("pool %q: %w", spec.Pool, ErrUnknownPool))
		}
		existing, err := p.runner(spec.Name)
		if err != nil || existing != nil {
			return nil, cmp.Or(err, fmt.Errorf("runner %s: %w", spec.Name, ErrExists))
		}
		// Counted under the pool's capacity gate, so two registrations (or a
		// registration and a start) at once cannot both take the last place.
		if err := p.holdGate(pl.Name); err != nil {
			return nil, err
		}
		if n, err := p.countRunners(pl.Name); err != nil || n >= pl.MaxRunners {
			return nil, cmp.Or(err, fmt.Errorf("pool %s has its %d runners: %w", pl.Name, pl.MaxRunners, ErrPoolFull))
		}
		r := &Runner{Name: spec.Name, Pool: spec.Pool, Labels: spec.Labels, Ephemeral: spec.Ephemeral,
			State: RunnerIdle, UpdatedAt: p.at, LastSeen: p.at}
		p.runners[r.Name] = r
		p.touch(r)
		p.plan.Outcome = Outcome{Code: OutcomeRegistered, Runner: r.Name, Pool: r.Pool}
		return r, p.matchIdle(r, anyQueues)
	})
}

// countRunners returns how many runners pool has, in any state, from its counts (one
// bounded read whatever maxRunners is, once per plan however many starts it plans), and
// those the plan starts. Under the pool's gate it is exact for what matters: every
// change that adds a runner to a pool holds its gate (holdGate), so one committed after
// the gate was read makes this plan conflict and count again.
func (p *planner) countRunners(pool string) (int, error) {
	n, ok := p.counted[pool]
	if !ok {
		counts, err := p.e.Store.PoolCounts(p.ctx, []string{pool})
		if err != nil {
			return 0, err
		}
		n = int(counts[0].Runners())
		p.counted[pool] = n
	}
	return n + p.added[pool], nil
}

// RemoveRunner retires a runner at now. A job reserved for it goes back to its pool's
// pending queue (with a scale-up demand); a job running on it keeps its assignment, as
// GitHub will report how it ends. It returns the runner as it was.
func (e *Engine) RemoveRunner(ctx context.Context, name string, now time.Time) (*Runner, *Plan, error) {
	return e.fleetChange(ctx, OpRemove, now, func(p *planner) (*Runner, error) {
		r, err := p.managedRunner(name)
		if err != nil {
			return nil, err
		}
		if err := p.requeueReserved(r); err != nil {
			return nil, err
		}
		p.retire(r, RetireRemoved)
		p.plan.Outcome = Outcome{Code: OutcomeRemoved, Runner: name}
		return r, nil
	})
}

// Heartbeat records that a runner is alive at now. An idle runner is also matched with
// the pending jobs of its pool, and, when it comes back from being offline, of every
// pool: allocation passed it over meanwhile, so jobs it fits may wait anywhere. (An
// online idle runner has already been offered every job it fits, so looking at the
// other pools on each heartbeat would only cost reads and contention.)
func (e *Engine) Heartbeat(ctx context.Context, name string, now time.Time) (*Runner, *Plan, error) {
	return e.fleetChange(ctx, OpHeartbeat, now, func(p *planner) (*Runner, error) {
		r, err := p.managedRunner(name)
		if err != nil {
			return nil, err
		}
		returning := p.e.OfflineAfter > 0 && r.Offline(p.at, p.e.OfflineAfter)
		r.LastSeen = p.at
		p.touch(r)
		p.plan.Outcome = Outcome{Code: OutcomeHeartbeat, Runner: name}
		if r.State == RunnerStarting {
			// It is online: it has booted, and can take the pool's next job.
			r.State, r.JobID, r.UpdatedAt = RunnerIdle, 0, p.at
		}
		if r.State != RunnerIdle {
			return r, nil
		}
		return r, p.matchIdle(r, returning)
	})
}

// managedRunner reads a runner that must exist.
func (p *planner) managedRunner(name string) (*Runner, error) {
	if err := ValidateRunnerName(name); err != nil {
		return nil, err
	}
	r, err := p.runner(name)
	if err == nil && r == nil {
		err = fmt.Errorf("runner %s: %w", name, ErrNotFound)
	}
	return r, err
}

// matchIdle gives the idle runner r the next pending job it fits, if any (see match).
func (p *planner) matchIdle(r *Runner, acrossPools bool) error {
	job, err := p.match(r, acrossPools)
	if job != nil {
		p.plan.Outcome.Reserved = job.ID
	}
	return err
}

// fleetChange plans a fleet operation with build and runs it through the commit pipeline
// (commit.go), planning again from fresh reads when something it read changed
// concurrently (a processor reserving the same runner, another request).
func (e *Engine) fleetChange(ctx context.Context, op Operation, now time.Time, build func(p *planner) (*Runner, error)) (*Runner, *Plan, error) {
	c, err := e.commit(ctx, op, func(int) (*Commit, error) {
		p := e.newPlanner(ctx, now)
		r, err := build(p)
		if err != nil {
			return nil, err
		}
		if err := p.collect(); err != nil {
			return nil, err
		}
		return &Commit{Plan: p.plan, Runner: r}, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return c.Runner, c.Plan, nil
}
