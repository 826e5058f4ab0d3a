package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/jobs/jobstest"
	"github.com/runnerhub/webhooks/internal/testenv"
)

// The fleet operations are the engine's: they are tested here on the embedded store (the
// stores' part is held to the same rules everywhere by jobstest).

var (
	t0        = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	linux     = jobs.Pool{Name: "linux", Labels: []string{"linux", "x64"}, MinIdle: 1, MaxRunners: 4}
	gpu       = jobs.Pool{Name: "gpu", Labels: []string{"linux", "gpu"}, MaxRunners: 2}
	testPools = []jobs.Pool{gpu, linux}
)

func newEngine(t *testing.T) *jobs.Engine {
	t.Helper()
	db := testenv.Embedded(t)
	return &jobs.Engine{Store: db.Store(), Pools: testPools, Step: time.Minute}
}

// pending stores a job in pool's pending queue, queued at `at` with priority, with
// labels (["linux"], which fits every test pool, when none are given).
func pending(t *testing.T, e *jobs.Engine, id int64, pool string, at time.Time, priority int, labels ...string) *jobs.Job {
	t.Helper()
	if labels == nil {
		labels = []string{"linux"}
	}
	j := &jobs.Job{ID: id, Repository: "octo/repo", Labels: labels, Status: jobs.StatusQueued,
		Priority: priority, Pool: pool, Allocation: jobs.AllocationPending, QueuedAt: at,
		QueueKey: jobs.RankKey(jobs.Rank(at, priority, e.Step), id)}
	commit(t, e, jobstest.CountNew(t, &jobs.Change{Jobs: []*jobs.Job{j}}))
	return j
}

func commit(t *testing.T, e *jobs.Engine, c *jobs.Change) {
	t.Helper()
	if err := e.Store.Commit(t.Context(), c); err != nil {
		t.Fatal(err)
	}
}

func job(t *testing.T, e *jobs.Engine, id int64) *jobs.Job {
	t.Helper()
	return stored(t, e.Store.Job, id)
}

func runner(t *testing.T, e *jobs.Engine, name string) *jobs.Runner {
	t.Helper()
	return stored(t, e.Store.Runner, name)
}

