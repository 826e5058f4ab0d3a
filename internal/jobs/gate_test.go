package jobs_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/testenv"
)

// busyRunner stores runner name in pool, busy with a job in progress, so that the job's
// completed delivery frees it.
func busyRunner(t *testing.T, e *jobs.Engine, name, pool string, jobID int64) {
	t.Helper()
	commit(t, e, &jobs.Change{
		Jobs: []*jobs.Job{{ID: jobID, Repository: "octo/repo", Labels: []string{"linux"}, Status: jobs.StatusInProgress,
			QueuedAt: t0, StartedAt: t0, RunnerName: name, Pool: pool, Allocation: jobs.AllocationAssigned}},
		Runners: []*jobs.Runner{{Name: name, Pool: pool, State: jobs.RunnerBusy, JobID: jobID, UpdatedAt: t0, LastSeen: t0}},
	})
}

func jobRecord(t *testing.T, deliveryID string, j testenv.Job, at time.Time) *delivery.Record {
	t.Helper()
	j.At = at
	return &delivery.Record{Key: delivery.Key{HookID: "1", DeliveryID: deliveryID}, Event: "workflow_job", Action: j.Status,
		ReceivedAt: at, State: delivery.Received, Payload: testenv.JobPayload(t, j)}
}

// planAll plans every record against the same state, before any of them commits: the
// most concurrent the plans of a burst can be.
func planAll(t *testing.T, e *jobs.Engine, recs []*delivery.Record) []*jobs.Plan {
	t.Helper()
	plans := make([]*jobs.Plan, len(recs))
	for i, rec := range recs {
		plan, err := e.Plan(t.Context(), rec)
		if err != nil {
			t.Fatal(err)
		}
		plans[i] = plan
	}
	return plans
}

// commitOrReplan commits plan, or, when it conflicts, plans rec (made of j) again and
// commits that; it reports whether the first commit conflicted.
func commitOrReplan(t *testing.T, e *jobs.Engine, rec *delivery.Record, j testenv.Job, plan *jobs.Plan) bool {
	t.Helper()
	err := e.Store.Commit(t.Context(), &plan.Change)
	if err == nil {
		return false
	}
	if !errors.Is(err, jobs.ErrConflict) {
		t.Fatal(err)
	}
	deliver(t, e, rec.Key.DeliveryID, j, rec.ReceivedAt)
	return true
}

// The two-sided pool gate (jobs.Gate). Plans of queued jobs that all read a dry pool
// before any of them commits commute: each leaves its job pending, and none conflicts.
// A runner freed by a plan made at the same moment must not stay idle beside them:
// whichever of the two kinds commits second conflicts, and planned again takes (or
// gives) the runner. Before, every queued plan but the first conflicted on the pool's
// single gate. The cross-pool case: a job that fits two pools waits in the first by
// name, and the runner freed in the second, which searches the first's queue but takes
// only its own pool's gate, still conflicts with it; the single gate let both commit.
func TestGateSidesOrderOnlyJobsAgainstRunners(t *testing.T) {
	wide := jobs.Pool{Name: "wide", Labels: []string{"linux"}, MaxRunners: 4}
	tests := []struct {
		name         string
		runnerPool   string
		runnerFirst  bool
		wantJobClash int // job plans that conflict
	}{
		{"jobs commit first, the runner plan conflicts", "linux", false, 0},
		{"the runner commits first, every job plan conflicts", "linux", true, 8},
		{"a runner of another pool the jobs fit, jobs first", "wide", false, 0},
		{"a runner of another pool the jobs fit, runner first", "wide", true, 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t)
			// "linux" sorts before "wide": jobs fitting both wait in linux.
			e.Pools = []jobs.Pool{linux, wide}
			busyRunner(t, e, "freed", tc.runnerPool, 900)
			var recs []*delivery.Record
			queued := func(i int) testenv.Job {
				return testenv.Job{ID: int64(100 + i), Labels: []string{"self-hosted", "linux"}, Status: "queued", Created: t0}
			}
			for i := range 8 {
				recs = append(recs, jobRecord(t, fmt.Sprint("q-", i), queued(i), t0.Add(time.Duration(i)*time.Second)))
			}
			done := testenv.Job{ID: 900, Labels: []string{"linux"}, Status: "completed", Runner: "freed", Conclusion: "success", Created: t0}
			doneRec := jobRecord(t, "completed", done, t0.Add(time.Minute))

			plans := planAll(t, e, append(recs, doneRec))
			for _, p := range plans[:len(recs)] {
				if j := p.Job; j.Allocation != jobs.AllocationPending || j.Pool != "linux" {
					t.Fatalf("job %d planned %s in %q, want pending in linux", j.ID, j.Allocation, j.Pool)
				}
			}
			if r := plans[len(recs)].Change.Runners; len(r) != 1 || r[0].State != jobs.RunnerIdle {
				t.Fatalf("the completed plan's runners %+v, want freed idle (it read an empty queue)", r)
			}
			runnerClash, jobClash := false, 0
			if tc.runnerFirst {
				runnerClash = commitOrReplan(t, e, doneRec, done, plans[len(recs)])
			}
			for i, rec := range recs {
				if commitOrReplan(t, e, rec, queued(i), plans[i]) {
					jobClash++
				}
			}
			if !tc.runnerFirst {
				runnerClash = commitOrReplan(t, e, doneRec, done, plans[len(recs)])
			}
			if jobClash != tc.wantJobClash || runnerClash != !tc.runnerFirst {
				t.Errorf("%d job plans and runner plan %v conflicted, want %d and %v", jobClash, runnerClash, tc.wantJobClash, !tc.runnerFirst)
			}
			r := runner(t, e, "freed")
			if r.State != jobs.RunnerReserved {
				t.Fatalf("freed runner %s beside 8 waiting jobs, want reserved", r.State)
			}
			if j := job(t, e, r.JobID); j.Allocation != jobs.AllocationReserved || j.ReservedRunner != "freed" {
				t.Fatalf("job %d of the freed runner: %s on %q", j.ID, j.Allocation, j.ReservedRunner)
			}
		})
	}
}

