package jobs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/jobs/jobstest"
	"github.com/runnerhub/webhooks/internal/provider"
	"github.com/runnerhub/webhooks/internal/testenv"
)

// provisioned is a pool whose runners a provider starts.
var provisioned = jobs.Pool{Name: "auto", Labels: []string{"linux", "auto"}, MaxRunners: 3, Ephemeral: true,
	Provider: &provider.Config{Type: "exec", Exec: &provider.ExecConfig{Command: []string{"/bin/true"}, Timeout: time.Second}}}

func newProvisionedEngine(t *testing.T) *jobs.Engine {
	t.Helper()
	db := testenv.Embedded(t)
	return &jobs.Engine{Store: db.Store(), Pools: []jobs.Pool{provisioned, linux}, Step: time.Minute}
}

func start(t *testing.T, e *jobs.Engine, name string, jobID int64, at time.Time) *jobs.Runner {
	t.Helper()
	r, err := jobstest.StartOne(t.Context(), e, jobs.StartSpec{RunnerSpec: jobs.RunnerSpec{Name: name, Pool: provisioned.Name,
		Labels: provisioned.Labels, Ephemeral: true}, JobID: jobID, GitHubID: 100 + jobID}, at)
	if err != nil {
		t.Fatalf("starting %s for job %d: %v", name, jobID, err)
	}
	return r
}

// startSpec starts the runner name in pool for the job jobID (0 for a warm runner).
func startSpec(name, pool string, jobID int64) jobs.StartSpec {
	return jobs.StartSpec{RunnerSpec: jobs.RunnerSpec{Name: name, Pool: pool}, JobID: jobID}
}

func TestStartRefuses(t *testing.T) {
	e := newProvisionedEngine(t)
	pending(t, e, 1, "auto", t0, 0)
	pending(t, e, 2, "linux", t0, 0)
	start(t, e, "rh-auto-1", 1, t0)
	for _, c := range []struct {
		name string
		pool string
		job  int64
		want error
	}{
		{"a repeated demand for the same job", "auto", 1, jobs.ErrAlreadyStarting},
		{"a job that is not in the pool", "auto", 2, jobs.ErrNotWaiting},
		{"an unknown job", "auto", 99, jobs.ErrNotWaiting},
		{"a pool without a provider", "linux", 2, jobs.ErrNoProvider},
		{"an unknown pool", "nope", 1, jobs.ErrUnknownPool},
		{"an invalid pool name", "-bad", 1, jobs.ErrInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := e.CheckStart(t.Context(), c.pool, c.job, t0); !errors.Is(err, c.want) {
				t.Errorf("CheckStart: %v, want %v", err, c.want)
			}
			_, err := jobstest.StartOne(t.Context(), e, startSpec("rh-other", c.pool, c.job), t0)
			if !errors.Is(err, c.want) {
				t.Errorf("StartRunners: %v, want %v", err, c.want)
			}
		})
	}
	if _, err := e.Store.Runner(t.Context(), "rh-other"); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("a refused start left a runner: %v", err)
	}
}

// Starting runners count against maxRunners from the moment they are recorded, so
// concurrent starts (and registrations) never take more places than the pool has.
func TestConcurrentStartsKeepMaxRunners(t *testing.T) {
	e := newProvisionedEngine(t)
	const jobsWaiting = 8
	for id := range int64(jobsWaiting) {
		pending(t, e, id+1, "auto", t0, 0)
	}
	errs := make([]error, jobsWaiting)
	var wg sync.WaitGroup
	for i := range jobsWaiting {
		wg.Go(func() {
			_, errs[i] = jobstest.StartOne(t.Context(), e, startSpec(fmt.Sprint("rh-auto-", i), "auto", int64(i+1)), t0)
		})
	}
	wg.Wait()
	started := 0
	for i, err := range errs {
		switch {
		case err == nil:
			started++
		case !errors.Is(err, jobs.ErrPoolFull):
			t.Fatalf("start %d: %v", i, err)
		}
	}
	if started != provisioned.MaxRunners {
		t.Fatalf("%d runners started in a pool of %d", started, provisioned.MaxRunners)
	}
	if _, _, err := e.RegisterRunner(t.Context(), jobs.RunnerSpec{Name: "by-hand", Pool: "auto"}, t0); !errors.Is(err, jobs.ErrPoolFull) {
		t.Fatalf("registering beside %d starting runners: %v, want ErrPoolFull", started, err)
	}
}

