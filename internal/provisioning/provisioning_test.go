package provisioning_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/checkpoint"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/jobs/jobstest"
	"github.com/runnerhub/webhooks/internal/provisioning"
	"github.com/runnerhub/webhooks/internal/testenv/fakegithub"
)

func TestDemandStartsOneRunnerPerJob(t *testing.T) {
	for _, tc := range []struct {
		name       string
		concurrent bool
	}{{"one after the other", false}, {"at once", true}} {
		t.Run(tc.name, func(t *testing.T) {
			pool := linuxPool()
			pool.MaxRunners = 5
			f := newFixture(t, pool)
			d := f.pending(t, 1, "linux", t0)
			var wg sync.WaitGroup
			errs := make(chan error, 5)
			for range 5 {
				demand := func() { errs <- f.p.Demand(t.Context(), d) }
				if tc.concurrent {
					wg.Go(demand)
				} else {
					demand()
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("Demand: %v", err)
				}
			}
			rs := f.runners(t, "linux")
			if len(rs) != 1 || f.machines.created() != 1 {
				t.Fatalf("runners %s, %d creates; want one of each", names(rs), f.machines.created())
			}
			r := rs[0]
			if r.State != jobs.RunnerStarting || r.JobID != 1 || r.ProviderID != "m-"+r.Name || r.GitHubID == 0 || !r.Ephemeral {
				t.Fatalf("runner %+v, want starting for job 1 with its provider and GitHub ids", r)
			}
			if !strings.HasPrefix(r.Name, "rh-linux-") || len(r.Name) != len("rh-linux-")+8 {
				t.Fatalf("runner name %q, want rh-linux-<8 hex>", r.Name)
			}
			// Every JIT runner minted for a repeated demand that lost the race was removed.
			if reg := f.registered(); !slices.Equal(reg, []string{r.Name}) {
				t.Fatalf("GitHub has runners %q, want only %s", reg, r.Name)
			}
			req := f.machines.requests[0]
			if req.Name != r.Name || req.JobID != 1 || req.Repository != testRepo || req.JITConfig == "" || !slices.Equal(req.Labels, []string{"linux"}) {
				t.Fatalf("create request %+v", req)
			}
			if got := f.job(t, 1).StartedRunner; got != r.Name {
				t.Fatalf("job's StartedRunner %q, want %s", got, r.Name)
			}
		})
	}
}

func TestMaxRunnersHoldsUnderConcurrentDemands(t *testing.T) {
	f := newFixture(t, linuxPool()) // maxRunners 2
	demands := f.pendingJobs(t, 8, "linux")
	f.demandAtOnce(t, demands)
	if rs := f.runners(t, "linux"); len(rs) != 2 || f.machines.created() != 2 {
		t.Fatalf("runners %s after %d creates; want 2 (maxRunners)", names(rs), f.machines.created())
	}
	if reg := f.registered(); len(reg) != 2 {
		t.Fatalf("GitHub keeps %d runners (%q), want the 2 started", len(reg), reg)
	}
	// A pass finds the pool full too.
	if rep := f.p.Pass(t.Context(), f.clock()); rep.Started != 0 || len(rep.Errors) > 0 {
		t.Fatalf("pass %+v on a full pool", rep)
	}
	if n := len(f.runners(t, "linux")); n != 2 {
		t.Fatalf("%d runners after the pass", n)
	}
}

