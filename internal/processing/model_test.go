package processing_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/jobs/jobstest"
	"github.com/runnerhub/webhooks/internal/processing"
	"github.com/runnerhub/webhooks/internal/testenv"
)

// The model-based test: random sequences of workflow_job deliveries for many jobs and
// runners, duplicated (also by a second hook), reordered and processed by two concurrent
// processors, with runner registrations, heartbeats and removals in between, must end in
// the state a simple sequential reference model predicts (each job's facts, its pool, the
// repository profile, the listings), with the allocation invariants intact. Fixed seeds
// run in make test; more with
//
//	go test ./internal/processing -run Model -model.runs 200 -model.seed 0
//
// (-model.seed 0 picks a fresh seed per run; a failure prints the seed to replay.)
var (
	modelRuns = flag.Int("model.runs", 3, "random histories per store")
	modelSeed = flag.Uint64("model.seed", 20261136, "seed of the first history (0: random)")
)

// Stores is one store implementation under test.
type Stores struct {
	Deliveries delivery.Store
	Counters   delivery.Counters
	Jobs       jobs.Store
}

var modelPools = []jobs.Pool{
	{Name: "gpu", Labels: []string{"linux", "gpu"}, MinIdle: 0, MaxRunners: 10},
	{Name: "linux", Labels: []string{"linux", "x64"}, MinIdle: 1, MaxRunners: 30},
}

var labelSets = [][]string{
	{"self-hosted", "linux"},                  // fits both pools
	{"self-hosted", "linux", "x64", "small"},  // linux only, priority 10
	{"self-hosted", "Linux", "GPU", "deploy"}, // gpu only, on gpu-1 (case-insensitive), priority 100
	{"self-hosted", "linux", "x64", "big"},    // linux only, on linux-2 or z-linux-3
	{"self-hosted", "windows"},                // no pool
	{"ubuntu-latest"},                         // GitHub-hosted
}

type modelRunner struct {
	name, pool string
	ephemeral  bool
	labels     []string // its own, beside its pool's
}

// modelRunners are the runners GitHub runs jobs on: registered before the first
// delivery and online throughout. Two carry labels of their own, which make the jobs
// that need them fit their pools.
var modelRunners = []modelRunner{
	{"linux-1", "linux", false, nil}, {"linux-2", "linux", false, []string{"big"}}, {"linux-3", "linux", true, nil},
	{"gpu-1", "gpu", false, []string{"deploy"}}, {"gpu-2", "gpu", true, nil},
}

// fits is GitHub's rule: every job label is among the runner's labels, its pool's and its
// own (jobs.Fits: case-insensitive, self-hosted implied).
func (r modelRunner) fits(labels []string) bool {
	i := slices.IndexFunc(modelPools, func(p jobs.Pool) bool { return p.Name == r.pool })
	return jobs.Fits(labels, append(slices.Clip(modelPools[i].Labels), r.labels...))
}

// poolFits reports whether one of the runners that are in pool throughout could run a
// job with labels.
func poolFits(labels []string, pool jobs.Pool) bool {
	return jobs.Fits(labels, pool.Labels) ||
		slices.ContainsFunc(modelRunners, func(r modelRunner) bool { return r.pool == pool.Name && r.fits(labels) })
}

// silentRunners registered long ago and went silent: offline at every delivery, unless a
// heartbeat brings them back. There are more of them than a search reads at once, and
// their names sort before the live runners', so a search for an idle runner must read
// past them.
var silentRunners = func() []modelRunner {
	var rs []modelRunner
	for i := range 16 {
		rs = append(rs, modelRunner{fmt.Sprintf("a-linux-%02d", i), "linux", false, nil})
	}
	return append(rs, modelRunner{"a-gpu-1", "gpu", false, nil}, modelRunner{"a-gpu-2", "gpu", true, nil})
}()

// extraRunners register while deliveries are processed. GitHub runs no job on them (it
// picks among modelRunners), so they only ever get reservations.
var extraRunners = []modelRunner{
	{"z-linux-1", "linux", false, nil}, {"z-linux-2", "linux", true, nil}, {"z-linux-3", "linux", false, []string{"big"}},
	{"z-gpu-1", "gpu", false, nil},
}