// stored is what read finds under key, the test failing on a read error.
func stored[K, V any](t *testing.T, read func(context.Context, K) (V, error), key K) V {
	t.Helper()
	v, err := read(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func register(t *testing.T, e *jobs.Engine, name, pool string, at time.Time) *jobs.Runner {
	t.Helper()
	if _, _, err := e.RegisterRunner(t.Context(), jobs.RunnerSpec{Name: name, Pool: pool}, at); err != nil {
		t.Fatalf("RegisterRunner %s: %v", name, err)
	}
	return runner(t, e, name)
}

func TestRegisterRunnerTakesTheNextPendingJob(t *testing.T) {
	e := newEngine(t)
	// Queue order: 3 (priority 100 outweighs 30 minutes), then 1, then 2. 4 and 5 wait in
	// the gpu pool, 4 ahead; only 5 also fits the linux pool.
	pending(t, e, 1, "linux", t0, 0)
	pending(t, e, 2, "linux", t0.Add(time.Minute), 0)
	pending(t, e, 3, "linux", t0.Add(30*time.Minute), 100)
	pending(t, e, 4, "gpu", t0.Add(-time.Hour), 0, "linux", "gpu")
	pending(t, e, 5, "gpu", t0.Add(-time.Hour/2), 0, "linux")

	at := t0.Add(time.Hour)
	r, plan, err := e.RegisterRunner(t.Context(), jobs.RunnerSpec{Name: "linux-1", Pool: "linux", Labels: []string{"big"}, Ephemeral: true}, at)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != jobs.RunnerReserved || r.JobID != 3 || !r.LastSeen.Equal(at) || !r.Ephemeral || !slices.Equal(r.Labels, []string{"big"}) {
		t.Fatalf("registered runner %+v, want reserved for job 3, seen at %v", r, at)
	}
	if stored := runner(t, e, "linux-1"); stored.State != jobs.RunnerReserved || stored.JobID != 3 || !stored.LastSeen.Equal(at) {
		t.Fatalf("stored runner %+v", stored)
	}
	if j := job(t, e, 3); j.Allocation != jobs.AllocationReserved || j.ReservedRunner != "linux-1" || j.QueueKey != "" {
		t.Fatalf("job 3 %+v, want reserved for linux-1", j)
	}
	if plan.Outcome.Text() != "runner linux-1 registered in pool linux; reserved for job 3" {
		t.Errorf("outcome %q", plan.Outcome.Text())
	}

	r = register(t, e, "linux-2", "linux", at)
	if r.JobID != 1 {
		t.Fatalf("second runner took job %d, want 1", r.JobID)
	}
	if r := register(t, e, "linux-3", "linux", at); r.JobID != 2 {
		t.Fatalf("third runner took job %d, want 2", r.JobID)
	}
	// The linux queue is empty: job 5, waiting in the gpu pool, fits this pool too.
	if r := register(t, e, "linux-4", "linux", at); r.State != jobs.RunnerReserved || r.JobID != 5 {
		t.Fatalf("fourth runner %+v, want reserved for job 5 from the gpu queue", r)
	}
	if j := job(t, e, 5); j.Allocation != jobs.AllocationReserved || j.Pool != "linux" || j.QueueKey != "" {
		t.Fatalf("job 5 %+v, want reserved in pool linux", j)
	}
	if j := job(t, e, 4); j.Allocation != jobs.AllocationPending || j.Pool != "gpu" {
		t.Fatalf("job 4, which does not fit the linux pool, was taken: %+v", j)
	}
}

func TestRegisterRunnerRefuses(t *testing.T) {
	e := newEngine(t)
	register(t, e, "taken", "linux", t0)
	register(t, e, "g-1", "gpu", t0)
	register(t, e, "g-2", "gpu", t0)
	cases := []struct {
		spec jobs.RunnerSpec
		want error
	}{
		{jobs.RunnerSpec{Name: "taken", Pool: "gpu"}, jobs.ErrExists},
		{jobs.RunnerSpec{Name: "new", Pool: "windows"}, jobs.ErrUnknownPool},
		{jobs.RunnerSpec{Name: "third", Pool: "gpu"}, jobs.ErrPoolFull}, // gpu allows 2: g-1, g-2 below
		{jobs.RunnerSpec{Name: "-dash", Pool: "linux"}, jobs.ErrInvalid},
		{jobs.RunnerSpec{Name: "has space", Pool: "linux"}, jobs.ErrInvalid},
		{jobs.RunnerSpec{Name: "new", Pool: "bad pool"}, jobs.ErrInvalid},
		{jobs.RunnerSpec{Name: "new", Pool: "linux", Labels: []string{""}}, jobs.ErrInvalid},
		{jobs.RunnerSpec{Name: "new", Pool: "linux", Labels: make([]string, 51)}, jobs.ErrInvalid},
	}
	for _, c := range cases {
		if _, _, err := e.RegisterRunner(t.Context(), c.spec, t0); !errors.Is(err, c.want) {
			t.Errorf("RegisterRunner %+v: err = %v, want %v", c.spec, err, c.want)
		}
	}
	if _, err := e.Store.Runner(t.Context(), "new"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("a refused registration was stored: %v", err)
	}
}

// Pools created through the API take runners as the configured ones do.
func TestRegisterRunnerInStoredPool(t *testing.T) {
	e := newEngine(t)
	if err := e.Store.PutPool(t.Context(), jobs.Pool{Name: "arm", Labels: []string{"linux", "arm64"}, MaxRunners: 1}); err != nil {
		t.Fatal(err)
	}
	pending(t, e, 9, "arm", t0, 0)
	if r := register(t, e, "arm-1", "arm", t0); r.JobID != 9 {
		t.Fatalf("runner %+v, want reserved for job 9", r)
	}
}

// Runners registering at the same time each commit once; the one pending job goes to
// exactly one of them.
func TestConcurrentRegistrations(t *testing.T) {
	e := newEngine(t)
	pending(t, e, 1, "linux", t0, 0)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, _, errs[i] = e.RegisterRunner(t.Context(), jobs.RunnerSpec{Name: fmt.Sprint("r-", i), Pool: "linux"}, t0)
		})
	}
	wg.Wait()
	// Eight runners race for the pool's four places and its one waiting job: exactly
	// four get in, and exactly one of them holds the job.
	holders, registered := 0, 0
	for i, err := range errs {
		if errors.Is(err, jobs.ErrPoolFull) {
			continue
		}
		if err != nil {
			t.Fatalf("RegisterRunner r-%d: %v", i, err)
		}
		registered++
		if r := runner(t, e, fmt.Sprint("r-", i)); r.JobID == 1 {
			holders++
		}
	}
	if registered != linux.MaxRunners {
		t.Fatalf("%d runners registered in a pool of %d", registered, linux.MaxRunners)
	}
	if j := job(t, e, 1); holders != 1 || j.Allocation != jobs.AllocationReserved {
		t.Fatalf("%d runners hold job 1, which is %s; want exactly one, reserved", holders, j.Allocation)
	}
}

