package jobs

import (
	"context"
	"fmt"
	"time"
)

// DefaultOfflineAfter is how long a runner may go unseen before it counts as offline
// (RUNNERHUB_RUNNER_OFFLINE_AFTER).
const DefaultOfflineAfter = 5 * time.Minute

// Offline reports whether the runner counts as offline at now: not seen (registered,
// heartbeat, or named by a job event) for longer than after. Offline is decided on read,
// so no write is needed when a runner goes silent.
func (r *Runner) Offline(now time.Time, after time.Duration) bool {
	return r.LastSeen.IsZero() || now.Sub(r.LastSeen) > after
}

// maxStatusIdle bounds how many of a pool's idle runners PoolStatus reads to find
// those that went silent.
const maxStatusIdle = MaxListLimit

// PoolStatus is one pool's runners and queue at one moment.
type PoolStatus struct {
	Pool
	// Runners by state, from the pool's counts (PoolCounts), except that the silent
	// runners found among the first maxStatusIdle idle ones count only as Offline.
	Idle, Reserved, Busy, Starting, Offline int
	// PendingJobs counts the pool's pending queue; OldestWait is how long the job at its
	// head (the next to be served) has waited.
	PendingJobs int
	OldestWait  time.Duration
	// Demand is how many more runners the pool needs now: its pending jobs plus MinIdle,
	// less its idle runners, at most MaxRunners less the runners online.
	Demand int
}

// PoolStatus reads every pool's status at now with a fixed number of reads whatever the
// size of the fleet: the pools, their counts (Store.PoolCounts), and per pool the head
// of its pending queue and one page of its idle runners (for those gone silent, as
// offline is decided on read). The head of the queue is the job that has waited longest
// in virtual time; by queued time, a job of lower priority behind it may have waited up
// to (the difference of their priorities) × Step longer.
func (e *Engine) PoolStatus(ctx context.Context, now time.Time, offlineAfter time.Duration) ([]PoolStatus, error) {
	pools, err := e.AllPools(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(pools))
	for i, pl := range pools {
		names[i] = pl.Name
	}
	counts, err := e.Store.PoolCounts(ctx, names)
	if err != nil {
		return nil, fmt.Errorf("pool counts: %w", err)
	}
	out := make([]PoolStatus, len(pools))
	for i, pl := range pools {
		c := counts[i]
		st := PoolStatus{Pool: pl, Idle: int(c.Idle), Reserved: int(c.Reserved), Busy: int(c.Busy),
			Starting: int(c.Starting), PendingJobs: int(c.Pending)}
		idle, err := e.Store.IdleRunners(ctx, pl.Name, "", maxStatusIdle)
		if err != nil {
			return nil, fmt.Errorf("idle runners of pool %s: %w", pl.Name, err)
		}
		for _, r := range idle {
			if r.Offline(now, offlineAfter) {
				st.Offline++
			}
		}
		// On DynamoDB the idle index may lag the counts by a moment (a runner just
		// removed): never report fewer than no idle runners.
		st.Idle = max(0, st.Idle-st.Offline)
		head, err := e.Store.PendingJobs(ctx, pl.Name, "", 1)
		if err != nil {
			return nil, fmt.Errorf("pending jobs of pool %s: %w", pl.Name, err)
		}
		if len(head) > 0 && !head[0].QueuedAt.IsZero() {
			st.OldestWait = max(0, now.Sub(head[0].QueuedAt))
		}
		online := st.Idle + st.Reserved + st.Busy + st.Starting
		st.Demand = max(0, min(st.PendingJobs+pl.MinIdle-st.Idle, pl.MaxRunners-online))
		out[i] = st
	}
	return out, nil
}