// modelStart is when the history starts; modelNow is after the last delivery: the time of
// every fleet operation, and the LastSeen of the runners that are online.
var (
	modelStart = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	modelNow   = modelStart.Add(time.Hour)
)

// modelOfflineAfter is the engine's OfflineAfter in the model.
const modelOfflineAfter = 5 * time.Minute

// fleetOp is a runner registration, heartbeat or removal, interleaved with deliveries
// (or, for the one marked first, before any of them).
type fleetOp struct {
	kind   string // register, heartbeat, remove
	runner modelRunner
	first  bool
}

// history is one generated scenario.
type history struct {
	seed       uint64
	deliveries []*delivery.Record // in the order GitHub sent them
	ops        []fleetOp
	expected   map[int64]expectedJob
}

type expectedJob struct {
	status     jobs.Status
	conclusion string
	runner     string
	labels     []string
	// The times GitHub's events say (created, started, completed) and the receipt of the
	// first queued delivery, of any hook.
	createdAt, queuedAt, startedAt, completedAt time.Time
}

// pools are the pools the job may be recorded in ("" for none). Once it has started or
// finished there is one: the pool of the runner of ours that ran it, else the first pool
// by name that fits it. While it is queued, the pool it waits in is a timing-dependent
// allocation decision: any pool it fits.
func (exp expectedJob) pools() []string {
	var fitting []string
	for _, p := range modelPools { // by name
		if poolFits(exp.labels, p) {
			fitting = append(fitting, p.Name)
		}
	}
	switch {
	case exp.status == jobs.StatusWaiting || len(fitting) == 0:
		return []string{""}
	case exp.status == jobs.StatusQueued:
		return fitting
	}
	for _, r := range modelRunners {
		if r.name == exp.runner {
			return []string{r.pool}
		}
	}
	return fitting[:1]
}

// settled reports whether the job has started or finished, so its pool is a fact.
func (exp expectedJob) settled() bool { return exp.status.Rank() >= jobs.StatusInProgress.Rank() }

// generate makes a history: each job goes through some prefix of waiting → queued →
// in_progress → completed (or is cancelled while queued), with the runner GitHub picks.
func generate(t testing.TB, seed uint64, nJobs int) *history {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	h := &history{seed: seed, expected: map[int64]expectedJob{}}
	t0 := modelStart
	clock := 0
	// emit sends one event. Now and then a second hook (the organisation's, beside the
	// repository's) sends it too, received a little later under the same delivery id.
	emit := func(exp *expectedJob, jobID int64, status jobs.Status) time.Time {
		clock++
		at := t0.Add(time.Duration(clock) * time.Second)
		rec := &delivery.Record{
			Key:   delivery.Key{HookID: "1", DeliveryID: fmt.Sprintf("d-%d-%d", seed, clock)},
			Event: "workflow_job", Action: string(status), Repository: "octo/repo",
			ReceivedAt: at, State: delivery.Received,
			Payload: testenv.JobPayload(t, testenv.Job{ID: jobID, Labels: exp.labels, Status: string(status),
				Runner: exp.runner, Conclusion: exp.conclusion, Repository: "octo/repo", Created: t0, At: at,
				Started: exp.startedAt}),
		}
		h.deliveries = append(h.deliveries, rec)
		if rng.IntN(6) == 0 {
			copied := *rec
			copied.Key.HookID, copied.ReceivedAt = "2", at.Add(500*time.Millisecond)
			h.deliveries = append(h.deliveries, &copied)
		}
		return at
	}
	// GitHub runs one job at a time on a runner, and an ephemeral runner only once: free
	// holds the runners available at this point of the history.
	free := map[string]bool{}
	for _, r := range modelRunners {
		free[r.name] = true
	}
	for i := range nJobs {
		id := int64(1000 + i)
		labels := labelSets[rng.IntN(len(labelSets))]
		exp := expectedJob{labels: labels, createdAt: t0}
		if rng.IntN(5) == 0 {
			emit(&exp, id, jobs.StatusWaiting)
			exp.status = jobs.StatusWaiting
		}
		if rng.IntN(10) > 0 {
			exp.queuedAt = emit(&exp, id, jobs.StatusQueued)
			exp.status = jobs.StatusQueued
			switch r := rng.IntN(10); {
			case r < 7:
				exp.runner = pickRunner(rng, labels, free)
				free[exp.runner] = false
				exp.startedAt = t0.Add(time.Duration(clock+1) * time.Second)
				emit(&exp, id, jobs.StatusInProgress)
				exp.status = jobs.StatusInProgress
				if rng.IntN(5) > 0 {
					exp.conclusion = []string{"success", "failure"}[rng.IntN(2)]
					exp.completedAt = emit(&exp, id, jobs.StatusCompleted)
					exp.status = jobs.StatusCompleted
					free[exp.runner] = !isEphemeral(exp.runner)
				}
			case r < 8:
				exp.conclusion = "cancelled"
				exp.startedAt = t0 // GitHub's started_at of a job no runner started: its creation
				exp.completedAt = emit(&exp, id, jobs.StatusCompleted)
				exp.status = jobs.StatusCompleted
			}
		}
		if exp.status != "" {
			h.expected[id] = exp
		}
	}
	for i, r := range slices.Concat(modelRunners, silentRunners, extraRunners) {
		if extra := i - len(modelRunners) - len(silentRunners); extra >= 0 {
			// The first extra runner is there before the first delivery, idle behind the
			// silent runners until a job finds it.
			h.ops = append(h.ops, fleetOp{"register", r, extra == 0})
		}
		// Some silent runners come back, some are removed; most stay silent, more of
		// them than one read of the idle index returns.
		if rng.IntN(8) == 0 {
			h.ops = append(h.ops, fleetOp{"heartbeat", r, false})
		}
		if i >= len(modelRunners) && rng.IntN(8) == 0 {
			h.ops = append(h.ops, fleetOp{"remove", r, false})
		}
	}
	return h
}

