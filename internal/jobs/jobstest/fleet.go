package jobstest

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/testenv/suite"
)

// FleetSuite runs what jobs.Store promises for the fleet listings (ListJobs, ListRunners)
// and Runner.LastSeen against stores from newStore, under the same rules as StoreSuite:
// every subtest uses repositories, pools and runners of its own, so newStore may hand out
// the same stores each time. Listings without a repository or pool see other subtests'
// jobs too, so for those the suite checks the order of all and the presence of its own.
//
// Beyond the ports' comments, the suite holds a listing to this: paging with the returned
// cursors until it is "" yields every selected entity once, in the listing's order (jobs
// newest first by StatusSince then id; pending jobs in queue order; runners by pool then
// name), in pages of at most the limit that are full except the last, unless the filter
// is applied on the page (a repository with a pool, or with status pending).
func FleetSuite(t *testing.T, newStore func(t *testing.T) Stores) {
	suite.Run(t, newStore, suite.Cases[Stores]{
		{"ListJobs", testListJobs},
		{"ListJobsFollowsChanges", testListJobsFollowsChanges},
		{"ListRunners", testListRunners},
		{"ListRunnersFollowsChanges", testListRunnersFollowsChanges},
		{"RunnerLastSeen", testRunnerLastSeen},
		{"StartingRunner", testStartingRunner},
		{"InvalidListings", testInvalidListings},
	})
}

// fleet is one subtest's repositories, pools and jobs.
type fleet struct {
	repoA, repoB, poolA, poolB string
	jobs                       []*jobs.Job
}

// newFleet stores jobs of every status and allocation over two repositories and two
// pools (and none), with StatusSince times out of id order and some ties.
func newFleet(t *testing.T, s jobs.Store) *fleet {
	t.Helper()
	f := &fleet{repoA: newRepo(), repoB: newRepo(), poolA: newName("pool"), poolB: newName("pool")}
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	kinds := []func(j *jobs.Job, at time.Time){
		func(j *jobs.Job, at time.Time) { j.Status, j.CreatedAt = jobs.StatusWaiting, at },
		func(j *jobs.Job, at time.Time) {
			j.Status, j.QueuedAt, j.Allocation = jobs.StatusQueued, at, jobs.AllocationPending
			j.QueueKey = jobs.RankKey(jobs.Rank(at, j.Priority, jobs.DefaultPriorityStep), j.ID)
		},
		func(j *jobs.Job, at time.Time) {
			j.Status, j.QueuedAt, j.Allocation, j.ReservedRunner = jobs.StatusQueued, at, jobs.AllocationReserved, newName("runner")
		},
		func(j *jobs.Job, at time.Time) {
			j.Status, j.QueuedAt, j.StartedAt, j.Allocation = jobs.StatusInProgress, at.Add(-time.Minute), at, jobs.AllocationAssigned
		},
		func(j *jobs.Job, at time.Time) {
			j.Status, j.StartedAt, j.CompletedAt, j.Conclusion = jobs.StatusCompleted, at.Add(-time.Minute), at, "success"
			j.Allocation = jobs.AllocationAssigned
		},
	}
	repos, pools := []string{f.repoA, f.repoB}, []string{f.poolA, f.poolB, ""}
	for i := range 30 {
		j := &jobs.Job{ID: newID(), Repository: repos[i%2], Pool: pools[i%3], Name: fmt.Sprintf("job %d", i),
			Priority: []int{0, 10, 100}[i%3], CreatedAt: t0}
		// Times go up and down with i and repeat after 23 jobs, so that some tie.
		at := t0.Add(time.Duration((i*7)%23) * time.Minute)
		kinds[i%len(kinds)](j, at)
		if j.Pool == "" && j.Allocation != "" {
			j.Allocation, j.QueueKey, j.ReservedRunner = jobs.AllocationUnmatched, "", ""
		}
		f.jobs = append(f.jobs, j)
	}
	mustCommit(t, s, &jobs.Change{Jobs: f.jobs})
	return f
}

// selects reports whether filter selects j.
func selects(filter jobs.JobFilter, j *jobs.Job) bool {
	switch {
	case filter.Repository != "" && j.Repository != filter.Repository:
		return false
	case filter.Status == jobs.StatusPending:
		pools := filter.Pools
		if filter.Pool != "" {
			pools = []string{filter.Pool}
		}
		return j.Allocation == jobs.AllocationPending && slices.Contains(pools, j.Pool)
	case filter.Pool != "" && j.Pool != filter.Pool:
		return false
	}
	return filter.Status == "" || j.Status == filter.Status
}