// Concurrent demands in one pool are recorded a burst at a time, each burst in one
// commit: while the first start commits, the others gather behind it.
func TestABurstOfDemandsIsRecordedInFewCommits(t *testing.T) {
	const burst = 40
	pool := linuxPool()
	pool.MaxRunners = burst
	f := newFixture(t, pool)
	demands := f.pendingJobs(t, burst, "linux")
	var starts atomic.Int32
	f.engine.Subscribe(jobs.SubscriberFunc(func(_ context.Context, c *jobs.Commit) {
		// The first commit waits until every demand has its JIT runner, and so is about
		// to enter the line.
		if c.Operation == jobs.OpStart && starts.Add(1) == 1 {
			deadline := time.Now().Add(10 * time.Second)
			for len(f.registered()) < burst && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
	}))
	f.demandAtOnce(t, demands)
	if rs := f.runners(t, "linux"); len(rs) != burst || f.machines.created() != burst {
		t.Fatalf("%d runners, %d creates; want %d of each", len(rs), f.machines.created(), burst)
	}
	for _, d := range demands {
		if f.job(t, d.JobID).StartedRunner == "" {
			t.Fatalf("job %d has no runner started", d.JobID)
		}
	}
	if n := starts.Load(); n > burst/5 {
		t.Fatalf("%d starts took %d commits, want at most %d", burst, n, burst/5)
	}
}

func TestCreateFailureReleasesThePlaceAndTheRetrySucceeds(t *testing.T) {
	pool := linuxPool()
	pool.MaxRunners = 1
	f := newFixture(t, pool)
	d := f.pending(t, 7, "linux", t0)
	f.machines.failCreate = 1
	err := f.p.Demand(t.Context(), d)
	if !errors.Is(err, provisioning.ErrCreateFailed) {
		t.Fatalf("Demand: %v, want ErrCreateFailed", err)
	}
	if rs := f.runners(t, "linux"); len(rs) != 0 {
		t.Fatalf("runners %s after a failed create, want none", names(rs))
	}
	// The removal's Retire removes the minted GitHub runner.
	if sent := f.retire(t); len(sent) != 1 || sent[0].GitHubID == 0 || sent[0].ProviderID != "" {
		t.Fatalf("retires %+v, want one for the GitHub registration only", sent)
	}
	if reg := f.registered(); len(reg) != 0 {
		t.Fatalf("GitHub keeps %q after the failed create", reg)
	}
	if err := f.p.Demand(t.Context(), d); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if rs := f.runners(t, "linux"); len(rs) != 1 || rs[0].ProviderID == "" {
		t.Fatalf("runners %s after the retry, want one created", names(rs))
	}
	if f.metrics.get("create_failed/linux") != 1 || f.metrics.get("created/linux") != 1 {
		t.Fatalf("metrics %v", f.metrics.n)
	}
}

func TestNothingStartsForAJobNoLongerWaiting(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup makes the job not wait any more, at some point of the demand.
		setup    func(t *testing.T, f *fixture)
		queuedAt time.Duration // before t0
		minted   bool          // a JIT runner was minted (and must be removed again)
	}{
		{"taken before the demand", func(t *testing.T, f *fixture) { f.take(t, 1) }, 0, false},
		{"taken while the JIT configuration was minted", func(t *testing.T, f *fixture) {
			f.machines.onCreate = func() error { t.Error("create called for a job that was taken"); return nil }
			f.github.afterJIT = func() { f.take(t, 1) }
		}, 0, true},
		{"GitHub says it is running, after a minute's wait", func(t *testing.T, f *fixture) {
			f.gh.PutJob(testRepo, fakegithub.Job{ID: 1, Status: "in_progress", Labels: []string{"linux"}, RunnerName: "elsewhere", RunnerID: 3})
		}, 2 * time.Minute, false},
		{"GitHub no longer has it", func(t *testing.T, f *fixture) { f.gh.DeleteJob(testRepo, 1) }, 2 * time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, linuxPool())
			d := f.pending(t, 1, "linux", t0.Add(-tc.queuedAt))
			tc.setup(t, f)
			if err := f.p.Demand(t.Context(), d); err != nil {
				t.Fatalf("Demand: %v", err)
			}
			if rs := f.runners(t, "linux"); len(rs) != 0 || f.machines.created() != 0 {
				t.Fatalf("runners %s, %d creates; want nothing started", names(rs), f.machines.created())
			}
			if minted := f.gh.CountCalls("POST /orgs/octo/actions/runners/generate-jitconfig") > 0; minted != tc.minted {
				t.Fatalf("minted %v, want %v", minted, tc.minted)
			}
			if reg := f.registered(); len(reg) != 0 {
				t.Fatalf("GitHub keeps %q", reg)
			}
		})
	}
}

