package live

import (
	"context"
	"errors"
	"fmt"

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

// poolStatuses reads the counts of every pool the commit changed (jobs.Commit.Pools).
// The byTime index behind PendingJobs and IdleRunners is eventually consistent on
// DynamoDB and may not show the commit yet, so the commit's own entities override what it
// lists.
func (h *Hub) poolStatuses(ctx context.Context, c *jobs.Commit) ([]Message, error) {
	if h.Pools == nil {
		return nil, nil
	}
	var deliveryID string
	if c.Delivery != nil {
		deliveryID = c.Delivery.DeliveryID
	}
	var msgs []Message
	var errs []error
	for _, pool := range c.Pools {
		d, err := h.poolStatus(ctx, pool, c.Plan)
		if err != nil {
			errs = append(errs, fmt.Errorf("pool-status of %s: %w", pool, err))
			continue
		}
		d.DeliveryID = deliveryID
		msgs = append(msgs, Message{Event: EventPoolStatus, At: c.At, Data: d, Brief: struct {
			Trimmed
			Pool    string `json:"pool"`
			Pending int    `json:"pending"`
			Idle    int    `json:"idle"`
		}{trimmed(""), d.Pool, d.Pending, d.Idle}})
	}
	return msgs, errors.Join(errs...)
}

func (h *Hub) poolStatus(ctx context.Context, pool string, plan *jobs.Plan) (poolStatusData, error) {
	d := poolStatusData{Pool: pool}
	listed, err := h.Pools.PendingJobs(ctx, pool, "", poolCountCap)
	if err != nil {
		return d, err
	}
	idle, err := h.Pools.IdleRunners(ctx, pool, "", poolCountCap)
	if err != nil {
		return d, err
	}
	d.Capped = len(listed) >= poolCountCap || len(idle) >= poolCountCap

	pending := map[int64]bool{}
	for _, j := range listed {
		pending[j.ID] = true
	}
	for _, j := range plan.Change.Jobs {
		pending[j.ID] = j.Pool == pool && j.Allocation == jobs.AllocationPending
		if j.Pool == pool {
			d.Jobs = append(d.Jobs, poolJob{ID: j.ID, Status: j.Status, Allocation: j.Allocation, ReservedRunner: j.ReservedRunner})
		}
	}
	idleNames := map[string]bool{}
	for _, r := range idle {
		idleNames[r.Name] = true
	}
	for _, r := range plan.Change.Runners {
		idleNames[r.Name] = r.Pool == pool && r.State == jobs.RunnerIdle
		if r.Pool == pool {
			d.Runners = append(d.Runners, poolRunner{Name: r.Name, State: r.State, JobID: r.JobID})
		}
	}
	for _, r := range plan.Change.DeleteRunners {
		idleNames[r.Name] = false
		if r.Pool == pool {
			d.Runners = append(d.Runners, poolRunner{Name: r.Name, State: runnerRemoved})
		}
	}
	d.Pending, d.Idle = countTrue(pending), countTrue(idleNames)
	return d, nil
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