// listingOrder is the order of a listing: queue order for pending jobs, else newest first.
func listingOrder(filter jobs.JobFilter) func(a, b *jobs.Job) int {
	if filter.Status == jobs.StatusPending {
		return func(a, b *jobs.Job) int { return strings.Compare(a.QueueKey, b.QueueKey) }
	}
	return func(a, b *jobs.Job) int {
		return cmp.Or(b.StatusSince().Compare(a.StatusSince()), cmp.Compare(b.ID, a.ID))
	}
}

// pageFiltered reports whether filter is partly applied to the entries a page read.
func pageFiltered(filter jobs.JobFilter) bool {
	return filter.Repository != "" && (filter.Pool != "" || filter.Status == jobs.StatusPending)
}

// pageJobs lists every job filter selects, page by page, checking the pages' sizes.
func pageJobs(t *testing.T, s jobs.Store, filter jobs.JobFilter) []*jobs.Job {
	t.Helper()
	var all []*jobs.Job
	for page := 1; ; page++ {
		got, next, err := s.ListJobs(t.Context(), filter)
		if err != nil {
			t.Fatalf("ListJobs %+v: %v", filter, err)
		}
		switch {
		case len(got) > filter.Limit:
			t.Fatalf("ListJobs %+v: %d jobs, more than the limit", filter, len(got))
		case next != "" && len(got) < filter.Limit && !pageFiltered(filter):
			t.Fatalf("ListJobs %+v: page %d has %d jobs and a next page", filter, page, len(got))
		case page > 1000:
			t.Fatalf("ListJobs %+v: more than 1000 pages", filter)
		}
		all = append(all, got...)
		if next == "" {
			return all
		}
		filter.Cursor = next
	}
}

func testListJobs(t *testing.T, s Stores) {
	f := newFleet(t, s.Jobs)
	both := []string{f.poolA, f.poolB}
	filters := []jobs.JobFilter{
		{Repository: f.repoA},
		{Repository: f.repoB, Status: jobs.StatusCompleted},
		{Repository: f.repoA, Status: jobs.StatusQueued},
		{Pool: f.poolA},
		{Pool: f.poolB, Status: jobs.StatusInProgress},
		{Repository: f.repoA, Pool: f.poolA},
		{Repository: f.repoB, Pool: f.poolB, Status: jobs.StatusQueued},
		{Status: jobs.StatusPending, Pool: f.poolA},
		{Status: jobs.StatusPending, Pools: both},
		{Status: jobs.StatusPending, Pools: both, Repository: f.repoB},
		{Status: jobs.StatusPending, Pool: newName("pool")},
		{Status: jobs.StatusWaiting},
		{},
	}
	ours := map[int64]bool{}
	for _, j := range f.jobs {
		ours[j.ID] = true
	}
	for _, filter := range filters {
		for _, limit := range []int{1, 2, 7, jobs.MaxListLimit} {
			filter.Limit = limit
			t.Run(fmt.Sprintf("%+v", filter), func(t *testing.T) {
				order := listingOrder(filter)
				got := pageJobs(t, s.Jobs, filter)
				for i := 1; i < len(got); i++ {
					if order(got[i-1], got[i]) >= 0 {
						t.Fatalf("job %d listed before job %d, out of order", got[i-1].ID, got[i].ID)
					}
				}
				// Without a repository or pool the listing holds others' jobs too.
				got = slices.DeleteFunc(got, func(j *jobs.Job) bool { return !ours[j.ID] })
				want := slices.DeleteFunc(slices.Clone(f.jobs), func(j *jobs.Job) bool { return !selects(filter, j) })
				slices.SortFunc(want, order)
				checkIDs(t, "listed", jobIDs(got), jobIDs(want)...)
				if len(got) > 0 {
					checkFields(t, "first job", got[0], mustJob(t, s.Jobs, got[0].ID))
				}
			})
		}
	}
}

