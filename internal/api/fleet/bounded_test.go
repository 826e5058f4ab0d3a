package fleet_test

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/jobs"
)

// seed stores runners over the pools, then jobs spread over every status, two
// repositories and the configured pools (and none), 100 to a commit (a DynamoDB
// transaction's limit). moto copies the table for every transaction, so the runners,
// fewer, go first.
func seed(t *testing.T, e *env, nJobs, nRunners int) {
	t.Helper()
	statuses := []jobs.Status{jobs.StatusWaiting, jobs.StatusQueued, jobs.StatusInProgress, jobs.StatusCompleted}
	pools := []string{"linux", "gpu", ""}
	var c jobs.Change
	for i := range nRunners {
		c.Runners = append(c.Runners, &jobs.Runner{Name: fmt.Sprintf("runner-%04d", i), Pool: pools[i%2], State: jobs.RunnerIdle, LastSeen: t0})
	}
	for i := range nJobs {
		at := t0.Add(time.Duration(i) * time.Second)
		// Few fields: moto's cost per transaction grows with the bytes in the table.
		j := &jobs.Job{ID: int64(i + 1), Repository: []string{"octo/api", "octo/web"}[i%2], Pool: pools[i%3],
			Status: statuses[i%4], CreatedAt: at}
		if j.Status == jobs.StatusQueued && j.Pool != "" {
			j.Allocation, j.QueueKey = jobs.AllocationPending, jobs.RankKey(at, j.ID)
		}
		c.Jobs = append(c.Jobs, j)
	}
	for len(c.Runners) > 0 {
		n := min(100, len(c.Runners))
		e.commit(t, &jobs.Change{Runners: c.Runners[:n]})
		c.Runners = c.Runners[n:]
	}
	for len(c.Jobs) > 0 {
		n := min(100, len(c.Jobs))
		e.commit(t, &jobs.Change{Jobs: c.Jobs[:n]})
		c.Jobs = c.Jobs[n:]
	}
}

// A page costs the same DynamoDB requests with 10 or with 500 jobs (and 10 or 100
// runners): each listing is a fixed number of index Queries bounded by the page size,
// never a Scan or a walk through everything stored.
func TestListingCostDoesNotGrow(t *testing.T) {
	t.Parallel()
	small, large := newDynamoDB(t), newDynamoDB(t)
	seed(t, small, 10, 10)
	seed(t, large, 500, 100)
	cases := []struct {
		query string
		// queries is what a page costs: one Query per partition merged, plus one of the
		// stored pools for the pending queues of every pool.
		queries int
	}{
		{"/api/jobs?limit=3", 4},
		{"/api/jobs?limit=3&status=completed", 1},
		{"/api/jobs?limit=3&status=pending", 3},
		{"/api/jobs?limit=3&status=pending&pool=linux", 1},
		{"/api/jobs?limit=3&status=pending&repository=octo/web", 3},
		{"/api/jobs?limit=3&repository=octo/api", 4},
		{"/api/jobs?limit=3&pool=gpu&status=in_progress", 1},
		{"/api/jobs?limit=3&repository=octo/api&pool=linux", 4},
		{"/api/runners?limit=3", 4}, // the runners' partition is spread over 4 keys, by pool
		{"/api/runners?limit=3&pool=gpu", 1},
	}
	for _, c := range cases {
		cost := func(e *env, path string) (map[string]int, *string) {
			t.Helper()
			var next struct {
				NextCursor *string `json:"nextCursor"`
			}
			requests := e.requests.During(func() { e.request(t, http.MethodGet, path, nil).data(t, &next) })
			return requests, next.NextCursor
		}
		want := map[string]int{"Query": c.queries}
		smallCost, _ := cost(small, c.query)
		largeCost, next := cost(large, c.query)
		if !maps.Equal(smallCost, want) || !maps.Equal(largeCost, want) {
			t.Errorf("GET %s: requests with 10 jobs %v, with 500 %v; want %v", c.query, smallCost, largeCost, want)
		}
		if next == nil {
			t.Fatalf("GET %s on 500 jobs: no next page", c.query)
		}
		if page2, _ := cost(large, c.query+"&cursor="+url.QueryEscape(*next)); !maps.Equal(page2, want) {
			t.Errorf("GET %s, second page: requests %v, want %v", c.query, page2, want)
		}
	}
}
