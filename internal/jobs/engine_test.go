package jobs_test

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/testenv"
)

// deliver plans and commits one workflow_job delivery of job id.
func deliver(t *testing.T, e *jobs.Engine, deliveryID string, j testenv.Job, at time.Time) *jobs.Plan {
	t.Helper()
	j.At = at
	rec := &delivery.Record{
		Key: delivery.Key{HookID: "1", DeliveryID: deliveryID}, Event: "workflow_job", Action: j.Status,
		ReceivedAt: at, State: delivery.Received, Payload: testenv.JobPayload(t, j),
	}
	plan, err := e.Plan(t.Context(), rec)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, e, &plan.Change)
	return plan
}

// Issue 15: a job's pool, allocation and profile count end the same whatever order its
// deliveries arrive in, repeats included. Before, a completed arriving before its queued
// left the pool empty and the repository's profile without the job.
func TestJobFactsDoNotDependOnDeliveryOrder(t *testing.T) {
	small := jobs.Pool{Name: "linux-small", Labels: []string{"linux", "small"}, MaxRunners: 2}
	labels := []string{"self-hosted", "linux", "small"}
	orders := [][]string{
		{"queued", "in_progress", "completed"},
		{"completed", "queued", "in_progress"},
		{"in_progress", "completed", "queued"},
		{"completed", "in_progress", "queued", "completed"},
		{"queued", "completed", "queued", "in_progress"},
	}
	for _, ranOn := range []string{"small-1", "GitHub Actions 2"} {
		for _, order := range orders {
			t.Run(fmt.Sprint(ranOn, order), func(t *testing.T) {
				e := newEngine(t)
				e.Pools = []jobs.Pool{small}
				commit(t, e, &jobs.Change{Runners: []*jobs.Runner{{Name: "small-1", Pool: "linux-small", State: jobs.RunnerIdle, LastSeen: t0}}})
				for i, status := range order {
					j := testenv.Job{ID: 1, Labels: labels, Status: status, Repository: "octo/repo", Created: t0, Started: t0.Add(time.Minute)}
					if status != "queued" {
						j.Runner = ranOn
					}
					if status == "completed" {
						j.Conclusion = "success"
					}
					deliver(t, e, status, j, t0.Add(time.Duration(i+1)*time.Minute))
				}
				got := job(t, e, 1)
				if got.Pool != "linux-small" || got.Allocation != jobs.AllocationAssigned || got.Status != jobs.StatusCompleted {
					t.Errorf("job: pool %q allocation %s status %s, want linux-small, assigned, completed", got.Pool, got.Allocation, got.Status)
				}
				prof, err := e.Store.Profile(t.Context(), "octo/repo")
				if err != nil || !maps.Equal(prof.PoolUses, map[string]int{"linux-small": jobs.ProfileDay(t0)}) || prof.Version != 1 {
					t.Errorf("profile %+v (%v), want linux-small used on t0's day, written once", prof, err)
				}
				if r := runner(t, e, "small-1"); r.State != jobs.RunnerIdle || r.JobID != 0 {
					t.Errorf("runner small-1 %+v, want idle", r)
				}
			})
		}
	}
}

// Issue 9: the repository profile, which every job of a repository touches, is written
// only when it changes: when a pool joins it or a later day begins, not once per job.
func TestProfileIsWrittenOnlyWhenItChanges(t *testing.T) {
	e := newEngine(t)
	x64 := []string{"self-hosted", "linux", "x64"} // linux only
	start := func(id int64, created time.Time, labels []string) *jobs.Plan {
		j := testenv.Job{ID: id, Labels: labels, Status: "in_progress", Runner: "GitHub Actions 2", Repository: "octo/repo", Created: created}
		return deliver(t, e, fmt.Sprint("start-", id), j, created.Add(time.Minute))
	}
	day := 24 * time.Hour
	tests := []struct {
		id      int64
		created time.Time
		labels  []string
		writes  bool
		want    map[string]int
	}{
		{1, t0, x64, true, map[string]int{"linux": jobs.ProfileDay(t0)}},
		{2, t0.Add(time.Hour), x64, false, map[string]int{"linux": jobs.ProfileDay(t0)}},
		{3, t0.Add(-day), x64, false, map[string]int{"linux": jobs.ProfileDay(t0)}}, // an older job: nothing new
		{4, t0, []string{"gpu"}, true, map[string]int{"linux": jobs.ProfileDay(t0), "gpu": jobs.ProfileDay(t0)}},
		{5, t0.Add(day), x64, true, map[string]int{"linux": jobs.ProfileDay(t0.Add(day)), "gpu": jobs.ProfileDay(t0)}},
	}
	for _, tc := range tests {
		plan := start(tc.id, tc.created, tc.labels)
		if wrote := len(plan.Change.Profiles) > 0; wrote != tc.writes {
			t.Errorf("job %d: profile written %v, want %v", tc.id, wrote, tc.writes)
		}
		if prof, err := e.Store.Profile(t.Context(), "octo/repo"); err != nil || !maps.Equal(prof.PoolUses, tc.want) {
			t.Errorf("after job %d: profile %+v (%v), want %v", tc.id, prof, err, tc.want)
		}
	}
}