func isEphemeral(name string) bool {
	return slices.ContainsFunc(modelRunners, func(r modelRunner) bool { return r.name == name && r.ephemeral })
}

// pickRunner is the runner GitHub would choose: a free one of ours that fits, or a
// hosted one (always free).
func pickRunner(rng *rand.Rand, labels []string, free map[string]bool) string {
	var fit []string
	for _, r := range modelRunners {
		if free[r.name] && r.fits(labels) {
			fit = append(fit, r.name)
		}
	}
	if len(fit) == 0 || rng.IntN(6) == 0 {
		return "GitHub Actions 2"
	}
	return fit[rng.IntN(len(fit))]
}

// runModel processes h against fresh stores: every delivery is recorded then processed,
// in a random order, some twice, split over two concurrent processors, with the fleet
// operations in between.
func runModel(t *testing.T, s Stores, h *history) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(h.seed, 1))
	var fleet []*jobs.Runner
	for _, r := range modelRunners {
		fleet = append(fleet, &jobs.Runner{Name: r.name, Pool: r.pool, Labels: r.labels, Ephemeral: r.ephemeral, State: jobs.RunnerIdle, LastSeen: modelNow})
	}
	for _, r := range silentRunners {
		fleet = append(fleet, &jobs.Runner{Name: r.name, Pool: r.pool, Ephemeral: r.ephemeral, State: jobs.RunnerIdle, LastSeen: modelStart.Add(-time.Hour)})
	}
	if err := s.Jobs.Commit(ctx, &jobs.Change{Runners: fleet}); err != nil {
		t.Fatal(err)
	}
	// An action is a delivery or a fleet operation.
	type action struct {
		rec *delivery.Record
		op  *fleetOp
	}
	var order []action
	for _, d := range h.deliveries {
		order = append(order, action{rec: d})
	}
	for i := range h.ops {
		order = append(order, action{op: &h.ops[i]})
	}
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for _, d := range h.deliveries {
		if rng.IntN(4) == 0 { // SQS or GitHub delivering twice
			order = slices.Insert(order, rng.IntN(len(order)+1), action{rec: d})
		}
	}
	if i := slices.IndexFunc(order, func(a action) bool { return a.op != nil && a.op.first }); i >= 0 {
		first := order[i]
		order = slices.Insert(slices.Delete(order, i, i+1), 0, first)
	}
	engine := &jobs.Engine{Store: s.Jobs, Pools: modelPools, Step: time.Minute, OfflineAfter: modelOfflineAfter}
	proc := &processing.Processor{
		Deliveries: s.Deliveries, Counters: s.Counters, Engine: engine,
		Signals: &jobstest.Signals{}, Log: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC) },
	}
	engine.Deliveries = s.Deliveries // re-read after a conflict
	apply := func(a action) error {
		if a.op != nil {
			return applyOp(ctx, engine, a.op)
		}
		return proc.Process(ctx, delivery.Message{Key: a.rec.Key, Event: a.rec.Event})
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(order))
	for worker := range 2 {
		wg.Go(func() {
			for i := worker; i < len(order); i += 2 {
				a := order[i]
				if a.rec != nil {
					rec := *a.rec
					if _, err := s.Deliveries.Create(ctx, &rec); err != nil {
						errs <- err
						return
					}
				}
				for attempt := 0; ; attempt++ { // the queue retries failures
					err := apply(a)
					if err == nil {
						break
					}
					if attempt == 20 {
						errs <- fmt.Errorf("%+v kept failing: %w", a, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("seed %d: %v", h.seed, err)
	}
	checkModel(t, s, h)
}

// applyOp runs one fleet operation at modelNow. Operations on a runner removed already,
// or registrations in a full pool, fail as they should and change nothing.
func applyOp(ctx context.Context, e *jobs.Engine, op *fleetOp) error {
	var err error
	switch op.kind {
	case "register":
		spec := jobs.RunnerSpec{Name: op.runner.name, Pool: op.runner.pool, Labels: op.runner.labels, Ephemeral: op.runner.ephemeral}
		_, _, err = e.RegisterRunner(ctx, spec, modelNow)
	case "heartbeat":
		_, _, err = e.Heartbeat(ctx, op.runner.name, modelNow)
	case "remove":
		_, _, err = e.RemoveRunner(ctx, op.runner.name, modelNow)
	}
	if errors.Is(err, jobs.ErrNotFound) || errors.Is(err, jobs.ErrPoolFull) {
		return nil
	}
	return err
}

func checkModel(t *testing.T, s Stores, h *history) {
	t.Helper()
	ctx := context.Background()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d (replay: -model.seed %d -model.runs 1): %s", h.seed, h.seed, fmt.Sprintf(format, args...))
	}
	// Every delivery finished exactly once, and the counters agree.
	for _, d := range h.deliveries {
		rec, err := s.Deliveries.Get(ctx, d.Key)
		if err != nil || !rec.State.Done() {
			fail("delivery %s not finished: %+v %v", d.DeliveryID, rec, err)
		}
	}
	counts, err := s.Counters.HourlyCounts(ctx, h.deliveries[0].ReceivedAt.Add(-time.Hour), h.deliveries[0].ReceivedAt.Add(48*time.Hour))
	if err != nil {
		fail("counters: %v", err)
	}
	var total, processed int64
	for _, c := range counts {
		total, processed = total+c.Total, processed+c.Processed
	}
	if total != int64(len(h.deliveries)) || processed != total {
		fail("counters total %d processed %d, want %d each", total, processed, len(h.deliveries))
	}

	holders := map[int64]string{}
	runners := map[string]*jobs.Runner{}
	for _, mr := range slices.Concat(modelRunners, silentRunners, extraRunners) {
		r, err := s.Jobs.Runner(ctx, mr.name)
		if errors.Is(err, jobs.ErrNotFound) {
			continue // removed, or an ephemeral runner retired after its job
		}
		if err != nil {
			fail("runner %s: %v", mr.name, err)
		}
		runners[r.Name] = r
		if r.JobID != 0 {
			if other, dup := holders[r.JobID]; dup {
				fail("job %d held by runners %s and %s", r.JobID, other, r.Name)
			}
			holders[r.JobID] = r.Name
		}
		if (r.State == jobs.RunnerIdle) != (r.JobID == 0) {
			fail("runner %s is %s with job %d", r.Name, r.State, r.JobID)
		}
	}
	recorded := map[int64]*jobs.Job{}
	for id, exp := range h.expected {
		job, err := s.Jobs.Job(ctx, id)
		if err != nil {
			fail("job %d lost: %v", id, err)
		}
		if job.Status != exp.status || job.Conclusion != exp.conclusion || job.RunnerName != exp.runner ||
			!slices.Equal(job.Labels, exp.labels) || !job.CreatedAt.Equal(exp.createdAt) ||
			!job.QueuedAt.Equal(exp.queuedAt) || !job.StartedAt.Equal(exp.startedAt) || !job.CompletedAt.Equal(exp.completedAt) {
			fail("job %d: got status %s conclusion %q runner %q labels %v created %v queued %v started %v completed %v, want %+v",
				id, job.Status, job.Conclusion, job.RunnerName, job.Labels, job.CreatedAt, job.QueuedAt, job.StartedAt, job.CompletedAt, exp)
		}
		if !slices.Contains(exp.pools(), job.Pool) {
			fail("job %d (%s, labels %v, runner %q) is in pool %q, want one of %q", id, job.Status, job.Labels, job.RunnerName, job.Pool, exp.pools())
		}
		recorded[id] = job
		if _, kept := runners[exp.runner]; kept && exp.status == jobs.StatusCompleted && isEphemeral(exp.runner) {
			fail("ephemeral runner %s is kept after its job %d completed", exp.runner, id)
		}
		fits := slices.ContainsFunc(modelPools, func(p jobs.Pool) bool { return poolFits(exp.labels, p) })
		checkAllocation(fail, job, fits, runners, holders)
	}
	checkIndexes(fail, s.Jobs, recorded)
	checkProfile(fail, s.Jobs, h)
	// Nothing waits while an online runner that could take it sits idle, in its own pool
	// or in another one the job fits, whatever the races.
	for _, queue := range modelPools {
		pending := readAll(fail, func(after string) ([]*jobs.Job, error) {
			return s.Jobs.PendingJobs(ctx, queue.Name, after, 10)
		}, func(j *jobs.Job) string { return j.QueueKey })
		for _, pool := range modelPools {
			idle := readAll(fail, func(after string) ([]*jobs.Runner, error) {
				return s.Jobs.IdleRunners(ctx, pool.Name, after, 10)
			}, func(r *jobs.Runner) string { return r.Name })
			for _, j := range pending {
				for _, r := range idle {
					if !r.Offline(modelNow, modelOfflineAfter) && jobs.Fits(j.Labels, append(slices.Clip(pool.Labels), r.Labels...)) {
						fail("job %d waits in pool %s while runner %s of pool %s is idle", j.ID, queue.Name, r.Name, pool.Name)
					}
				}
			}
		}
	}
}

// readAll reads an index page by page to its end.
func readAll[T any](fail func(string, ...any), read func(after string) ([]T, error), key func(T) string) []T {
	var all []T
	for after := ""; ; {
		page, err := read(after)
		if err != nil {
			fail("read index: %v", err)
		}
		all = append(all, page...)
		if len(page) == 0 {
			return all
		}
		after = key(page[len(page)-1])
	}
}

// checkIndexes holds the listings to the jobs as recorded: each status's listing, the
// repository's and each pool's (and the pending queues) list exactly the jobs recorded
// with that status, repository and pool.
func checkIndexes(fail func(string, ...any), s jobs.Store, recorded map[int64]*jobs.Job) {
	pools := []string{""}
	for _, p := range modelPools {
		pools = append(pools, p.Name)
	}
	for _, status := range []jobs.Status{jobs.StatusWaiting, jobs.StatusQueued, jobs.StatusInProgress, jobs.StatusCompleted, jobs.StatusPending} {
		for _, f := range []jobs.JobFilter{{Repository: "octo/repo"}, {}} {
			for _, pool := range pools {
				f.Status, f.Pool = status, pool
				if status == jobs.StatusPending && pool == "" {
					continue
				}
				var want []int64
				for id, j := range recorded {
					if status == jobs.StatusPending && j.Allocation == jobs.AllocationPending && j.Pool == pool ||
						status == j.Status && (pool == "" || j.Pool == pool) {
						want = append(want, id)
					}
				}
				got := listAll(fail, s, f)
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					fail("ListJobs %+v lists %v, want %v", f, got, want)
				}
			}
		}
	}
}

func listAll(fail func(string, ...any), s jobs.Store, f jobs.JobFilter) []int64 {
	var ids []int64
	f.Limit = jobs.MaxListLimit
	for {
		page, next, err := s.ListJobs(context.Background(), f)
		if err != nil {
			fail("ListJobs %+v: %v", f, err)
		}
		for _, j := range page {
			ids = append(ids, j.ID)
		}
		if f.Cursor = next; next == "" {
			return ids
		}
	}
}

// checkProfile holds the repository's profile to the jobs that settled: it names each
// pool they settled in, with the day of the latest, whatever order their events came in.
func checkProfile(fail func(string, ...any), s jobs.Store, h *history) {
	want := map[string]int{}
	for _, exp := range h.expected {
		if pool := exp.pools()[0]; exp.settled() && pool != "" {
			want[pool] = max(want[pool], jobs.ProfileDay(exp.createdAt))
		}
	}
	prof, err := s.Profile(context.Background(), "octo/repo")
	if errors.Is(err, jobs.ErrNotFound) {
		prof, err = &jobs.Profile{}, nil
	}
	if err != nil {
		fail("profile: %v", err)
	}
	if !maps.Equal(prof.PoolUses, want) && (len(prof.PoolUses) != 0 || len(want) != 0) {
		fail("profile of octo/repo is %v, want %v", prof.PoolUses, want)
	}
}

func checkAllocation(fail func(string, ...any), job *jobs.Job, fits bool, runners map[string]*jobs.Runner, holders map[int64]string) {
	holder := holders[job.ID]
	switch job.Status {
	case jobs.StatusWaiting:
		if job.Allocation != jobs.AllocationNone || holder != "" {
			fail("waiting job %d allocated %s / %s", job.ID, job.Allocation, holder)
		}
	case jobs.StatusQueued:
		switch {
		case !fits && job.Allocation != jobs.AllocationUnmatched:
			fail("job %d fits no pool but is %s", job.ID, job.Allocation)
		case fits && job.Allocation == jobs.AllocationPending && (job.QueueKey == "" || holder != ""):
			fail("pending job %d has queue key %q and holder %q", job.ID, job.QueueKey, holder)
		case fits && job.Allocation == jobs.AllocationReserved:
			r := runners[job.ReservedRunner]
			if r == nil || r.State != jobs.RunnerReserved || r.JobID != job.ID {
				fail("job %d reserved %s, which does not hold it: %+v", job.ID, job.ReservedRunner, r)
			}
		case fits && job.Allocation != jobs.AllocationPending && job.Allocation != jobs.AllocationReserved:
			fail("queued job %d is %s: lost from the queue", job.ID, job.Allocation)
		}
	case jobs.StatusInProgress:
		if r := runners[job.RunnerName]; r != nil && (r.State != jobs.RunnerBusy || r.JobID != job.ID) {
			fail("job %d runs on %s, which is %s with job %d", job.ID, job.RunnerName, r.State, r.JobID)
		}
		if holder != "" && holder != job.RunnerName {
			fail("job %d runs on %s but %s holds it", job.ID, job.RunnerName, holder)
		}
	case jobs.StatusCompleted:
		if holder != "" {
			fail("completed job %d still holds runner %s", job.ID, holder)
		}
		want := jobs.AllocationAbandoned
		if !fits {
			want = jobs.AllocationUnmatched
		} else if job.RunnerName != "" {
			want = jobs.AllocationAssigned
		}
		if job.Allocation != want || job.QueueKey != "" {
			fail("completed job %d: allocation %s queue key %q, want %s", job.ID, job.Allocation, job.QueueKey, want)
		}
	}
}

// modelTest runs the model against stores from newStores.
func modelTest(t *testing.T, newStores func(t *testing.T) Stores) {
	for i := range *modelRuns {
		seed := *modelSeed + uint64(i)
		if *modelSeed == 0 {
			seed = rand.Uint64()
		}
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			runModel(t, newStores(t), generate(t, seed, 40))
		})
	}
}