// A job that changes status, allocation or time moves in the listings at once, and is
// never listed twice.
func testListJobsFollowsChanges(t *testing.T, s Stores) {
	f := newFleet(t, s.Jobs)
	update := func(id int64, change func(j *jobs.Job)) {
		t.Helper()
		j := mustJob(t, s.Jobs, id)
		change(j)
		mustCommit(t, s.Jobs, &jobs.Change{Jobs: []*jobs.Job{j}})
	}
	var pending, running *jobs.Job
	for _, j := range f.jobs {
		switch {
		case pending == nil && j.Allocation == jobs.AllocationPending:
			pending = j
		case running == nil && j.Status == jobs.StatusInProgress && j.Pool != "":
			running = j
		}
	}
	listed := func(filter jobs.JobFilter, id int64) bool {
		t.Helper()
		filter.Limit = jobs.MaxListLimit
		return slices.Contains(jobIDs(pageJobs(t, s.Jobs, filter)), id)
	}
	check := func(step string, id int64, in, out []jobs.JobFilter) {
		t.Helper()
		for _, filter := range in {
			if !listed(filter, id) {
				t.Errorf("%s: job %d missing from %+v", step, id, filter)
			}
		}
		for _, filter := range out {
			if listed(filter, id) {
				t.Errorf("%s: job %d still in %+v", step, id, filter)
			}
		}
	}

	update(pending.ID, func(j *jobs.Job) { reserve(j, newRunner(j.Pool, jobs.RunnerIdle)) })
	check("reserved", pending.ID,
		[]jobs.JobFilter{{Pool: pending.Pool, Status: jobs.StatusQueued}, {Repository: pending.Repository}},
		[]jobs.JobFilter{{Status: jobs.StatusPending, Pool: pending.Pool}})

	done := running.StartedAt.Add(time.Minute)
	update(running.ID, func(j *jobs.Job) { j.Status, j.CompletedAt, j.Conclusion = jobs.StatusCompleted, done, "failure" })
	check("completed", running.ID,
		[]jobs.JobFilter{{Repository: running.Repository, Status: jobs.StatusCompleted}, {Pool: running.Pool, Status: jobs.StatusCompleted}},
		[]jobs.JobFilter{{Repository: running.Repository, Status: jobs.StatusInProgress}, {Pool: running.Pool, Status: jobs.StatusInProgress}})

	// A completion time learnt late moves the job to its new place, once.
	update(running.ID, func(j *jobs.Job) { j.CompletedAt = j.CompletedAt.Add(-30 * time.Second) })
	filter := jobs.JobFilter{Repository: running.Repository, Status: jobs.StatusCompleted, Limit: 1}
	got := pageJobs(t, s.Jobs, filter)
	if n := len(slices.DeleteFunc(jobIDs(got), func(id int64) bool { return id != running.ID })); n != 1 {
		t.Errorf("job %d listed %d times after its completion time changed", running.ID, n)
	}
	for i := 1; i < len(got); i++ {
		if listingOrder(filter)(got[i-1], got[i]) >= 0 {
			t.Errorf("after a completion time changed: job %d listed before job %d", got[i-1].ID, got[i].ID)
		}
	}
}

func testListRunners(t *testing.T, s Stores) {
	// The second pool's name extends the first's: its runners must not leak into it.
	pool := newName("pool")
	other := pool + "-x"
	base := newName("runner")
	var runners []*jobs.Runner
	for _, r := range []struct{ suffix, pool string }{{"-c", pool}, {"-a", pool}, {"-d", other}, {"-b", pool}, {"-e", other}} {
		rn := newRunner(r.pool, jobs.RunnerIdle)
		rn.Name = base + r.suffix
		runners = append(runners, rn)
	}
	mustCommit(t, s.Jobs, &jobs.Change{Runners: runners})

	for _, limit := range []int{1, 2, jobs.MaxListLimit} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			checkNames(t, "ListRunners of the pool", runnerNames(pageRunners(t, s.Jobs, pool, limit)), base+"-a", base+"-b", base+"-c")
			checkNames(t, "ListRunners of the other pool", runnerNames(pageRunners(t, s.Jobs, other, limit)), base+"-d", base+"-e")
			checkNames(t, "ListRunners of an unknown pool", runnerNames(pageRunners(t, s.Jobs, newName("pool"), limit)))
			all := pageRunners(t, s.Jobs, "", limit)
			for i := 1; i < len(all); i++ {
				if a, b := all[i-1], all[i]; cmp.Or(strings.Compare(a.Pool, b.Pool), strings.Compare(a.Name, b.Name)) >= 0 {
					t.Fatalf("ListRunners: %s/%s before %s/%s, want by pool then name", a.Pool, a.Name, b.Pool, b.Name)
				}
			}
			ours := slices.DeleteFunc(runnerNames(all), func(n string) bool { return !strings.HasPrefix(n, base) })
			checkNames(t, "ListRunners of all pools (ours)", ours, base+"-a", base+"-b", base+"-c", base+"-d", base+"-e")
		})
	}
	if got := pageRunners(t, s.Jobs, pool, 1); len(got) > 0 {
		checkFields(t, "first runner", got[0], mustRunner(t, s.Jobs, got[0].Name))
	}
}

// pageRunners lists a pool's runners page by page, checking the pages' sizes.
func pageRunners(t *testing.T, s jobs.Store, pool string, limit int) []*jobs.Runner {
	t.Helper()
	var all []*jobs.Runner
	for cursor, page := "", 1; ; page++ {
		got, next, err := s.ListRunners(t.Context(), pool, cursor, limit)
		switch {
		case err != nil:
			t.Fatalf("ListRunners %q: %v", pool, err)
		case len(got) > limit || (next != "" && len(got) < limit):
			t.Fatalf("ListRunners %q limit %d: page %d has %d runners (next %q)", pool, limit, page, len(got), next)
		case page > 1000:
			t.Fatalf("ListRunners %q: more than 1000 pages", pool)
		}
		all = append(all, got...)
		if cursor = next; cursor == "" {
			return all
		}
	}
}

