package jobs

import (
	"context"
	"fmt"
	"time"
)

// A demand is sent once, after the commit that left its job waiting. It can still be lost:
// the process may end between the commit and the send, the queue may refuse it, or
// whatever starts runners may drop it. For a pool that scales from zero, a lost demand
// would leave its job waiting for good, so the demands of jobs still waiting are sent
// again from time to time (level-triggered, like a controller's resync): consumers already
// treat a repeated (Pool, JobID) as the same request.

// MaxResentPerPool bounds how many demands one resend sends per pool: the jobs first in
// its queue, which are the ones the next runners will take.
const MaxResentPerPool = 100

// DefaultResendAfter is how long a job waits before its demand is sent again.
const DefaultResendAfter = 10 * time.Minute

// StaleDemands returns the demands of the jobs that have been pending since before
// now - after, at most MaxResentPerPool per pool, in each pool's queue order.
func (e *Engine) StaleDemands(ctx context.Context, now time.Time, after time.Duration) ([]Demand, error) {
	pools, err := e.AllPools(ctx)
	if err != nil {
		return nil, err
	}
	var out []Demand
	for _, pl := range pools {
		pending, err := e.Store.PendingJobs(ctx, pl.Name, "", MaxResentPerPool)
		if err != nil {
			return nil, fmt.Errorf("pending jobs of pool %s: %w", pl.Name, err)
		}
		for _, j := range pending {
			if j.QueuedAt.After(now.Add(-after)) {
				continue
			}
			d := demandFor(j, now)
			d.Resent = true
			out = append(out, d)
		}
	}
	return out, nil
}
