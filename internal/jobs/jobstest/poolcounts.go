package jobstest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/provider"
	"github.com/runnerhub/webhooks/internal/testenv/suite"
)

// CountNew sets c.Counts as the engine would for a Change of new jobs and runners only
// (Version 0), and returns c: for tests that seed a store with Changes of their own
// making and then read the pool status.
func CountNew(t testing.TB, c *jobs.Change) *jobs.Change {
	t.Helper()
	tally := jobs.Tally{}
	for _, j := range c.Jobs {
		if j.Version != 0 {
			t.Fatalf("CountNew: job %d at version %d is not new", j.ID, j.Version)
		}
		tally.Add(j.Counts(), 1)
	}
	for _, r := range c.Runners {
		if r.Version != 0 {
			t.Fatalf("CountNew: runner %s at version %d is not new", r.Name, r.Version)
		}
		tally.Add(r.Counts(), 1)
	}
	if len(c.DeleteRunners) > 0 {
		t.Fatal("CountNew: a Change that deletes runners has no new counts")
	}
	c.Counts = tally.Counts()
	return c
}

// PoolCountsSuite runs what jobs.Store promises of the pool counts (Store.PoolCounts and
// Change.Counts) against fresh stores from newStores, which may hand out the same stores
// each time (every subtest uses pools of its own). The engine's part, deriving the
// counts from what a Change writes, is held to the stored runners and queues.
func PoolCountsSuite(t *testing.T, newStores func(t *testing.T) Stores) {
	suite.Run(t, newStores, suite.Cases[Stores]{
		{"AddAndRead", testPoolCountsAddAndRead},
		{"ConflictCountsNothing", testPoolCountsConflict},
		{"EngineKeepsThemExact", testPoolCountsThroughEngine},
		{"ConcurrentChangesStayExact", testPoolCountsConcurrent},
		{"BurstOfStartsIsOneCommit", testPoolCountsBurstOfStarts},
	})
}

func mustPoolCounts(t *testing.T, s jobs.Store, pools ...string) []jobs.PoolCounts {
	t.Helper()
	counts, err := s.PoolCounts(t.Context(), pools)
	return must(t, "PoolCounts", counts, err)
}

func checkPoolCounts(t *testing.T, what string, got []jobs.PoolCounts, want ...jobs.PoolCounts) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: pool counts\n %+v\nwant\n %+v", what, got, want)
	}
}

// Counts add up over commits, may go down, are read in the order asked, and a pool
// nothing was counted in reads as zeros.
func testPoolCountsAddAndRead(t *testing.T, s Stores) {
	a, b, never := newName("pool"), newName("pool"), newName("pool")
	idle, waiting := newRunner(a, jobs.RunnerIdle), pendingJob(b, time.Now(), 0)
	mustCommit(t, s.Jobs, CountNew(t, &jobs.Change{Runners: []*jobs.Runner{idle, newRunner(a, jobs.RunnerBusy)}, Jobs: []*jobs.Job{waiting}}))
	checkPoolCounts(t, "after the first commit", mustPoolCounts(t, s.Jobs, b, never, a),
		jobs.PoolCounts{Pool: b, Pending: 1}, jobs.PoolCounts{Pool: never}, jobs.PoolCounts{Pool: a, Idle: 1, Busy: 1})

	reserve(waiting, idle)
	waiting.Pool = a
	mustCommit(t, s.Jobs, &jobs.Change{
		Runners: []*jobs.Runner{atVersion(idle, 1)}, Jobs: []*jobs.Job{atVersion(waiting, 1)},
		Counts: []jobs.PoolCounts{{Pool: a, Idle: -1, Reserved: 1}, {Pool: b, Pending: -1}},
	})
	checkPoolCounts(t, "after a reservation", mustPoolCounts(t, s.Jobs, a, b),
		jobs.PoolCounts{Pool: a, Reserved: 1, Busy: 1}, jobs.PoolCounts{Pool: b})
	checkPoolCounts(t, "no pool", mustPoolCounts(t, s.Jobs))
}

// A Change that fails its checks, a stale entity or a delivery finished already, counts
// nothing: the counts are part of the version-checked write.
func testPoolCountsConflict(t *testing.T, s Stores) {
	pool := newName("pool")
	r := newRunner(pool, jobs.RunnerIdle)
	mustCommit(t, s.Jobs, CountNew(t, &jobs.Change{Runners: []*jobs.Runner{r}}))
	moved := *r
	moved.State = jobs.RunnerBusy
	commitConflict(t, s.Jobs, &jobs.Change{Runners: []*jobs.Runner{&moved}, // read at version 0: stale
		Counts: []jobs.PoolCounts{{Pool: pool, Idle: -1, Busy: 1}}})

	rec := newDelivery("workflow_job", time.Now())
	mustCreate(t, s.Deliveries, rec)
	CommitFinish(t, s.Deliveries, rec, delivery.Processed, "done", time.Now())
	commitConflict(t, s.Jobs, &jobs.Change{Finish: finishOf(rec, delivery.Processed, "again"),
		Counts: []jobs.PoolCounts{{Pool: pool, Idle: -1, Busy: 1}}})
	checkPoolCounts(t, "after two conflicts", mustPoolCounts(t, s.Jobs, pool), jobs.PoolCounts{Pool: pool, Idle: 1})
}