// Issue 9, item 8: a job runs where a runner's labels, its pool's and its own, include
// every job label (case-insensitively, self-hosted implied), as GitHub matches. A pool fits
// a job when one of its runners could run it.
func TestRunnerLabelsTakePartInMatching(t *testing.T) {
	x64 := jobs.Pool{Name: "linux-x64", Labels: []string{"linux", "x64"}, MaxRunners: 5}
	tests := []struct {
		name    string
		runners []*jobs.Runner
		labels  []string
		want    jobs.Allocation
		runner  string // the runner reserved, if any
	}{
		{"runner carries the extra label", []*jobs.Runner{
			{Name: "plain-1", Pool: "linux-x64", State: jobs.RunnerIdle, LastSeen: t0},
			{Name: "z-big-1", Pool: "linux-x64", Labels: []string{"big"}, State: jobs.RunnerIdle, LastSeen: t0},
		}, []string{"self-hosted", "linux", "x64", "big"}, jobs.AllocationReserved, "z-big-1"},
		{"compared case-insensitively", []*jobs.Runner{
			{Name: "z-big-1", Pool: "linux-x64", Labels: []string{"Big"}, State: jobs.RunnerIdle, LastSeen: t0},
		}, []string{"self-hosted", "Linux", "X64", "BIG"}, jobs.AllocationReserved, "z-big-1"},
		{"the runner that carries it is busy: the job waits in its pool", []*jobs.Runner{
			{Name: "plain-1", Pool: "linux-x64", State: jobs.RunnerIdle, LastSeen: t0},
			{Name: "z-big-1", Pool: "linux-x64", Labels: []string{"big"}, State: jobs.RunnerBusy, JobID: 99, LastSeen: t0},
		}, []string{"self-hosted", "linux", "x64", "big"}, jobs.AllocationPending, ""},
		{"no runner carries it", []*jobs.Runner{
			{Name: "plain-1", Pool: "linux-x64", State: jobs.RunnerIdle, LastSeen: t0},
		}, []string{"self-hosted", "linux", "x64", "big"}, jobs.AllocationUnmatched, ""},
		{"a priority label counts only where runners carry it", []*jobs.Runner{
			{Name: "plain-1", Pool: "linux-x64", State: jobs.RunnerIdle, LastSeen: t0},
		}, []string{"self-hosted", "linux", "deploy"}, jobs.AllocationUnmatched, ""},
		{"a runner's labels do not lend themselves to another runner", []*jobs.Runner{
			{Name: "a-big", Pool: "linux-x64", Labels: []string{"big"}, State: jobs.RunnerBusy, JobID: 99, LastSeen: t0},
			{Name: "b-fast", Pool: "linux-x64", Labels: []string{"fast"}, State: jobs.RunnerIdle, LastSeen: t0},
		}, []string{"linux", "big", "fast"}, jobs.AllocationUnmatched, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t)
			e.Pools = []jobs.Pool{x64}
			commit(t, e, &jobs.Change{Runners: tc.runners})
			plan := queue(t, e, 1, tc.labels, t0)
			j := job(t, e, 1)
			if j.Allocation != tc.want || j.ReservedRunner != tc.runner {
				t.Fatalf("job %v: %s on %q (outcome %q), want %s on %q", tc.labels, j.Allocation, j.ReservedRunner, plan.Outcome.Text(), tc.want, tc.runner)
			}
			if tc.want == jobs.AllocationPending && (j.Pool != "linux-x64" || len(plan.Demands) != 1) {
				t.Fatalf("pending job in pool %q with demands %+v, want linux-x64 with one", j.Pool, plan.Demands)
			}
		})
	}
}

// A runner freed or registered takes only the jobs its own labels allow.
func TestFreedRunnerTakesOnlyJobsItsLabelsFit(t *testing.T) {
	e := newEngine(t)
	e.Pools = []jobs.Pool{{Name: "linux-x64", Labels: []string{"linux", "x64"}, MaxRunners: 5}}
	commit(t, e, &jobs.Change{Runners: []*jobs.Runner{
		{Name: "z-big-1", Pool: "linux-x64", Labels: []string{"big"}, State: jobs.RunnerBusy, JobID: 99, LastSeen: t0},
	}})
	queue(t, e, 1, []string{"linux", "x64", "big"}, t0)           // first in the queue, needs big
	queue(t, e, 2, []string{"linux", "x64"}, t0.Add(time.Minute)) // any runner
	if _, _, err := e.RegisterRunner(t.Context(), jobs.RunnerSpec{Name: "plain-1", Pool: "linux-x64"}, t0); err != nil {
		t.Fatal(err)
	}
	if j := job(t, e, 2); j.ReservedRunner != "plain-1" {
		t.Fatalf("job 2 %s on %q, want plain-1, which cannot run job 1", j.Allocation, j.ReservedRunner)
	}
	if j := job(t, e, 1); j.Allocation != jobs.AllocationPending {
		t.Fatalf("job 1 %s on %q, want still pending", j.Allocation, j.ReservedRunner)
	}
}
