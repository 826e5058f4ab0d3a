package live

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/runnerhub/webhooks/internal/jobs"
)

// poolCountCap bounds the index reads behind a pool-status message's counts: larger
// counts are reported as the cap, with "capped": true.
const poolCountCap = 100

type poolStatusData struct {
	Pool string `json:"pool"`
	// Pending jobs (queued, waiting for a runner) and idle runners after the change.
	Pending int  `json:"pending"`
	Idle    int  `json:"idle"`
	Capped  bool `json:"capped,omitempty"`
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

// poolCounts is what a pool's indexes list, read once per fan-out run.
type poolCounts struct {
	pending map[int64]bool
	idle    map[string]bool
	capped  bool
}

func (h *Hub) readPool(ctx context.Context, pool string) (poolCounts, error) {
	listed, err := h.Pools.PendingJobs(ctx, pool, "", poolCountCap)
	if err != nil {
		return poolCounts{}, err
	}
	idle, err := h.Pools.IdleRunners(ctx, pool, "", poolCountCap)
	if err != nil {
		return poolCounts{}, err
	}
	c := poolCounts{pending: map[int64]bool{}, idle: map[string]bool{}, capped: len(listed) >= poolCountCap || len(idle) >= poolCountCap}
	for _, j := range listed {
		c.pending[j.ID] = true
	}
	for _, r := range idle {
		c.idle[r.Name] = true
	}
	return c, nil
}

// poolStatuses returns the pool-status messages of an announcement, one per pool it
// names, reading each pool's counts once per fan-out run (read holds them). The byTime
// index behind PendingJobs and IdleRunners is eventually consistent on DynamoDB and may
// not show the commit yet, so the commit's own entities override what it lists: each
// message's counts are right for its commit, and the last one of a run for them all.
func (h *Hub) poolStatuses(ctx context.Context, a Announcement, read map[string]poolCounts) ([]Frame, error) {
	var msgs []Message
	var errs []error
	for _, pool := range a.Pools {
		counts, ok := read[pool]
		if !ok {
			var err error
			if counts, err = h.readPool(ctx, pool); err != nil {
				errs = append(errs, fmt.Errorf("pool-status of %s: %w", pool, err))
				continue
			}
			read[pool] = counts
		}
		d := poolStatus(pool, counts, a)
		msgs = append(msgs, Message{Event: EventPoolStatus, At: a.At, Data: d, Brief: struct {
			Trimmed
			Pool    string `json:"pool"`
			Pending int    `json:"pending"`
			Idle    int    `json:"idle"`
		}{trimmed(""), d.Pool, d.Pending, d.Idle}})
	}
	frames, err := encodeAll(msgs)
	return frames, errors.Join(append(errs, err)...)
}

func poolStatus(pool string, counts poolCounts, a Announcement) poolStatusData {
	d := poolStatusData{Pool: pool, Capped: counts.capped, DeliveryID: a.DeliveryID}
	pending := maps.Clone(counts.pending)
	for _, j := range a.Jobs {
		pending[j.ID] = j.Pool == pool && j.Allocation == jobs.AllocationPending
		if j.Pool == pool {
			d.Jobs = append(d.Jobs, j.poolJob)
		}
	}
	idle := maps.Clone(counts.idle)
	for _, r := range a.Runners {
		idle[r.Name] = r.Pool == pool && r.State == jobs.RunnerIdle
		if r.Pool == pool {
			d.Runners = append(d.Runners, r.poolRunner)
		}
	}
	d.Pending, d.Idle = countTrue(pending), countTrue(idle)
	return d
}

func countTrue[K comparable](m map[K]bool) int {
	n := 0
	for _, v := range m {
		if v {
			n++
		}
	}
	return n
}