// Concurrent processors queue a burst into one dry pool through the commit pipeline,
// while a runner of the pool is freed in the middle of it. The queued plans conflict
// only with the runner's (at most once for each processor planning when it commits),
// never with each other, and the freed runner ends with a job.
func TestBurstIntoADryPoolCommitsWithoutGateConflicts(t *testing.T) {
	const jobsQueued, processors = 120, 8
	db := testenv.Embedded(t)
	s := db.Store()
	e := &jobs.Engine{Store: s, Deliveries: s, Pools: []jobs.Pool{linux}, Step: time.Minute}
	busyRunner(t, e, "freed", "linux", 900)
	var recs []*delivery.Record
	for i := range jobsQueued {
		id := int64(100 + i)
		recs = append(recs, jobRecord(t, fmt.Sprint("q-", id), testenv.Job{ID: id, Labels: []string{"linux"}, Status: "queued", Created: t0},
			t0.Add(time.Duration(i)*time.Millisecond)))
	}
	done := jobRecord(t, "completed", testenv.Job{ID: 900, Labels: []string{"linux"}, Status: "completed", Runner: "freed", Conclusion: "success", Created: t0}, t0.Add(time.Minute))
	// The runner is freed halfway through the burst.
	work := make(chan *delivery.Record, len(recs)+1)
	for i, rec := range recs {
		if i == jobsQueued/2 {
			work <- done
		}
		work <- rec
	}
	close(work)
	for _, rec := range append(recs, done) {
		if _, err := s.Create(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	jobConflicts := 0
	var wg sync.WaitGroup
	for range processors {
		wg.Go(func() {
			for rec := range work {
				c, err := e.Apply(t.Context(), rec)
				if err != nil {
					t.Error(err)
					return
				}
				if rec != done {
					mu.Lock()
					jobConflicts += c.Conflicts
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if jobConflicts > processors {
		t.Errorf("the queued jobs conflicted %d times, want at most %d (those planning when the runner's commit landed)", jobConflicts, processors)
	}
	r := runner(t, e, "freed")
	if r.State != jobs.RunnerReserved {
		t.Fatalf("freed runner %s beside waiting jobs, want reserved", r.State)
	}
	pending := 0
	for i := range jobsQueued {
		if j := job(t, e, int64(100+i)); j.Allocation == jobs.AllocationPending {
			pending++
		}
	}
	if pending != jobsQueued-1 {
		t.Errorf("%d jobs pending, want %d (one took the freed runner)", pending, jobsQueued-1)
	}
	t.Logf("%d queued jobs, %d processors: %d conflicts of queued plans", jobsQueued, processors, jobConflicts)
}