// counted is a small fleet run through the real engine on s, with pools of its own.
type counted struct {
	t     *testing.T
	s     Stores
	e     *jobs.Engine
	label string
	pools []string
	now   time.Time
	mu    sync.Mutex
	seq   int // numbers the deliveries
}

func newCounted(t *testing.T, s Stores, maxRunners int) *counted {
	label := newName("label")
	c := &counted{t: t, s: s, label: label, now: time.Now().UTC().Truncate(time.Second)}
	// Both pools fit every job; a job waits in the first by name, pools[0].
	c.pools = []string{newName("pool"), newName("pool")}
	slices.Sort(c.pools)
	var pools []jobs.Pool
	for _, name := range c.pools {
		pools = append(pools, jobs.Pool{Name: name, Labels: []string{label}, MaxRunners: maxRunners,
			Provider: &provider.Config{Type: "exec", Exec: &provider.ExecConfig{Command: []string{"/bin/true"}}}})
	}
	c.e = &jobs.Engine{Store: s.Jobs, Pools: pools, Step: time.Minute, Deliveries: s.Deliveries,
		Now: func() time.Time { return c.now }}
	return c
}

// deliver applies a workflow_job delivery of job id in status, run on runner (from
// in_progress on), through the engine.
func (c *counted) deliver(id int64, status, runner string) {
	c.t.Helper()
	c.mu.Lock()
	c.seq++
	n := c.seq
	c.mu.Unlock()
	wj := map[string]any{"id": id, "run_id": id, "name": "build", "labels": []string{"self-hosted", c.label},
		"status": status, "created_at": c.now.Add(-time.Minute), "started_at": c.now.Add(-time.Minute)}
	if runner != "" {
		wj["runner_name"], wj["runner_id"], wj["started_at"] = runner, 1, c.now
	}
	if status == string(jobs.StatusCompleted) {
		wj["conclusion"], wj["completed_at"] = "success", c.now
	}
	payload, err := json.Marshal(map[string]any{"action": status, "workflow_job": wj,
		"repository": map[string]any{"full_name": "octo-org/counted"}})
	if err != nil {
		c.t.Fatal(err)
	}
	rec := &delivery.Record{Key: delivery.Key{HookID: "1", DeliveryID: newName(fmt.Sprintf("counted-%d", n))},
		Event: "workflow_job", Action: status, Repository: "octo-org/counted", ReceivedAt: c.now,
		Payload: payload, State: delivery.Received}
	mustCreate(c.t, c.s.Deliveries, rec)
	if _, err := c.e.Apply(context.Background(), rec); err != nil {
		c.t.Errorf("apply %s of job %d: %v", status, id, err)
	}
}

// check holds the counts to a recount of what is stored: every runner of each pool by
// state, and every job in its pending queue.
func (c *counted) check(what string) {
	c.t.Helper()
	var want []jobs.PoolCounts
	for _, pool := range c.pools {
		recount := jobs.Tally{}
		recount.Add(jobs.PoolCounts{Pool: pool}, 1)
		for _, r := range pageRunners(c.t, c.s.Jobs, pool, jobs.MaxListLimit) {
			recount.Add(r.Counts(), 1)
		}
		for after := ""; ; {
			page := mustPendingAfter(c.t, c.s.Jobs, pool, after, jobs.MaxListLimit)
			for _, j := range page {
				recount.Add(j.Counts(), 1)
			}
			if len(page) < jobs.MaxListLimit {
				break
			}
			after = page[len(page)-1].QueueKey
		}
		want = append(want, *recount[pool])
	}
	checkPoolCounts(c.t, what, mustPoolCounts(c.t, c.s.Jobs, c.pools...), want...)
}

func (c *counted) register(name, pool string, ephemeral bool) {
	c.t.Helper()
	if _, _, err := c.e.RegisterRunner(context.Background(), jobs.RunnerSpec{Name: name, Pool: pool, Ephemeral: ephemeral}, c.now); err != nil {
		c.t.Errorf("register %s: %v", name, err)
	}
}