func TestRemoveRunner(t *testing.T) {
	e := newEngine(t)
	queued := pending(t, e, 1, "linux", t0, 10)
	register(t, e, "reserved", "linux", t0) // takes job 1
	commit(t, e, &jobs.Change{
		Jobs:    []*jobs.Job{{ID: 2, Status: jobs.StatusInProgress, Pool: "linux", Allocation: jobs.AllocationAssigned, RunnerName: "busy"}},
		Runners: []*jobs.Runner{{Name: "busy", Pool: "linux", State: jobs.RunnerBusy, JobID: 2}},
	})

	// The reserved job goes back to the queue, in its old place, with a demand.
	r, plan, err := e.RemoveRunner(t.Context(), "reserved", t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "reserved" || r.JobID != 1 {
		t.Errorf("removed runner %+v, want the runner as it was", r)
	}
	if j := job(t, e, 1); j.Allocation != jobs.AllocationPending || j.ReservedRunner != "" || j.QueueKey != queued.QueueKey {
		t.Errorf("job 1 after its runner left: %+v, want pending at %s", j, queued.QueueKey)
	}
	if len(plan.Demands) != 1 || plan.Demands[0].JobID != 1 || plan.Demands[0].Pool != "linux" {
		t.Errorf("demands %+v, want one for job 1 in linux", plan.Demands)
	}
	if _, err := e.Store.Runner(t.Context(), "reserved"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("removed runner still stored: %v", err)
	}

	// A job running on a removed runner keeps its assignment: GitHub reports its end.
	if _, _, err := e.RemoveRunner(t.Context(), "busy", t0); err != nil {
		t.Fatal(err)
	}
	if j := job(t, e, 2); j.Allocation != jobs.AllocationAssigned || j.RunnerName != "busy" {
		t.Errorf("job 2 after its runner left: %+v", j)
	}

	for _, name := range []string{"busy", "never"} {
		if _, _, err := e.RemoveRunner(t.Context(), name, t0); !errors.Is(err, jobs.ErrNotFound) {
			t.Errorf("RemoveRunner %s: err = %v, want ErrNotFound", name, err)
		}
	}
	if _, _, err := e.RemoveRunner(t.Context(), "bad name", t0); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("RemoveRunner of a malformed name: err = %v, want ErrInvalid", err)
	}
}