func TestJITFailuresAreLoggedOncePerCauseAndShown(t *testing.T) {
	f := newFixture(t, linuxPool())
	d := f.pending(t, 1, "linux", t0)
	f.gh.FailNext(3, http.StatusForbidden)
	for range 3 {
		if err := f.p.Demand(t.Context(), d); err == nil {
			t.Fatal("Demand succeeded although GitHub refused the JIT configuration")
		}
	}
	if n := f.logged("GitHub refuses JIT configurations"); n != 1 {
		t.Fatalf("logged %d times, want once for one cause", n)
	}
	got := f.p.JITErrors()
	if len(got) != 1 || got[0].Pool != "linux" || got[0].Cause != provisioning.CauseForbidden || got[0].Count != 3 || got[0].Scope != testScope {
		t.Fatalf("JIT errors %+v", got)
	}
	if f.metrics.get("jit/linux/forbidden") != 3 {
		t.Fatalf("metrics %v", f.metrics.n)
	}
	// Saved for a health that runs elsewhere (the ApiFunction), once while they stay.
	store := &countingCheckpoints{Store: f.engine.Store.(checkpoint.Store)}
	for range 2 {
		if err := f.p.SaveJITErrors(t.Context(), store); err != nil {
			t.Fatal(err)
		}
	}
	shown, err := provisioning.SavedProblems(store)(t.Context())
	if err != nil || len(shown) != 1 || !strings.Contains(shown[0], "runners cannot start in pool linux") || !strings.Contains(shown[0], "(forbidden)") || store.puts != 1 {
		t.Fatalf("saved problems %q, %v after %d saves; want pool linux forbidden, saved once", shown, err, store.puts)
	}
	f.gh.FailNext(1, http.StatusUnprocessableEntity)
	_ = f.p.Demand(t.Context(), d)
	if n := f.logged("GitHub refuses JIT configurations"); n != 2 {
		t.Fatalf("logged %d times after a new cause, want twice", n)
	}
	if err := f.p.Demand(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if got := f.p.JITErrors(); len(got) != 0 {
		t.Fatalf("JIT errors %+v after a success, want none", got)
	}
	if err := f.p.SaveJITErrors(t.Context(), store); err != nil {
		t.Fatal(err)
	}
	if shown, err := provisioning.SavedProblems(store)(t.Context()); err != nil || len(shown) != 0 {
		t.Fatalf("saved problems %q, %v after a success, want none", shown, err)
	}
}

// countingCheckpoints counts the checkpoints stored.
type countingCheckpoints struct {
	checkpoint.Store
	puts int
}

func (c *countingCheckpoints) PutCheckpoint(ctx context.Context, name string, data []byte) error {
	c.puts++
	return c.Store.PutCheckpoint(ctx, name, data)
}

func TestBootTimeoutReplacesTheRunner(t *testing.T) {
	f := newFixture(t, linuxPool())
	d := f.pending(t, 1, "linux", t0)
	if err := f.p.Demand(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	first := f.runners(t, "linux")[0]
	// Within bootTimeout nothing happens.
	if rep := f.p.Pass(t.Context(), f.advance(4*time.Minute)); rep.BootTimeouts != 0 {
		t.Fatalf("pass %+v before the boot timeout", rep)
	}
	rep := f.p.Pass(t.Context(), f.advance(2*time.Minute))
	if rep.BootTimeouts != 1 || rep.Started != 1 || len(rep.Errors) > 0 {
		t.Fatalf("pass %+v, want one boot timeout and one runner started again", rep)
	}
	rs := f.runners(t, "linux")
	if len(rs) != 1 || rs[0].Name == first.Name || rs[0].JobID != 1 || rs[0].State != jobs.RunnerStarting {
		t.Fatalf("runners %s, want a new one starting for job 1", names(rs))
	}
	if sent := f.retire(t); len(sent) != 1 || sent[0].Runner != first.Name {
		t.Fatalf("retires %+v, want the first runner's", sent)
	}
	if m := f.machines.names(); !slices.Equal(m, []string{rs[0].Name}) {
		t.Fatalf("machines %q, want only the new runner's", m)
	}
	if reg := f.registered(); !slices.Equal(reg, []string{rs[0].Name}) {
		t.Fatalf("GitHub runners %q, want only the new one", reg)
	}
	if f.metrics.get("boot_timeout/linux") != 1 {
		t.Fatalf("metrics %v", f.metrics.n)
	}
}

func TestIdleTimeoutKeepsMinIdle(t *testing.T) {
	for _, ephemeral := range []bool{false, true} {
		t.Run(map[bool]string{false: "long-lived", true: "ephemeral"}[ephemeral], func(t *testing.T) {
			pool := linuxPool()
			pool.Ephemeral, pool.MinIdle, pool.MaxRunners, pool.Prewarm = ephemeral, 1, 4, 3
			f := newFixture(t, pool)
			if err := f.p.Prewarm(t.Context(), jobs.Prewarm{Repository: testRepo, Pools: []string{"linux"}}); err != nil {
				t.Fatal(err)
			}
			rs := f.runners(t, "linux")
			if len(rs) != 3 {
				t.Fatalf("runners %s after pre-warming 3", names(rs))
			}
			for i, r := range rs {
				f.online(t, r.Name, t0.Add(time.Duration(i)*time.Minute))
			}
			// 15 minutes after the second came online: the first two are past idleTimeout.
			rep := f.p.Pass(t.Context(), f.advance(16*time.Minute+30*time.Second))
			if rep.IdleTimeouts != 2 || len(rep.Errors) > 0 {
				t.Fatalf("pass %+v, want 2 idle timeouts", rep)
			}
			left := f.runners(t, "linux")
			if len(left) != 1 || left[0].State != jobs.RunnerIdle {
				t.Fatalf("runners %s, want minIdle (1) idle one left", names(left))
			}
			if again := f.p.Pass(t.Context(), f.advance(time.Hour)); again.IdleTimeouts != 0 || again.Started != 0 {
				t.Fatalf("pass %+v, want minIdle held", again)
			}
			f.retire(t)
			if m := f.machines.names(); len(m) != 1 {
				t.Fatalf("machines %q, want one", m)
			}
		})
	}
}

func TestWarmPoolHoldsMinIdle(t *testing.T) {
	pool := linuxPool()
	pool.MinIdle, pool.MaxRunners = 2, 3
	f := newFixture(t, pool)
	if rep := f.p.Pass(t.Context(), f.clock()); rep.Started != 2 {
		t.Fatalf("pass %+v, want 2 warm runners started", rep)
	}
	// Starting runners count: the next pass starts nothing.
	if rep := f.p.Pass(t.Context(), f.advance(time.Minute)); rep.Started != 0 {
		t.Fatalf("pass %+v, want nothing more started", rep)
	}
	rs := f.runners(t, "linux")
	for _, r := range rs {
		if r.JobID != 0 || r.State != jobs.RunnerStarting {
			t.Fatalf("runners %s, want warm ones starting", names(rs))
		}
	}
	f.online(t, rs[0].Name, f.clock())
	f.online(t, rs[1].Name, f.clock())
	// A job takes one: the pool starts another to keep 2 idle.
	f.pending(t, 9, "linux", f.clock())
	if _, _, err := f.engine.Heartbeat(t.Context(), rs[0].Name, f.advance(time.Second)); err != nil {
		t.Fatal(err)
	}
	if j := f.job(t, 9); j.ReservedRunner == "" {
		t.Fatalf("job 9 %+v was not given an idle runner", j)
	}
	if rep := f.p.Pass(t.Context(), f.advance(time.Minute)); rep.Started != 1 {
		t.Fatalf("pass %+v, want one more warm runner", rep)
	}
	if rep := f.p.Pass(t.Context(), f.advance(time.Minute)); rep.Started != 0 {
		t.Fatalf("pass %+v: the pool has its 2 spare runners", rep)
	}
}

func TestPrewarmStartsUpToPrewarm(t *testing.T) {
	pool := linuxPool()
	pool.Prewarm, pool.MaxRunners = 2, 5
	other := linuxPool()
	other.Name, other.Prewarm = "gpu", 0
	f := newFixture(t, pool, other)
	w := jobs.Prewarm{Repository: testRepo, Pools: []string{"linux", "gpu", "unknown"}, Reason: "push"}
	for range 2 {
		if err := f.p.Prewarm(t.Context(), w); err != nil {
			t.Fatal(err)
		}
	}
	if rs := f.runners(t, "linux"); len(rs) != 2 {
		t.Fatalf("linux runners %s, want 2 (prewarm), however many pre-warms", names(rs))
	}
	if rs := f.runners(t, "gpu"); len(rs) != 0 {
		t.Fatalf("gpu runners %s, want none (prewarm 0)", names(rs))
	}
}

func TestOrphansAreReapedAfterTheGrace(t *testing.T) {
	f := newFixture(t, linuxPool()) // OrphanGrace: a minute
	if err := f.p.Demand(t.Context(), f.pending(t, 1, "linux", t0)); err != nil {
		t.Fatal(err)
	}
	ours := f.runners(t, "linux")[0].Name
	f.machines.add("linux", "rh-linux-deadbeef", "m-lost")
	f.machines.add("gpu", "rh-gpu-deadbeef", "m-other-pool")
	f.gh.AddRunner(testScope, "rh-linux-0badf00d", []string{"self-hosted", "linux"}, "offline", false)
	f.gh.AddRunner(testScope, "rh-linux-notours", []string{"self-hosted", "linux"}, "offline", false)
	f.gh.AddRunner(testScope, "build-box", []string{"self-hosted", "linux"}, "online", false)
	wantMachines := []string{"rh-gpu-deadbeef", ours}
	wantGitHub := []string{ours, "rh-linux-notours", "build-box"}
	for _, step := range []struct {
		after    time.Duration
		reaped   int
		machines []string
		github   []string
	}{
		{0, 0, []string{"rh-gpu-deadbeef", "rh-linux-deadbeef", ours}, append([]string{"rh-linux-0badf00d"}, wantGitHub...)},
		{30 * time.Second, 0, []string{"rh-gpu-deadbeef", "rh-linux-deadbeef", ours}, append([]string{"rh-linux-0badf00d"}, wantGitHub...)},
		{31 * time.Second, 2, wantMachines, wantGitHub},
	} {
		rep := f.p.Pass(t.Context(), f.advance(step.after))
		if rep.OrphansReaped != step.reaped || len(rep.Errors) > 0 {
			t.Fatalf("after %s: pass %+v, want %d reaped", step.after, rep, step.reaped)
		}
		if m := f.machines.names(); !sameSet(m, step.machines) {
			t.Fatalf("after %s: machines %q, want %q", step.after, m, step.machines)
		}
		if g := f.registered(); !sameSet(g, step.github) {
			t.Fatalf("after %s: GitHub runners %q, want %q", step.after, g, step.github)
		}
	}
	if f.metrics.get("orphan/linux/provider") != 1 || f.metrics.get("orphan/linux/github") != 1 {
		t.Fatalf("metrics %v", f.metrics.n)
	}
}

func TestPassFillsInAMissingProviderID(t *testing.T) {
	f := newFixture(t, linuxPool())
	f.pending(t, 1, "linux", t0)
	// A runner recorded as starting whose Create answered, but whose id was never
	// recorded (the process ended in between).
	if _, err := jobstest.StartOne(t.Context(), f.engine, jobs.StartSpec{RunnerSpec: jobs.RunnerSpec{Name: "rh-linux-0123abcd", Pool: "linux", Ephemeral: true}, JobID: 1}, t0); err != nil {
		t.Fatal(err)
	}
	f.machines.add("linux", "rh-linux-0123abcd", "m-crashed")
	rep := f.p.Pass(t.Context(), f.advance(time.Minute))
	if rep.ProviderIDsFilled != 1 || rep.OrphansReaped != 0 {
		t.Fatalf("pass %+v", rep)
	}
	if r := f.runners(t, "linux")[0]; r.ProviderID != "m-crashed" {
		t.Fatalf("runner %+v, want its provider id filled in", r)
	}
}

func TestRetireIsIdempotent(t *testing.T) {
	f := newFixture(t, linuxPool())
	if err := f.p.Demand(t.Context(), f.pending(t, 1, "linux", t0)); err != nil {
		t.Fatal(err)
	}
	r := f.runners(t, "linux")[0]
	if _, _, err := f.engine.RemoveRunner(t.Context(), r.Name, f.advance(time.Second)); err != nil {
		t.Fatal(err)
	}
	sent := f.signals.TakeRetires()
	if len(sent) != 1 || sent[0].ProviderID != r.ProviderID || sent[0].GitHubID != r.GitHubID {
		t.Fatalf("retires %+v, want runner %s's", sent, r.Name)
	}
	for i := range 3 {
		if err := f.p.Retire(t.Context(), sent[0]); err != nil {
			t.Fatalf("Retire #%d: %v", i+1, err)
		}
	}
	if m := f.machines.names(); len(m) != 0 {
		t.Fatalf("machines %q after Retire", m)
	}
	if reg := f.registered(); len(reg) != 0 {
		t.Fatalf("GitHub runners %q after Retire", reg)
	}
}

func TestRetireStartsRunnersForWaitingJobs(t *testing.T) {
	pool := linuxPool()
	pool.MaxRunners = 1
	f := newFixture(t, pool)
	first, second := f.pending(t, 1, "linux", t0), f.pending(t, 2, "linux", t0.Add(time.Second))
	for _, d := range []jobs.Demand{first, second} {
		if err := f.p.Demand(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	r := f.runners(t, "linux")
	if len(r) != 1 || r[0].JobID != 1 {
		t.Fatalf("runners %s, want one for job 1 (the pool is full)", names(r))
	}
	// Job 1 ran on it and completed: the engine deleted the runner and sent its Retire.
	f.take(t, 1)
	if _, _, err := f.engine.RemoveRunner(t.Context(), r[0].Name, f.advance(time.Second)); err != nil {
		t.Fatal(err)
	}
	sent := f.signals.TakeRetires()
	if len(sent) != 1 {
		t.Fatalf("retires %+v", sent)
	}
	removed := sent[0]
	if err := f.p.Retire(t.Context(), removed); err != nil {
		t.Fatal(err)
	}
	if r := f.runners(t, "linux"); len(r) != 0 {
		t.Fatalf("runners %s after a removal, want none: the provisioner removed it, and starts again on its own terms", names(r))
	}
	completed := removed
	completed.Reason = jobs.RetireCompleted
	if err := f.p.Retire(t.Context(), completed); err != nil {
		t.Fatal(err)
	}
	if r := f.runners(t, "linux"); len(r) != 1 || r[0].JobID != 2 {
		t.Fatalf("runners %s after a completed job's retirement, want one for job 2", names(r))
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