func testListRunnersFollowsChanges(t *testing.T, s Stores) {
	pool, other := newName("pool"), newName("pool")
	a, b := newRunner(pool, jobs.RunnerIdle), newRunner(pool, jobs.RunnerBusy)
	mustCommit(t, s.Jobs, &jobs.Change{Runners: []*jobs.Runner{a, b}})

	moved := mustRunner(t, s.Jobs, a.Name)
	moved.Pool = other
	mustCommit(t, s.Jobs, &jobs.Change{Runners: []*jobs.Runner{moved}})
	checkNames(t, "ListRunners after a move", runnerNames(pageRunners(t, s.Jobs, pool, 10)), b.Name)
	checkNames(t, "ListRunners of the new pool", runnerNames(pageRunners(t, s.Jobs, other, 10)), a.Name)

	mustCommit(t, s.Jobs, &jobs.Change{DeleteRunners: []*jobs.Runner{mustRunner(t, s.Jobs, b.Name)}})
	checkNames(t, "ListRunners after a delete", runnerNames(pageRunners(t, s.Jobs, pool, 10)))
}

func testRunnerLastSeen(t *testing.T, s Stores) {
	r := newRunner(newName("pool"), jobs.RunnerIdle)
	r.LastSeen = time.Date(2025, 6, 30, 23, 59, 59, 999_999_999, zone)
	mustCommit(t, s.Jobs, &jobs.Change{Runners: []*jobs.Runner{r}})
	checkFields(t, "Runner", mustRunner(t, s.Jobs, r.Name), atVersion(r, 1))

	seen := mustRunner(t, s.Jobs, r.Name)
	seen.LastSeen = seen.LastSeen.Add(time.Hour)
	mustCommit(t, s.Jobs, &jobs.Change{Runners: []*jobs.Runner{seen}})
	checkTime(t, "LastSeen after an update", mustRunner(t, s.Jobs, r.Name).LastSeen, seen.LastSeen)
}

// A starting runner keeps what retiring it needs (its provider's and GitHub's ids), and
// the job it was started for remembers it; a starting runner is not idle.
func testStartingRunner(t *testing.T, s Stores) {
	pool := newName("pool")
	r := newRunner(pool, jobs.RunnerStarting)
	j := pendingJob(pool, time.Date(2025, 7, 1, 8, 0, 0, 0, zone), 0)
	r.JobID, r.GitHubID, r.ProviderID, j.StartedRunner = j.ID, 4242, "i-0123456789abcdef0", r.Name
	mustCommit(t, s.Jobs, &jobs.Change{Runners: []*jobs.Runner{r}, Jobs: []*jobs.Job{j}})
	checkFields(t, "Runner", mustRunner(t, s.Jobs, r.Name), atVersion(r, 1))
	if got, err := s.Jobs.Job(t.Context(), j.ID); err != nil || got.StartedRunner != r.Name {
		t.Fatalf("job's StartedRunner = %q, %v; want %s", got.StartedRunner, err, r.Name)
	}
	idle, err := s.Jobs.IdleRunners(t.Context(), pool, "", 10)
	if err != nil || len(idle) != 0 {
		t.Fatalf("IdleRunners beside a starting runner = %d runners, %v; want none", len(idle), err)
	}
}

// Malformed filters and cursors are refused with jobs.ErrInvalid, not answered empty.
func testInvalidListings(t *testing.T, s Stores) {
	cursor := func(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }
	jobFilters := []jobs.JobFilter{
		{Status: "running", Limit: 10},
		{Repository: "no-owner", Limit: 10},
		{Pool: "no pool", Limit: 10},
		{Status: jobs.StatusPending, Pools: []string{"a#b"}, Limit: 10},
		{Limit: 0},
		{Limit: jobs.MaxListLimit + 1},
		{Cursor: "not base64!", Limit: 10},
		{Cursor: cursor("not a key"), Limit: 10},
	}
	for _, f := range jobFilters {
		if _, _, err := s.Jobs.ListJobs(t.Context(), f); !errors.Is(err, jobs.ErrInvalid) {
			t.Errorf("ListJobs %+v: err = %v, want ErrInvalid", f, err)
		}
	}
	runnerLists := []struct {
		pool, cursor string
		limit        int
	}{{"no pool", "", 10}, {"", "", 0}, {"", "", jobs.MaxListLimit + 1}, {"", "%%%", 10}, {"", cursor("no separator"), 10}}
	for _, l := range runnerLists {
		if _, _, err := s.Jobs.ListRunners(t.Context(), l.pool, l.cursor, l.limit); !errors.Is(err, jobs.ErrInvalid) {
			t.Errorf("ListRunners %+v: err = %v, want ErrInvalid", l, err)
		}
	}
}
