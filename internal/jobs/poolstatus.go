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

// maxStatusPending bounds how much of a pending queue PoolStatus reads.
const maxStatusPending = 1000

// PoolStatus is one pool's runners and queue at one moment.
type PoolStatus struct {
	Pool
	// Runners by what they can do now; an offline runner counts only as Offline.
	Idle, Reserved, Busy, Offline int
	// PendingJobs counts the pool's pending queue, up to maxStatusPending (then
	// PendingCapped is set); OldestWait is the longest wait among them.
	PendingJobs   int
	PendingCapped bool
	OldestWait    time.Duration
	// Demand is how many more runners the pool needs now: its pending jobs plus MinIdle,
	// less its idle runners, at most MaxRunners less the runners online.
	Demand int
}

// PoolStatus reads every pool's status at now. It reads each pool's runners (a page per
// MaxListLimit runners) and up to maxStatusPending of its pending queue.
func (e *Engine) PoolStatus(ctx context.Context, now time.Time, offlineAfter time.Duration) ([]PoolStatus, error) {
	pools, err := e.AllPools(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]PoolStatus, len(pools))
	for i, pl := range pools {
		st := PoolStatus{Pool: pl}
		for cursor := ""; ; {
			runners, next, err := e.Store.ListRunners(ctx, pl.Name, cursor, MaxListLimit)
			if err != nil {
				return nil, fmt.Errorf("runners of pool %s: %w", pl.Name, err)
			}
			for _, r := range runners {
				switch {
				case r.Offline(now, offlineAfter):
					st.Offline++
				case r.State == RunnerIdle:
					st.Idle++
				case r.State == RunnerReserved:
					st.Reserved++
				default:
					st.Busy++
				}
			}
			if cursor = next; cursor == "" {
				break
			}
		}
		pending, err := e.Store.PendingJobs(ctx, pl.Name, "", maxStatusPending+1)
		if err != nil {
			return nil, fmt.Errorf("pending jobs of pool %s: %w", pl.Name, err)
		}
		st.PendingCapped = len(pending) > maxStatusPending
		st.PendingJobs = min(len(pending), maxStatusPending)
		for _, j := range pending[:st.PendingJobs] {
			if !j.QueuedAt.IsZero() {
				st.OldestWait = max(st.OldestWait, now.Sub(j.QueuedAt))
			}
		}
		online := st.Idle + st.Reserved + st.Busy
		st.Demand = max(0, min(st.PendingJobs+pl.MinIdle-st.Idle, pl.MaxRunners-online))
		out[i] = st
	}
	return out, nil
}
