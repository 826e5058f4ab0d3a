package jobs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// PoolCounts are one pool's runners by state and its pending jobs. The stores keep them
// from each Change's Counts, in the same atomic write as the entities counted, so that
// the pool status reads a fixed number of items whatever the size of the fleet. A
// runner counts in the field of its state as written: whether it is offline is decided
// on read, so a silent runner still counts where it was.
//
// In a Change, a PoolCounts is a delta (numbers may be negative).
type PoolCounts struct {
	Pool     string
	Idle     int64
	Reserved int64
	Busy     int64
	Starting int64
	// Pending counts the jobs in the pool's pending queue (Allocation pending).
	Pending int64
}

// Counts is what r adds to its pool's counts: one, in the field of its state. A state
// this build does not know counts as busy: the runner is not free.
func (r *Runner) Counts() PoolCounts {
	c := PoolCounts{Pool: r.Pool}
	switch r.State {
	case RunnerIdle:
		c.Idle = 1
	case RunnerReserved:
		c.Reserved = 1
	case RunnerStarting:
		c.Starting = 1
	default:
		c.Busy = 1
	}
	return c
}

// Counts is what j adds to its pool's counts: one pending job while it waits in the
// pool's queue, nothing otherwise.
func (j *Job) Counts() PoolCounts {
	if j.Allocation != AllocationPending || j.Pool == "" {
		return PoolCounts{}
	}
	return PoolCounts{Pool: j.Pool, Pending: 1}
}

// Add adds d's numbers, times n (-1 takes them away), to c; d's pool is not checked.
func (c *PoolCounts) Add(d PoolCounts, n int64) {
	c.Idle += n * d.Idle
	c.Reserved += n * d.Reserved
	c.Busy += n * d.Busy
	c.Starting += n * d.Starting
	c.Pending += n * d.Pending
}

// IsZero reports whether c counts (or changes) nothing.
func (c PoolCounts) IsZero() bool { return c == PoolCounts{Pool: c.Pool} }

// Runners is the number of runners counted, in whatever state.
func (c PoolCounts) Runners() int64 { return c.Idle + c.Reserved + c.Busy + c.Starting }

// Tally sums counts by pool.
type Tally map[string]*PoolCounts

// Add adds c, times n, to its pool's sum.
func (t Tally) Add(c PoolCounts, n int64) {
	if c.Pool == "" {
		return
	}
	sum, ok := t[c.Pool]
	if !ok {
		sum = &PoolCounts{Pool: c.Pool}
		t[c.Pool] = sum
	}
	sum.Add(c, n)
}

// Counts returns the sums that are not zero, by pool.
func (t Tally) Counts() []PoolCounts {
	var out []PoolCounts
	for _, pool := range slices.Sorted(maps.Keys(t)) {
		if c := *t[pool]; !c.IsZero() {
			out = append(out, c)
		}
	}
	return out
}

// stored remembers what an entity the plan read counted as stored, before the plan
// changes it in place: the planner records it for every job and runner it reads
// (keep), and countChange derives the Change's Counts from it.
type stored map[any]PoolCounts

// keep puts v, a job or runner the plan has just read from the store, in the plan's
// cache under key (p.jobs or p.runners), and remembers what it counted as stored. Every
// read site goes through it, so that whatever the plan changes in place has its counts
// before. Entities the plan creates are cached without it: they counted nothing.
func keep[K comparable, V interface {
	*Job | *Runner
	Counts() PoolCounts
}](p *planner, cache map[K]V, key K, v V) {
	cache[key] = v
	p.stored[v] = v.Counts()
}

// countChange sets the Change's Counts: for every job and runner it writes, what it
// counts after less what it counted as read, and for every runner it deletes, what it
// counted. It is the one place deltas are made, from the entities themselves, so no
// plan can leave a count behind. An entity written at a stored version that the plan
// did not read through the planner would have an unknown before: that is a bug, and an
// error rather than a wrong count.
func (p *planner) countChange() error {
	c := &p.plan.Change
	t := Tally{}
	// move counts an entity out of what it counted as read and into what it counts now.
	move := func(v any, version int64, now PoolCounts, what string) error {
		was, ok := p.stored[v]
		if !ok && version != 0 {
			return fmt.Errorf("plan writes %s at version %d without having read it: its counts before are unknown", what, version)
		}
		t.Add(was, -1)
		t.Add(now, 1)
		return nil
	}
	var errs []error
	for _, j := range c.Jobs {
		errs = append(errs, move(j, j.Version, j.Counts(), fmt.Sprintf("job %d", j.ID)))
	}
	for _, r := range c.Runners {
		errs = append(errs, move(r, r.Version, r.Counts(), "runner "+r.Name))
	}
	for _, r := range c.DeleteRunners {
		errs = append(errs, move(r, r.Version, PoolCounts{}, "runner "+r.Name))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.Counts = t.Counts()
	return nil
}

// Recount counts every pool's runners and pending jobs from what is stored, reading all
// of them (every page of the runners, and of each pool's queue): the counts the store
// would hold had it kept them all along. It is for a store written before the counts
// existed, once, while nothing else writes (awsstore.Store.SetPoolCounts); no request
// path calls it.
func (e *Engine) Recount(ctx context.Context) ([]PoolCounts, error) {
	pools, err := e.AllPools(ctx)
	if err != nil {
		return nil, err
	}
	t := Tally{}
	for _, pl := range pools {
		t.Add(PoolCounts{Pool: pl.Name}, 1) // a pool with nothing counted is reset too
	}
	for cursor := ""; ; {
		runners, next, err := e.Store.ListRunners(ctx, "", cursor, MaxListLimit)
		if err != nil {
			return nil, fmt.Errorf("recount runners: %w", err)
		}
		for _, r := range runners {
			t.Add(r.Counts(), 1)
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	for _, pl := range pools {
		for after := ""; ; {
			page, err := e.Store.PendingJobs(ctx, pl.Name, after, MaxListLimit)
			if err != nil {
				return nil, fmt.Errorf("recount pending jobs of pool %s: %w", pl.Name, err)
			}
			for _, j := range page {
				t.Add(j.Counts(), 1)
			}
			if len(page) < MaxListLimit {
				break
			}
			after = page[len(page)-1].QueueKey
		}
	}
	out := make([]PoolCounts, 0, len(t))
	for _, pool := range slices.Sorted(maps.Keys(t)) {
		out = append(out, *t[pool])
	}
	return out, nil
}