// A starting runner is not idle: no job is reserved for it until GitHub lists it online
// (a heartbeat), and then it takes the pool's next job.
func TestStartingRunnerTakesAJobOnceOnline(t *testing.T) {
	e := newProvisionedEngine(t)
	pending(t, e, 1, "auto", t0, 0)
	r := start(t, e, "rh-auto-1", 1, t0)
	if r.State != jobs.RunnerStarting || r.JobID != 1 || r.GitHubID != 101 {
		t.Fatalf("started runner = %+v", r)
	}
	if j := job(t, e, 1); j.Allocation != jobs.AllocationPending || j.StartedRunner != "rh-auto-1" {
		t.Fatalf("job 1 is %s with started runner %q; want pending, rh-auto-1", j.Allocation, j.StartedRunner)
	}
	pending(t, e, 2, "auto", t0.Add(time.Second), 0)
	if j := job(t, e, 2); j.Allocation != jobs.AllocationPending {
		t.Fatalf("job 2 is %s beside a starting runner; want pending", j.Allocation)
	}
	if _, _, err := e.RunnerCreated(t.Context(), "rh-auto-1", "i-1", t0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Heartbeat(t.Context(), "rh-auto-1", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	r = runner(t, e, "rh-auto-1")
	if r.State != jobs.RunnerReserved || r.JobID != 1 || r.ProviderID != "i-1" {
		t.Fatalf("online runner = %+v; want reserved for job 1, provider id i-1", r)
	}
}

// A runner that booted and took another job no longer serves the job it was started
// for, which may then get a runner of its own.
func TestJobWhoseRunnerWentElsewhereMayStartAnother(t *testing.T) {
	e := newProvisionedEngine(t)
	pending(t, e, 1, "auto", t0, 0)
	start(t, e, "rh-auto-1", 1, t0)
	deliver(t, e, "d-2q", testenv.Job{ID: 2, Labels: provisioned.Labels, Status: "queued"}, t0)
	deliver(t, e, "d-2p", testenv.Job{ID: 2, Labels: provisioned.Labels, Status: "in_progress", Runner: "rh-auto-1"}, t0.Add(time.Second))
	if r := runner(t, e, "rh-auto-1"); r.State != jobs.RunnerBusy || r.JobID != 2 {
		t.Fatalf("runner named by job 2's in_progress = %+v; want busy with job 2", r)
	}
	if _, _, err := e.CheckStart(t.Context(), "auto", 1, t0); err != nil {
		t.Fatalf("CheckStart for job 1, whose runner took job 2: %v", err)
	}
}

// Deleting a provisioned runner announces it, so its machine and GitHub registration go
// too: when its ephemeral job completes, and when it is removed.
func TestDeletedProvisionedRunnersAreRetired(t *testing.T) {
	e := newProvisionedEngine(t)
	start(t, e, "rh-auto-1", 0, t0)
	start(t, e, "rh-auto-2", 0, t0)
	if _, _, err := e.RunnerCreated(t.Context(), "rh-auto-1", "i-1", t0); err != nil {
		t.Fatal(err)
	}
	deliver(t, e, "d-1q", testenv.Job{ID: 1, Labels: provisioned.Labels, Status: "queued"}, t0)
	deliver(t, e, "d-1p", testenv.Job{ID: 1, Labels: provisioned.Labels, Status: "in_progress", Runner: "rh-auto-1"}, t0)
	plan := deliver(t, e, "d-1c", testenv.Job{ID: 1, Labels: provisioned.Labels, Status: "completed", Runner: "rh-auto-1", Conclusion: "success"}, t0)
	want := jobs.Retire{Pool: "auto", Runner: "rh-auto-1", ProviderID: "i-1", GitHubID: 100, JobID: 1, Reason: jobs.RetireCompleted, At: t0}
	if len(plan.Retires) != 1 || plan.Retires[0] != want {
		t.Fatalf("completed retires %+v; want %+v", plan.Retires, want)
	}
	// After the commit, the signal sender sends them.
	sent := &jobstest.Signals{}
	e.Subscribe(&jobs.SignalSender{Signals: sent, Log: slog.New(slog.DiscardHandler)})
	if _, _, err := e.RemoveRunner(t.Context(), "rh-auto-2", t0); err != nil {
		t.Fatal(err)
	}
	if retires := sent.TakeRetires(); len(retires) != 1 || retires[0].Runner != "rh-auto-2" || retires[0].Reason != jobs.RetireRemoved {
		t.Fatalf("remove sent retires %+v; want rh-auto-2, removed", retires)
	}
	// A runner registered through the API has nothing behind it to delete.
	register(t, e, "by-hand", "linux", t0)
	if _, _, err := e.RemoveRunner(t.Context(), "by-hand", t0); err != nil {
		t.Fatal(err)
	}
	if retires := sent.TakeRetires(); len(retires) != 0 {
		t.Fatalf("removing a registered runner sent retires %+v; want none", retires)
	}
}

// A burst of starts is one commit: each spec is started or refused on its own, in
// order, with the runners the commit starts counted against maxRunners.
func TestStartRunnersInOneCommit(t *testing.T) {
	e := newProvisionedEngine(t)
	for id := range int64(4) {
		pending(t, e, id+1, "auto", t0, 0)
	}
	start(t, e, "rh-auto-0", 4, t0)
	specs := []jobs.StartSpec{
		startSpec("rh-auto-1", "auto", 1),
		startSpec("rh-auto-1b", "auto", 1), // the same job again
		startSpec("rh-auto-0", "auto", 2),  // a name in use
		startSpec("rh-auto-2", "auto", 2),
		startSpec("rh-auto-3", "auto", 3), // past the pool's 3
		startSpec("-bad", "auto", 0),
	}
	commits := 0
	var logged bytes.Buffer
	e.Subscribe(jobs.SubscriberFunc(func(context.Context, *jobs.Commit) { commits++ }), jobs.Log{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	started, plan, err := e.StartRunners(t.Context(), specs, t0)
	if err != nil {
		t.Fatal(err)
	}
	want := []error{nil, jobs.ErrAlreadyStarting, jobs.ErrExists, nil, jobs.ErrPoolFull, jobs.ErrInvalid}
	for i, s := range started {
		if !errors.Is(s.Err, want[i]) || (s.Err == nil) != (s.Runner != nil) {
			t.Errorf("spec %s: %+v, want %v", specs[i].Name, s, want[i])
		}
	}
	if commits != 1 || len(plan.Change.Runners) != 2 || plan.Outcome.Text() != "2 runners starting in pool auto" {
		t.Fatalf("%d commits of runners %v, outcome %q; want one of two", commits, plan.Change.Runners, plan.Outcome.Text())
	}
	for _, c := range []struct {
		job    int64
		runner string
	}{{1, "rh-auto-1"}, {2, "rh-auto-2"}, {3, ""}} {
		if j := job(t, e, c.job); j.StartedRunner != c.runner {
			t.Errorf("job %d started runner %q, want %q", c.job, j.StartedRunner, c.runner)
		}
	}
	// The log names each job's own runner, though the commit is about several.
	for _, want := range []string{"runner=rh-auto-1 job_id=1", "runner=rh-auto-2 job_id=2"} {
		if !strings.Contains(logged.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logged.String())
		}
	}
	if _, _, err := e.StartRunners(t.Context(), []jobs.StartSpec{startSpec("rh-a", "auto", 0), startSpec("rh-b", "linux", 0)}, t0); !errors.Is(err, jobs.ErrInvalid) {
		t.Fatalf("starting in two pools at once: %v, want ErrInvalid", err)
	}
}