// Each kind of change the engine makes keeps the counts equal to a recount: runners
// registered and matched, jobs queued, reserved, started and completed, an ephemeral
// runner deleted after its job, a reserved runner removed (its job back in the queue),
// runners started by the provisioner (for a job, and warm), created, removed while
// starting and booted (a heartbeat), heartbeats.
func testPoolCountsThroughEngine(t *testing.T, s Stores) {
	c := newCounted(t, s, 10)
	p1, p2 := c.pools[0], c.pools[1]
	eph, long, other := newName("runner"), newName("runner"), newName("runner")
	c.register(eph, p1, true)
	c.register(long, p1, false)
	c.check("three runners registered")
	j1, j2, j3, j4 := newID(), newID(), newID(), newID()
	for _, id := range []int64{j1, j2, j3, j4} {
		c.deliver(id, "queued", "")
	}
	c.check("four jobs queued, two reserved")
	ctx := context.Background()
	booting, warm := newName("runner"), newName("runner")
	waiting := mustPending(t, s.Jobs, p1, 1)[0].ID // j3 or j4, whichever ranks first
	if _, err := StartOne(ctx, c.e, jobs.StartSpec{RunnerSpec: jobs.RunnerSpec{Name: booting, Pool: p1}, JobID: waiting}, c.now); err != nil {
		t.Fatal(err)
	}
	if _, err := StartOne(ctx, c.e, jobs.StartSpec{RunnerSpec: jobs.RunnerSpec{Name: warm, Pool: p2}}, c.now); err != nil {
		t.Fatal(err)
	}
	c.check("two runners starting")
	if _, _, err := c.e.RunnerCreated(ctx, booting, "i-1", c.now); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.e.RemoveRunner(ctx, warm, c.now); err != nil {
		t.Fatal(err)
	}
	c.check("a starting runner created, one removed")
	if _, _, err := c.e.Heartbeat(ctx, booting, c.now); err != nil {
		t.Fatal(err)
	}
	c.check("a starting runner booted and matched")
	c.deliver(j1, "in_progress", eph)
	c.check("a job started")
	c.deliver(j1, "completed", eph)
	c.check("an ephemeral runner deleted after its job")
	if _, _, err := c.e.RemoveRunner(ctx, long, c.now); err != nil {
		t.Fatal(err)
	}
	c.check("a reserved runner removed")
	c.register(other, p2, false) // takes a job from p1's queue
	c.check("a runner registered in another pool")
	c.deliver(j2, "completed", "") // cancelled while it waited
	if _, _, err := c.e.Heartbeat(ctx, other, c.now); err != nil {
		t.Fatal(err)
	}
	c.check("a job cancelled, a heartbeat")
	c.deliver(j2, "queued", "") // late: changes nothing
	c.check("a late event")
}

// Deliveries and fleet operations on the same pools at once conflict, and are planned
// again from fresh reads: the counts of the change that commits are those of its last
// plan, so they stay equal to a recount.
func testPoolCountsConcurrent(t *testing.T, s Stores) {
	c := newCounted(t, s, 100)
	suite.Race(12, func(i int) { // six registrations and six deliveries, interleaved
		if n := i / 2; i%2 == 0 {
			c.register(newName("runner"), c.pools[n%2], n%3 == 0)
		} else {
			c.deliver(newID(), "queued", "")
		}
	})
	c.check("runners registered and jobs queued at once")
}

// A burst of jobs.MaxStartBatch starts, each for a waiting job, fits in one commit (on
// DynamoDB, one transaction) and counts every runner it starts.
func testPoolCountsBurstOfStarts(t *testing.T, s Stores) {
	c := newCounted(t, s, jobs.MaxStartBatch)
	var specs []jobs.StartSpec
	for range jobs.MaxStartBatch {
		id := newID()
		c.deliver(id, "queued", "")
		specs = append(specs, jobs.StartSpec{RunnerSpec: jobs.RunnerSpec{Name: newName("runner"), Pool: c.pools[0]}, JobID: id})
	}
	started, plan, err := c.e.StartRunners(context.Background(), specs, c.now)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range started {
		if st.Err != nil {
			t.Fatalf("start %d of %d: %v", i, len(specs), st.Err)
		}
	}
	if len(plan.Change.Runners) != jobs.MaxStartBatch {
		t.Fatalf("one commit started %d runners, want %d", len(plan.Change.Runners), jobs.MaxStartBatch)
	}
	c.check("a burst of starts")
	if got := mustPoolCounts(t, s.Jobs, c.pools[0])[0]; got.Starting != jobs.MaxStartBatch || got.Pending != jobs.MaxStartBatch {
		t.Fatalf("counts after the burst %+v, want %d starting beside %d pending", got, jobs.MaxStartBatch, jobs.MaxStartBatch)
	}
}