func TestHeartbeat(t *testing.T) {
	e := newEngine(t)
	register(t, e, "idle", "linux", t0)
	at := t0.Add(3 * time.Minute)
	r, _, err := e.Heartbeat(t.Context(), "idle", at)
	if err != nil {
		t.Fatal(err)
	}
	if stored := runner(t, e, "idle"); !stored.LastSeen.Equal(at) || !r.LastSeen.Equal(at) || stored.State != jobs.RunnerIdle {
		t.Fatalf("after a heartbeat: %+v, want idle, seen at %v", stored, at)
	}
	// A job that went pending while the runner was idle (say its runner was removed)
	// is picked up by the next heartbeat.
	pending(t, e, 7, "linux", at, 0)
	if r, _, err = e.Heartbeat(t.Context(), "idle", at.Add(time.Second)); err != nil || r.JobID != 7 || r.State != jobs.RunnerReserved {
		t.Fatalf("heartbeat with a pending job: %+v, %v; want reserved for job 7", r, err)
	}
	if j := job(t, e, 7); j.ReservedRunner != "idle" {
		t.Fatalf("job 7: %+v", j)
	}
	if _, _, err := e.Heartbeat(t.Context(), "never", at); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("Heartbeat of an unknown runner: err = %v, want ErrNotFound", err)
	}
}

func TestRunnerOffline(t *testing.T) {
	const after = 5 * time.Minute
	cases := []struct {
		state    jobs.RunnerState
		lastSeen time.Time
		offline  bool
	}{
		{jobs.RunnerIdle, t0.Add(-after), false},
		{jobs.RunnerBusy, t0.Add(-after - time.Second), true},
		{jobs.RunnerIdle, time.Time{}, true},
	}
	for _, c := range cases {
		r := &jobs.Runner{State: c.state, LastSeen: c.lastSeen}
		if got := r.Offline(t0, after); got != c.offline {
			t.Errorf("runner %s last seen %v: Offline = %v, want %v", c.state, c.lastSeen, got, c.offline)
		}
	}
}

