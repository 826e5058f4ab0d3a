package live

import (
	"context"
	"fmt"

	"github.com/runnerhub/webhooks/internal/jobs"
)

type poolStatusData struct {
	Pool string `json:"pool"`
	// Pending jobs (queued, waiting for a runner) and idle runners, exactly, as the
	// pool's counts (jobs.Store.PoolCounts) stood when the fan-out ran.
	Pending int64 `json:"pending"`
	Idle    int64 `json:"idle"`
	// Jobs and Runners are what this delivery changed in the pool.
	Jobs       []poolJob    `json:"jobs,omitempty"`
	Runners    []poolRunner `json:"runners,omitempty"`
	DeliveryID string       `json:"deliveryId"`
}

type poolJob struct {
	ID             int64           `json:"id"`
	Status         jobs.Status     `json:"status"`
	Allocation     jobs.Allocation `json:"allocation,omitempty"`
	ReservedRunner string          `json:"reservedRunner,omitempty"`
}

type poolRunner struct {
	Name  string           `json:"name"`
	State jobs.RunnerState `json:"state"` // "removed" for a runner the delivery deleted
	JobID int64            `json:"jobId,omitempty"`
}

const runnerRemoved jobs.RunnerState = "removed"

// readPools returns the counts of pools, every pool the run's announcements name, read
// in one Store.PoolCounts call per fan-out run. The stores keep the counts in the commit's
// own write and read them strongly consistent, so they already hold every commit of the
// run: each pool-status of a run carries the pool's counts after all of them.
func (h *Hub) readPools(ctx context.Context, pools []string) (map[string]jobs.PoolCounts, error) {
	counts, err := h.Pools.PoolCounts(ctx, pools)
	if err != nil {
		return nil, fmt.Errorf("pool-status of %v: %w", pools, err)
	}
	read := make(map[string]jobs.PoolCounts, len(counts))
	for _, c := range counts {
		read[c.Pool] = c
	}
	return read, nil
}

// poolStatuses returns the pool-status messages of an announcement, one per pool it
// names that has counts in read (none when they could not be read).
func poolStatuses(a Announcement, read map[string]jobs.PoolCounts) ([]Frame, error) {
	var msgs []Message
	for _, pool := range a.Pools {
		counts, ok := read[pool]
		if !ok {
			continue
		}
		d := poolStatus(counts, a)
		msgs = append(msgs, Message{Event: EventPoolStatus, At: a.At, Data: d, Brief: struct {
			Trimmed
			Pool    string `json:"pool"`
			Pending int64  `json:"pending"`
			Idle    int64  `json:"idle"`
		}{trimmed(""), d.Pool, d.Pending, d.Idle}})
	}
	return encodeAll(msgs)
}

func poolStatus(counts jobs.PoolCounts, a Announcement) poolStatusData {
	d := poolStatusData{Pool: counts.Pool, Pending: counts.Pending, Idle: counts.Idle, DeliveryID: a.DeliveryID}
	for _, j := range a.Jobs {
		if j.Pool == counts.Pool {
			d.Jobs = append(d.Jobs, j.poolJob)
		}
	}
	for _, r := range a.Runners {
		if r.Pool == counts.Pool {
			d.Runners = append(d.Runners, r.poolRunner)
		}
	}
	return d
}
