package fleet_test

import (
	"fmt"
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/jobs/jobstest"
)

// seedFleet stores nRunners runners, idle in linux and busy in gpu by turns, and nJobs
// jobs pending in those pools, 90 to a commit (a DynamoDB transaction takes 100 writes,
// the pools' counts included), with their pool counts as the engine would have kept them.
func seedFleet(t *testing.T, e *env, nRunners, nJobs int) {
	t.Helper()
	now := e.clock()
	var runners []*jobs.Runner
	for i := range nRunners {
		r := &jobs.Runner{Name: fmt.Sprintf("runner-%04d", i), Pool: "linux", State: jobs.RunnerIdle, LastSeen: now}
		if i%2 == 1 {
			r.Pool, r.State, r.JobID = "gpu", jobs.RunnerBusy, int64(100_000+i)
		}
		runners = append(runners, r)
	}
	var pending []*jobs.Job
	for i := range nJobs {
		at := now.Add(-time.Duration(nJobs-i) * time.Second)
		pending = append(pending, &jobs.Job{ID: int64(i + 1), Repository: "octo/api", Pool: []string{"linux", "gpu"}[i%2],
			Status: jobs.StatusQueued, CreatedAt: at, QueuedAt: at, Allocation: jobs.AllocationPending, QueueKey: jobs.RankKey(at, int64(i+1))})
	}
	for len(runners) > 0 {
		n := min(90, len(runners))
		e.commit(t, jobstest.CountNew(t, &jobs.Change{Runners: runners[:n]}))
		runners = runners[n:]
	}
	for len(pending) > 0 {
		n := min(90, len(pending))
		e.commit(t, jobstest.CountNew(t, &jobs.Change{Jobs: pending[:n]}))
		pending = pending[n:]
	}
}

// The pool status costs the same DynamoDB requests with 10 runners and with 1,000 (and 10
// or 200 pending jobs): one Query of the stored pools, one BatchGetItem of every pool's
// count shards, and per pool one Query of the head of its queue and one of a page of its
// idle runners. Its numbers are those of the whole fleet all the same.
func TestPoolStatusCostDoesNotGrow(t *testing.T) {
	t.Parallel()
	small, large := newDynamoDB(t), newDynamoDB(t)
	seedFleet(t, small, 10, 10)
	seedFleet(t, large, 1000, 200)
	// Two configured pools: 1 + 2 × 2 Queries.
	want := map[string]int{"Query": 5, "BatchGetItem": 1}
	type counts struct {
		Name        string `json:"name"`
		Idle        int    `json:"idle"`
		Busy        int    `json:"busy"`
		PendingJobs int    `json:"pendingJobs"`
	}
	for _, c := range []struct {
		e       *env
		runners int
		want    []counts
	}{
		{small, 10, []counts{{"gpu", 0, 5, 5}, {"linux", 5, 0, 5}}},
		{large, 1000, []counts{{"gpu", 0, 500, 100}, {"linux", 500, 0, 100}}},
	} {
		var got struct {
			Pools []counts `json:"pools"`
		}
		requests := c.e.requests.During(func() {
			c.e.request(t, http.MethodGet, "/api/runners/pool/status", nil).data(t, &got)
		})
		if !maps.Equal(requests, want) {
			t.Errorf("pool status with %d runners: requests %v, want %v", c.runners, requests, want)
		}
		if fmt.Sprint(got.Pools) != fmt.Sprint(c.want) {
			t.Errorf("pool status with %d runners: %+v, want %+v", c.runners, got.Pools, c.want)
		}
		t.Logf("pool status with %d runners: %v", c.runners, requests)
	}
}