func TestPoolStatus(t *testing.T) {
	e := newEngine(t)
	now := t0.Add(time.Hour)
	if err := e.Store.PutPool(t.Context(), jobs.Pool{Name: "arm", Labels: []string{"arm64"}, MinIdle: 2, MaxRunners: 3}); err != nil {
		t.Fatal(err)
	}
	pending(t, e, 1, "linux", t0, 0)
	pending(t, e, 2, "linux", t0.Add(20*time.Minute), 100)
	pending(t, e, 3, "linux", t0.Add(50*time.Minute), 0)
	commit(t, e, jobstest.CountNew(t, &jobs.Change{Runners: []*jobs.Runner{
		{Name: "l-idle", Pool: "linux", State: jobs.RunnerIdle, LastSeen: now},
		{Name: "l-busy", Pool: "linux", State: jobs.RunnerBusy, JobID: 10, LastSeen: now.Add(-time.Minute)},
		{Name: "l-reserved", Pool: "linux", State: jobs.RunnerReserved, JobID: 11, LastSeen: now},
		{Name: "l-gone", Pool: "linux", State: jobs.RunnerIdle, LastSeen: now.Add(-time.Hour)},
		{Name: "g-idle", Pool: "gpu", State: jobs.RunnerIdle, LastSeen: now},
	}}))
	got, err := e.PoolStatus(t.Context(), now, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	want := []jobs.PoolStatus{
		// MinIdle 2, nothing else: two runners wanted.
		{Pool: jobs.Pool{Name: "arm", Labels: []string{"arm64"}, MinIdle: 2, MaxRunners: 3}, Demand: 2},
		// One idle runner covers MinIdle 0: no demand.
		{Pool: gpu, Idle: 1},
		// 3 pending + MinIdle 1 − 1 idle = 3 wanted, but only 4 − 3 online may be added. The
		// oldest wait is the head of the queue's: job 2, queued 40 minutes ago with
		// priority 100, ranks before job 1, queued an hour ago.
		{Pool: linux, Idle: 1, Reserved: 1, Busy: 1, Offline: 1, PendingJobs: 3, OldestWait: 40 * time.Minute, Demand: 1},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("PoolStatus\n %+v\nwant\n %+v", got, want)
	}
}

// Pending jobs of every pool, configured or stored, in one queue order.
func TestEngineListsPendingOfAllPools(t *testing.T) {
	e := newEngine(t)
	if err := e.Store.PutPool(t.Context(), jobs.Pool{Name: "arm", Labels: []string{"arm64"}, MaxRunners: 1}); err != nil {
		t.Fatal(err)
	}
	pending(t, e, 1, "linux", t0.Add(2*time.Minute), 0)
	pending(t, e, 2, "arm", t0.Add(time.Minute), 0)
	pending(t, e, 3, "gpu", t0.Add(10*time.Minute), 10)
	var ids []int64
	for cursor := ""; ; {
		page, next, err := e.ListJobs(t.Context(), jobs.JobFilter{Status: jobs.StatusPending, Cursor: cursor, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range page {
			ids = append(ids, j.ID)
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	if want := []int64{3, 2, 1}; !slices.Equal(ids, want) {
		t.Fatalf("pending of all pools: %v, want %v", ids, want)
	}
}

func TestStatusSince(t *testing.T) {
	created, queued, started, completed := t0, t0.Add(time.Minute), t0.Add(2*time.Minute), t0.Add(3*time.Minute)
	cases := []struct {
		job  jobs.Job
		want time.Time
	}{
		{jobs.Job{Status: jobs.StatusWaiting, CreatedAt: created}, created},
		{jobs.Job{Status: jobs.StatusQueued, CreatedAt: created, QueuedAt: queued}, queued},
		{jobs.Job{Status: jobs.StatusInProgress, CreatedAt: created, QueuedAt: queued, StartedAt: started}, started},
		{jobs.Job{Status: jobs.StatusCompleted, CreatedAt: created, StartedAt: started, CompletedAt: completed}, completed},
		// Cancelled while queued: no start; completed without a completion time: the start.
		{jobs.Job{Status: jobs.StatusCompleted, CreatedAt: created, QueuedAt: queued}, queued},
		{jobs.Job{Status: jobs.StatusCompleted, CreatedAt: created, StartedAt: started}, started},
		{jobs.Job{}, time.Time{}},
	}
	for _, c := range cases {
		if got := c.job.StatusSince(); !got.Equal(c.want) {
			t.Errorf("StatusSince of %+v = %v, want %v", c.job, got, c.want)
		}
	}
}

// A runner not seen for longer than OfflineAfter gets no reservation: the job waits with
// a scale-up demand instead of being held for a runner that has probably gone. A
// heartbeat, or GitHub reporting the runner at work, brings it back.
func TestSilentRunnersGetNoReservations(t *testing.T) {
	e := newEngine(t)
	e.OfflineAfter = 5 * time.Minute
	register(t, e, "quiet", "linux", t0)

	plan := queue(t, e, 1, []string{"linux", "x64"}, t0.Add(10*time.Minute))
	if j := job(t, e, 1); j.Allocation != jobs.AllocationPending || len(plan.Demands) != 1 {
		t.Fatalf("job queued 10 min after the runner was last seen: %s, demands %+v; want pending with a demand", j.Allocation, plan.Demands)
	}
	if _, _, err := e.Heartbeat(t.Context(), "quiet", t0.Add(11*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if j := job(t, e, 1); j.Allocation != jobs.AllocationReserved || j.ReservedRunner != "quiet" {
		t.Fatalf("after a heartbeat: %s %q, want reserved for quiet", j.Allocation, j.ReservedRunner)
	}
}

// A runner back from silence looks beyond its own pool: a job that fits it may have been
// queued in another pool it fits while allocation passed the runner over.
func TestReturningRunnerTakesAJobWaitingInAnotherPool(t *testing.T) {
	e := newEngine(t)
	e.OfflineAfter = 5 * time.Minute
	register(t, e, "quiet", "linux", t0)
	queue(t, e, 2, []string{"linux"}, t0.Add(10*time.Minute)) // fits gpu and linux
	if j := job(t, e, 2); j.Allocation != jobs.AllocationPending || j.Pool != "gpu" {
		t.Fatalf("job 2: %+v, want pending in gpu, the first pool it fits", j)
	}
	if _, _, err := e.Heartbeat(t.Context(), "quiet", t0.Add(11*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if j := job(t, e, 2); j.Allocation != jobs.AllocationReserved || j.ReservedRunner != "quiet" || j.Pool != "linux" {
		t.Fatalf("after quiet's heartbeat: %+v, want reserved for quiet in pool linux", j)
	}
}

// queue plans and commits a workflow_job "queued" delivery for job id.
func queue(t *testing.T, e *jobs.Engine, id int64, labels []string, at time.Time) *jobs.Plan {
	t.Helper()
	return deliver(t, e, fmt.Sprint("q-", id), testenv.Job{ID: id, Labels: labels, Status: "queued", Created: at}, at)
}

// When GitHub runs a job on another job's reserved runner, the displaced job is placed
// again — and a runner freed by the same event (the first job's own reservation) is a
// candidate, though the store's idle index does not list it yet.
func TestDisplacedJobTakesRunnerFreedInTheSameEvent(t *testing.T) {
	e := newEngine(t)
	commit(t, e, &jobs.Change{
		Jobs: []*jobs.Job{
			{ID: 1, Repository: "octo/repo", Labels: []string{"linux"}, Status: jobs.StatusQueued, QueuedAt: t0,
				Pool: "gpu", Allocation: jobs.AllocationReserved, ReservedRunner: "gpu-1"},
			{ID: 2, Repository: "octo/repo", Labels: []string{"linux"}, Status: jobs.StatusQueued, QueuedAt: t0,
				Pool: "linux", Allocation: jobs.AllocationReserved, ReservedRunner: "linux-1"},
		},
		Runners: []*jobs.Runner{
			{Name: "gpu-1", Pool: "gpu", State: jobs.RunnerReserved, JobID: 1, LastSeen: t0},
			{Name: "linux-1", Pool: "linux", State: jobs.RunnerReserved, JobID: 2, LastSeen: t0},
		},
	})
	at := t0.Add(time.Minute)
	rec := &delivery.Record{
		Key: delivery.Key{HookID: "1", DeliveryID: "swap"}, Event: "workflow_job", Action: "in_progress",
		ReceivedAt: at, State: delivery.Received,
		Payload: testenv.JobPayload(t, testenv.Job{ID: 1, Labels: []string{"linux"}, Status: "in_progress", Runner: "linux-1", Created: t0, At: at}),
	}
	plan, err := e.Plan(t.Context(), rec)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, e, &plan.Change)
	if j := job(t, e, 2); j.Allocation != jobs.AllocationReserved || j.ReservedRunner != "gpu-1" || len(plan.Demands) != 0 {
		t.Fatalf("displaced job 2: %s on %q, demands %+v; want reserved for gpu-1, no demand", j.Allocation, j.ReservedRunner, plan.Demands)
	}
	if r := runner(t, e, "linux-1"); r.State != jobs.RunnerBusy || r.JobID != 1 {
		t.Fatalf("linux-1: %+v, want busy with job 1", r)
	}
}

// A job that fits every pool of a large fleet, and a runner freed with nothing in its own
// queue, each read a bounded number of pools: every pool read is a gate action in the
// plan's transaction, which DynamoDB caps at 100 actions.
func TestPlansReadABoundedNumberOfPools(t *testing.T) {
	e := newEngine(t)
	e.Pools = nil
	for i := range 100 {
		e.Pools = append(e.Pools, jobs.Pool{Name: fmt.Sprintf("pool-%03d", i), Labels: []string{"linux"}, MaxRunners: 1})
	}
	plan := queue(t, e, 1, []string{"self-hosted"}, t0) // fits all 100
	if n := gateActions(&plan.Change); n == 0 || n > 64 {
		t.Fatalf("queueing took %d gate actions, want 1 to 64 (a check and a bump for each of at most 32 pools)", n)
	}
	if j := job(t, e, 1); j.Allocation != jobs.AllocationPending || j.Pool != "pool-000" || len(plan.Demands) != 1 {
		t.Fatalf("job 1 %+v, demands %+v: want pending in pool-000 with a demand", j, plan.Demands)
	}
	_, plan, err := e.RegisterRunner(t.Context(), jobs.RunnerSpec{Name: "late", Pool: "pool-099"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if n := gateActions(&plan.Change); n == 0 || n > 64 {
		t.Fatalf("registering took %d gate actions, want 1 to 64", n)
	}
}

// gateActions counts the gate writes and checks of a Change: each is an action of its
// DynamoDB transaction.
func gateActions(c *jobs.Change) int { return len(c.Gates) + len(c.GateChecks) + len(c.GateBumps) }

// Issue 9, item 7: silent runners stay in the idle index (offline is decided on read), so
// a search for an idle runner reads past however many of them come first, and says so when
// they are all it found.
func TestSilentIdleRunnersDoNotHideALiveOne(t *testing.T) {
	tests := []struct {
		name        string
		silent      int
		live        bool
		wantOutcome string
	}{
		{"eight silent, one live", 8, true, "reserved runner z-live"},
		{"more silent than a page of the largest size", 130, true, "reserved runner z-live"},
		{"only silent", 3, false, "3 fitting idle runner(s) offline, demand sent"},
		{"none", 0, false, "no idle runner, demand sent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t)
			e.OfflineAfter = 5 * time.Minute
			var fleet []*jobs.Runner
			for i := range tc.silent {
				fleet = append(fleet, &jobs.Runner{Name: fmt.Sprintf("a-%03d", i), Pool: "linux", State: jobs.RunnerIdle, LastSeen: t0.Add(-time.Hour)})
			}
			if tc.live {
				fleet = append(fleet, &jobs.Runner{Name: "z-live", Pool: "linux", State: jobs.RunnerIdle, LastSeen: t0})
			}
			if len(fleet) > 0 {
				commit(t, e, &jobs.Change{Runners: fleet})
			}
			plan := queue(t, e, 1, []string{"self-hosted", "linux", "x64"}, t0.Add(time.Minute))
			if !strings.Contains(plan.Outcome.Text(), tc.wantOutcome) {
				t.Errorf("outcome %q, want it to say %q", plan.Outcome.Text(), tc.wantOutcome)
			}
			j := job(t, e, 1)
			if tc.live && (j.Allocation != jobs.AllocationReserved || j.ReservedRunner != "z-live" || len(plan.Demands) != 0) {
				t.Errorf("job %+v, demands %+v: want reserved for z-live, no demand", j, plan.Demands)
			}
			if !tc.live && (j.Allocation != jobs.AllocationPending || len(plan.Demands) != 1) {
				t.Errorf("job %+v, demands %+v: want pending with a demand", j, plan.Demands)
			}
		})
	}
}

// Issue 9, item 7: a runner looking for a job in another pool's queue reads past the jobs
// it cannot run, however many rank ahead.
func TestRunnerFindsAFittingJobDeepInAnotherQueue(t *testing.T) {
	for _, ahead := range []int{0, 16, 120} {
		t.Run(fmt.Sprint(ahead, " ahead"), func(t *testing.T) {
			e := newEngine(t)
			for i := range ahead { // gpu only, and ranked first
				pending(t, e, int64(100+i), "gpu", t0, 100, "linux", "gpu")
			}
			pending(t, e, 1, "gpu", t0, 0, "linux") // fits gpu and linux
			_, plan, err := e.RegisterRunner(t.Context(), jobs.RunnerSpec{Name: "linux-1", Pool: "linux"}, t0)
			if err != nil {
				t.Fatal(err)
			}
			if j := job(t, e, 1); j.Allocation != jobs.AllocationReserved || j.ReservedRunner != "linux-1" {
				t.Fatalf("job 1 %+v (outcome %q): want reserved for linux-1", j, plan.Outcome.Text())
			}
		})
	}
}
