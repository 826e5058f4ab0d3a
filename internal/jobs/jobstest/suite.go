// Package jobstest holds the conformance suites that every adapter of jobs.Store and
// delivery.Counters runs, so that the embedded and the AWS adapters promise the same
// behaviour.
//
// The suites rely on the ports alone. What they hold a store to, beyond the ports' own
// comments:
//   - times come back in UTC, truncated to the millisecond; an empty slice or map may come
//     back nil and the other way round;
//   - Commit does not change the Change it is given (Versions included): to learn the
//     stored Version, read the entity again;
//   - Commit fails with ErrConflict for an entity written at Version 0 that exists, at a
//     Version other than the stored one, or deleted at a Version other than the stored one
//     (a runner that does not exist included), and for a Finish of a delivery that is
//     finished already, by an earlier Change or recorded finished by Create;
//   - Commit of a Finish for a delivery that was never recorded fails with an error that
//     is jobs.ErrNotFound and not ErrConflict: reading again cannot make the delivery
//     appear, so the caller must not retry it as a conflict;
//   - a failed Commit writes nothing: no entity, no index entry, no delivery state, no
//     counter;
//   - a delivery recorded by Create already finished counts as Total and Processed at once,
//     so that Pending (Total − Processed) never counts it;
//   - HourlyCounts orders counters by hour only; counters of the same hour may come in any
//     order of event.
package jobstest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/provider"
	"github.com/runnerhub/webhooks/internal/testenv/suite"
)

// Stores are the ports of one storage adapter that the suites need together: a Change's
// Finish acts on the delivery store's records and on the counters.
type Stores struct {
	Jobs        jobs.Store
	Deliveries  delivery.Store
	Counters    delivery.Counters
	JobCounters jobs.Counters
}

// StoreSuite runs every behaviour jobs.Store promises against fresh stores from newStore
// (Counters is not used). Every subtest calls newStore once and uses ids, names, pools
// and repositories of its own, so newStore may hand out the same stores each time.
func StoreSuite(t *testing.T, newStore func(t *testing.T) Stores) {
	suite.Run(t, newStore, suite.Cases[Stores]{
		{"CommitNewRoundTrips", testCommitNewRoundTrips},
		{"CommitLeavesChangeAlone", testCommitLeavesChangeAlone},
		{"Versions", testVersions},
		{"DeleteRunners", testDeleteRunners},
		{"ChangeAppliesEverything", testChangeAppliesEverything},
		{"ConflictWritesNothing", testConflictWritesNothing},
		{"IdleRunners", testIdleRunners},
		{"PendingJobs", testPendingJobs},
		{"Pools", testPools},
		{"Gates", testGates},
		{"GateSides", testGateSides},
		{"NotFound", testNotFound},
		{"Finish", testFinish},
		{"FinishAlone", testFinishAlone},
		{"FinishTwiceConflicts", testFinishTwiceConflicts},
		{"FinishOfRecordedFinishedConflicts", testFinishOfRecordedFinished},
		{"FinishUnknownDelivery", testFinishUnknownDelivery},
		{"ConcurrentReserve", testConcurrentReserve},
	})
}

// entities is one entity of every kind, as a Change that creates them all.
type entities struct {
	job     *jobs.Job
	runner  *jobs.Runner
	run     *jobs.Run
	profile *jobs.Profile
}

func (e entities) change() *jobs.Change {
	return &jobs.Change{Jobs: []*jobs.Job{e.job}, Runners: []*jobs.Runner{e.runner},
		Runs: []*jobs.Run{e.run}, Profiles: []*jobs.Profile{e.profile}}
}

// everyField has every field set, times in a zone other than UTC and below the millisecond.
func everyField() entities {
	pool := newName("pool")
	e := entities{newJob(pool), newRunner(pool, jobs.RunnerBusy), newRun(), newProfile()}
	e.runner.JobID = e.job.ID
	return e
}

// fewFields are entities as the engine first writes them: most fields unknown yet.
func fewFields() entities {
	return entities{&jobs.Job{ID: newID(), Status: jobs.StatusWaiting}, &jobs.Runner{Name: newName("runner")},
		&jobs.Run{ID: newID()}, &jobs.Profile{Repository: newRepo()}}
}

func testCommitNewRoundTrips(t *testing.T, s Stores) {
	for _, tc := range []struct {
		name string
		new  func() entities
	}{{"EveryField", everyField}, {"FewFields", fewFields}} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.new()
			mustCommit(t, s.Jobs, e.change())
			checkFields(t, "Job", mustJob(t, s.Jobs, e.job.ID), atVersion(e.job, 1))
			checkFields(t, "Runner", mustRunner(t, s.Jobs, e.runner.Name), atVersion(e.runner, 1))
			checkFields(t, "Run", mustRun(t, s.Jobs, e.run.ID), atVersion(e.run, 1))
			checkFields(t, "Profile", mustProfile(t, s.Jobs, e.profile.Repository), atVersion(e.profile, 1))
		})
	}
}

func testCommitLeavesChangeAlone(t *testing.T, s Stores) {
	e := everyField()
	before := []any{*e.job, *e.runner, *e.run, *e.profile}
	mustCommit(t, s.Jobs, e.change())
	after := []any{*e.job, *e.runner, *e.run, *e.profile}
	for i := range before {
		if !reflect.DeepEqual(before[i], after[i]) {
			t.Errorf("Commit changed the %T it was given:\n before %+v\n after  %+v", before[i], before[i], after[i])
		}
	}
}

// versioned is one kind of entity a Change writes, reduced to what the version rules
// need: a change that writes it at a version with a note, and a read of version and note.
type versioned struct {
	kind  string
	write func(version int64, note string) *jobs.Change
	read  func(ctx context.Context) (version int64, note string, err error)
}

// versionedEntities returns one entity of every kind, with keys not used before.
func versionedEntities(s jobs.Store) []versioned {
	jobID, runnerName, runID, repo := newID(), newName("runner"), newID(), newRepo()
	return []versioned{
		{
			kind: "Job",
			write: func(v int64, note string) *jobs.Change {
				return &jobs.Change{Jobs: []*jobs.Job{{ID: jobID, Name: note, Status: jobs.StatusQueued, Version: v}}}
			},
			read: readBy(s.Job, jobID, func(j *jobs.Job) (int64, string) { return j.Version, j.Name }),
		},
		{
			kind: "Runner",
			write: func(v int64, note string) *jobs.Change {
				return &jobs.Change{Runners: []*jobs.Runner{{Name: runnerName, Labels: []string{note}, State: jobs.RunnerBusy, Version: v}}}
			},
			read: readBy(s.Runner, runnerName, func(r *jobs.Runner) (int64, string) { return r.Version, strings.Join(r.Labels, ",") }),
		},
		{
			kind: "Run",
			write: func(v int64, note string) *jobs.Change {
				return &jobs.Change{Runs: []*jobs.Run{{ID: runID, WorkflowName: note, Version: v}}}
			},
			read: readBy(s.Run, runID, func(r *jobs.Run) (int64, string) { return r.Version, r.WorkflowName }),
		},
		{
			kind: "Profile",
			write: func(v int64, note string) *jobs.Change {
				return &jobs.Change{Profiles: []*jobs.Profile{{Repository: repo, PoolUses: map[string]int{note: 1}, Version: v}}}
			},
			read: readBy(s.Profile, repo, func(p *jobs.Profile) (int64, string) {
				return p.Version, strings.Join(slices.Sorted(maps.Keys(p.PoolUses)), ",")
			}),
		},
	}
}

// readBy is a versioned read: the entity under key, by get, reduced by versionAndNote.
func readBy[K, E any](get func(context.Context, K) (*E, error), key K, versionAndNote func(*E) (int64, string)) func(context.Context) (int64, string, error) {
	return func(ctx context.Context) (int64, string, error) {
		e, err := get(ctx, key)
		if err != nil {
			return 0, "", err
		}
		v, note := versionAndNote(e)
		return v, note, nil
	}
}

// testVersions holds every kind of entity to the same optimistic-concurrency rules.
func testVersions(t *testing.T, s Stores) {
	for _, e := range versionedEntities(s.Jobs) {
		t.Run(e.kind, func(t *testing.T) {
			check := func(step string, wantVersion int64, wantNote string) {
				t.Helper()
				v, note, err := e.read(t.Context())
				if wantVersion == 0 {
					if !errors.Is(err, jobs.ErrNotFound) {
						t.Fatalf("%s: read: version %d, %q, err %v; want ErrNotFound", step, v, note, err)
					}
					return
				}
				if err != nil || v != wantVersion || note != wantNote {
					t.Fatalf("%s: read: version %d, %q, err %v; want version %d, %q", step, v, note, err, wantVersion, wantNote)
				}
			}
			// Each step writes at a version and then reads what is stored.
			for _, step := range []struct {
				name        string
				version     int64
				note        string
				conflicts   bool
				wantVersion int64 // 0: nothing is stored
				wantNote    string
			}{
				{"update of a missing entity", 1, "never stored", true, 0, ""},
				{"create", 0, "first", false, 1, "first"},
				{"create of an existing entity", 0, "created again", true, 1, "first"},
				{"update", 1, "second", false, 2, "second"},
				{"stale update", 1, "stale", true, 2, "second"},
				{"update at a version never stored", 3, "ahead", true, 2, "second"},
			} {
				err := s.Jobs.Commit(t.Context(), e.write(step.version, step.note))
				switch {
				case step.conflicts && !errors.Is(err, jobs.ErrConflict):
					t.Fatalf("%s: Commit: err = %v, want ErrConflict", step.name, err)
				case !step.conflicts && err != nil:
					t.Fatalf("%s: Commit: %v", step.name, err)
				}
				check(step.name, step.wantVersion, step.wantNote)
			}
		})
	}
}

func testDeleteRunners(t *testing.T, s Stores) {
	pool := newName("pool")
	runner := newRunner(pool, jobs.RunnerIdle)
	mustCommit(t, s.Jobs, &jobs.Change{Runners: []*jobs.Runner{runner}})
	updated := mustRunner(t, s.Jobs, runner.Name)
	updated.UpdatedAt = updated.UpdatedAt.Add(time.Second)
	mustCommit(t, s.Jobs, &jobs.Change{Runners: []*jobs.Runner{updated}}) // now at version 2

	stale := *updated
	stale.Version = 1
	commitConflict(t, s.Jobs, &jobs.Change{DeleteRunners: []*jobs.Runner{&stale}})
	if got := mustRunner(t, s.Jobs, runner.Name); got.Version != 2 {
		t.Fatalf("after a stale delete: Version = %d, want 2", got.Version)
	}
	checkNames(t, "IdleRunners after a stale delete", runnerNames(mustIdle(t, s.Jobs, pool, 10)), runner.Name)

	current := mustRunner(t, s.Jobs, runner.Name)
	mustCommit(t, s.Jobs, &jobs.Change{DeleteRunners: []*jobs.Runner{current}})
	if _, err := s.Jobs.Runner(t.Context(), runner.Name); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("Runner after delete: err = %v, want ErrNotFound", err)
	}
	checkNames(t, "IdleRunners after delete", runnerNames(mustIdle(t, s.Jobs, pool, 10)))

	// Deleting what is gone (or never was) cannot be checked against what was read.
	commitConflict(t, s.Jobs, &jobs.Change{DeleteRunners: []*jobs.Runner{current}})
	commitConflict(t, s.Jobs, &jobs.Change{DeleteRunners: []*jobs.Runner{newRunner(pool, jobs.RunnerIdle)}})
}

// atomicFixture is stored state plus a Change that touches every part of it: a pending
// job and an idle runner that the change reserves for each other, a runner it deletes, a
// run and a profile it updates, new entities of every kind, and the finish of a recorded
// delivery.
type atomicFixture struct {
	pool       string
	pending    *jobs.Job
	idle       *jobs.Runner
	doomed     *jobs.Runner
	run        *jobs.Run
	profile    *jobs.Profile
	newJob     *jobs.Job
	newRunner  *jobs.Runner
	newRun     *jobs.Run
	newProfile *jobs.Profile
	rec        *delivery.Record
	change     *jobs.Change
	updatedAt  time.Time
}

func newAtomicFixture(t *testing.T, s Stores) *atomicFixture {
	t.Helper()
	f := &atomicFixture{pool: newName("pool"), updatedAt: time.Now()}
	f.pending = pendingJob(f.pool, time.Now(), 0)
	f.idle = newRunner(f.pool, jobs.RunnerIdle)
	f.doomed = newRunner(f.pool, jobs.RunnerBusy)
	f.run, f.profile = newRun(), newProfile()
	mustCommit(t, s.Jobs, &jobs.Change{Jobs: []*jobs.Job{f.pending}, Runners: []*jobs.Runner{f.idle, f.doomed},
		Runs: []*jobs.Run{f.run}, Profiles: []*jobs.Profile{f.profile}})
	f.rec = mustCreateDelivery(t, s.Deliveries, time.Now())

	job := mustJob(t, s.Jobs, f.pending.ID)
	runner := mustRunner(t, s.Jobs, f.idle.Name)
	reserve(job, runner)
	run := mustRun(t, s.Jobs, f.run.ID)
	run.Status, run.UpdatedAt = "in_progress", f.updatedAt
	profile := mustProfile(t, s.Jobs, f.profile.Repository)
	profile.PoolUses[f.pool]++
	f.newJob, f.newRunner, f.newRun, f.newProfile = pendingJob(f.pool, time.Now(), 5), newRunner(f.pool, jobs.RunnerIdle), newRun(), newProfile()
	f.change = &jobs.Change{
		Jobs:          []*jobs.Job{job, f.newJob},
		Runners:       []*jobs.Runner{runner, f.newRunner},
		DeleteRunners: []*jobs.Runner{mustRunner(t, s.Jobs, f.doomed.Name)},
		Runs:          []*jobs.Run{run, f.newRun},
		Profiles:      []*jobs.Profile{profile, f.newProfile},
		Finish:        finishOf(f.rec, delivery.Processed, "processed: job reserved"),
	}
	return f
}

// snapshot describes everything the fixture's change could write, in a form to compare.
func (f *atomicFixture) snapshot(t *testing.T, s Stores) []string {
	t.Helper()
	ctx := t.Context()
	version := func(what string, v int64, err error) string {
		switch {
		case errors.Is(err, jobs.ErrNotFound):
			return what + ": absent"
		case err != nil:
			t.Fatalf("read %s: %v", what, err)
		}
		return fmt.Sprintf("%s: version %d", what, v)
	}
	var out []string
	for _, id := range []int64{f.pending.ID, f.newJob.ID} {
		j, err := s.Jobs.Job(ctx, id)
		out = append(out, version(fmt.Sprintf("job %d", id), versionOf(j, err, func(j *jobs.Job) int64 { return j.Version }), err))
	}
	for _, name := range []string{f.idle.Name, f.doomed.Name, f.newRunner.Name} {
		r, err := s.Jobs.Runner(ctx, name)
		out = append(out, version("runner "+name, versionOf(r, err, func(r *jobs.Runner) int64 { return r.Version }), err))
	}
	for _, id := range []int64{f.run.ID, f.newRun.ID} {
		r, err := s.Jobs.Run(ctx, id)
		out = append(out, version(fmt.Sprintf("run %d", id), versionOf(r, err, func(r *jobs.Run) int64 { return r.Version }), err))
	}
	for _, repo := range []string{f.profile.Repository, f.newProfile.Repository} {
		p, err := s.Jobs.Profile(ctx, repo)
		out = append(out, version("profile "+repo, versionOf(p, err, func(p *jobs.Profile) int64 { return p.Version }), err))
	}
	out = append(out,
		fmt.Sprintf("pending: %v", jobIDs(mustPending(t, s.Jobs, f.pool, 10))),
		fmt.Sprintf("idle: %v", runnerNames(mustIdle(t, s.Jobs, f.pool, 10))),
		"delivery: "+string(mustGetDelivery(t, s.Deliveries, f.rec.Key).State))
	return out
}

func versionOf[T any](v *T, err error, version func(*T) int64) int64 {
	if err != nil {
		return 0
	}
	return version(v)
}

// A control for testConflictWritesNothing: the same change, unspoilt, writes all of it.
func testChangeAppliesEverything(t *testing.T, s Stores) {
	f := newAtomicFixture(t, s)
	mustCommit(t, s.Jobs, f.change)

	job := mustJob(t, s.Jobs, f.pending.ID)
	if job.Version != 2 || job.Allocation != jobs.AllocationReserved || job.ReservedRunner != f.idle.Name {
		t.Errorf("reserved job: version %d, allocation %q, runner %q", job.Version, job.Allocation, job.ReservedRunner)
	}
	runner := mustRunner(t, s.Jobs, f.idle.Name)
	if runner.Version != 2 || runner.State != jobs.RunnerReserved || runner.JobID != f.pending.ID {
		t.Errorf("reserved runner: version %d, state %q, job %d", runner.Version, runner.State, runner.JobID)
	}
	if _, err := s.Jobs.Runner(t.Context(), f.doomed.Name); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("deleted runner: err = %v, want ErrNotFound", err)
	}
	run := mustRun(t, s.Jobs, f.run.ID)
	checkTime(t, "updated run: UpdatedAt", run.UpdatedAt, f.updatedAt)
	if run.Version != 2 || run.Status != "in_progress" {
		t.Errorf("updated run: version %d, status %q", run.Version, run.Status)
	}
	if p := mustProfile(t, s.Jobs, f.profile.Repository); p.Version != 2 || p.PoolUses[f.pool] != f.profile.PoolUses[f.pool]+1 {
		t.Errorf("updated profile: version %d, pool uses %v", p.Version, p.PoolUses)
	}
	checkFields(t, "new Job", mustJob(t, s.Jobs, f.newJob.ID), atVersion(f.newJob, 1))
	checkFields(t, "new Runner", mustRunner(t, s.Jobs, f.newRunner.Name), atVersion(f.newRunner, 1))
	checkFields(t, "new Run", mustRun(t, s.Jobs, f.newRun.ID), atVersion(f.newRun, 1))
	checkFields(t, "new Profile", mustProfile(t, s.Jobs, f.newProfile.Repository), atVersion(f.newProfile, 1))
	checkIDs(t, "PendingJobs", jobIDs(mustPending(t, s.Jobs, f.pool, 10)), f.newJob.ID)
	checkNames(t, "IdleRunners", runnerNames(mustIdle(t, s.Jobs, f.pool, 10)), f.newRunner.Name)
	checkFinished(t, s.Deliveries, f.rec, f.change.Finish)
}

// One spoilt part fails the whole change with ErrConflict, and nothing of it is written:
// neither entities nor index entries nor the delivery's state.
func testConflictWritesNothing(t *testing.T, s Stores) {
	// Each case writes concurrently, before the change, something the change read.
	cases := []struct {
		name  string
		spoil func(t *testing.T, s Stores, f *atomicFixture)
	}{
		{"StaleJob", func(t *testing.T, s Stores, f *atomicFixture) {
			j := mustJob(t, s.Jobs, f.pending.ID)
			j.Priority++
			mustCommit(t, s.Jobs, &jobs.Change{Jobs: []*jobs.Job{j}})
		}},
		{"StaleRunner", func(t *testing.T, s Stores, f *atomicFixture) {
			r := mustRunner(t, s.Jobs, f.idle.Name)
			r.UpdatedAt = r.UpdatedAt.Add(time.Second)
			mustCommit(t, s.Jobs, &jobs.Change{Runners: []*jobs.Runner{r}})
		}},
		{"StaleDeletedRunner", func(t *testing.T, s Stores, f *atomicFixture) {
			r := mustRunner(t, s.Jobs, f.doomed.Name)
			r.State = jobs.RunnerReserved
			mustCommit(t, s.Jobs, &jobs.Change{Runners: []*jobs.Runner{r}})
		}},
		{"StaleRun", func(t *testing.T, s Stores, f *atomicFixture) {
			r := mustRun(t, s.Jobs, f.run.ID)
			r.Conclusion = "cancelled"
			mustCommit(t, s.Jobs, &jobs.Change{Runs: []*jobs.Run{r}})
		}},
		{"StaleProfile", func(t *testing.T, s Stores, f *atomicFixture) {
			p := mustProfile(t, s.Jobs, f.profile.Repository)
			p.PoolUses["other"] = 1
			mustCommit(t, s.Jobs, &jobs.Change{Profiles: []*jobs.Profile{p}})
		}},
		{"NewJobExists", func(t *testing.T, s Stores, f *atomicFixture) {
			mustCommit(t, s.Jobs, &jobs.Change{Jobs: []*jobs.Job{{ID: f.newJob.ID, Status: jobs.StatusWaiting}}})
		}},
		{"NewRunnerExists", func(t *testing.T, s Stores, f *atomicFixture) {
			mustCommit(t, s.Jobs, &jobs.Change{Runners: []*jobs.Runner{{Name: f.newRunner.Name, State: jobs.RunnerBusy}}})
		}},
		{"DeliveryFinished", func(t *testing.T, s Stores, f *atomicFixture) {
			mustCommit(t, s.Jobs, &jobs.Change{Finish: finishOf(f.rec, delivery.Ignored, "ignored: finished elsewhere")})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newAtomicFixture(t, s)
			tc.spoil(t, s, f)
			before := f.snapshot(t, s)
			commitConflict(t, s.Jobs, f.change)
			if after := f.snapshot(t, s); !slices.Equal(before, after) {
				t.Errorf("a conflicting Commit wrote something:\n before %q\n after  %q", before, after)
			}
		})
	}
}

func testIdleRunners(t *testing.T, s Stores) {
	pool, other := newName("pool"), newName("pool")
	base := newName("runner")
	runner := func(suffix, pool string, state jobs.RunnerState) *jobs.Runner {
		r := newRunner(pool, state)
		r.Name = base + suffix
		return r
	}
	// Created out of name order, with runners that must not be listed.
	mustCommit(t, s.Jobs, &jobs.Change{Runners: []*jobs.Runner{
		runner("-c", pool, jobs.RunnerIdle),
		runner("-a", pool, jobs.RunnerIdle),
		runner("-d", pool, jobs.RunnerBusy),
		runner("-b", pool, jobs.RunnerIdle),
		runner("-e", other, jobs.RunnerIdle),
		runner("-f", pool, jobs.RunnerReserved),
	}})
	checkNames(t, "IdleRunners", runnerNames(mustIdle(t, s.Jobs, pool, 10)), base+"-a", base+"-b", base+"-c")
	checkNames(t, "IdleRunners limit 2", runnerNames(mustIdle(t, s.Jobs, pool, 2)), base+"-a", base+"-b")
	checkNames(t, "IdleRunners after the first page", runnerNames(mustIdleAfter(t, s.Jobs, pool, base+"-b", 2)), base+"-c")
	checkNames(t, "IdleRunners after a name not listed", runnerNames(mustIdleAfter(t, s.Jobs, pool, base+"-a0", 10)), base+"-b", base+"-c")
	checkNames(t, "IdleRunners of the other pool", runnerNames(mustIdle(t, s.Jobs, other, 10)), base+"-e")
	checkNames(t, "IdleRunners of an unknown pool", runnerNames(mustIdle(t, s.Jobs, newName("pool"), 10)))
	if got := mustIdle(t, s.Jobs, pool, 10); len(got) > 0 {
		checkFields(t, "first idle runner", got[0], mustRunner(t, s.Jobs, base+"-a"))
	}

	update := func(name string, change func(r *jobs.Runner)) {
		t.Helper()
		r := mustRunner(t, s.Jobs, name)
		change(r)
		mustCommit(t, s.Jobs, &jobs.Change{Runners: []*jobs.Runner{r}})
	}
	update(base+"-b", func(r *jobs.Runner) { r.State, r.JobID = jobs.RunnerReserved, newID() })
	checkNames(t, "IdleRunners after one is reserved", runnerNames(mustIdle(t, s.Jobs, pool, 10)), base+"-a", base+"-c")
	update(base+"-d", func(r *jobs.Runner) { r.State, r.JobID = jobs.RunnerIdle, 0 })
	checkNames(t, "IdleRunners after one is idle again", runnerNames(mustIdle(t, s.Jobs, pool, 10)), base+"-a", base+"-c", base+"-d")
	update(base+"-a", func(r *jobs.Runner) { r.Pool = other })
	checkNames(t, "IdleRunners after one moved to the other pool", runnerNames(mustIdle(t, s.Jobs, pool, 10)), base+"-c", base+"-d")
	checkNames(t, "IdleRunners of the other pool after the move", runnerNames(mustIdle(t, s.Jobs, other, 10)), base+"-a", base+"-e")
	update(base+"-c", func(r *jobs.Runner) { r.UpdatedAt = r.UpdatedAt.Add(time.Minute) })
	checkNames(t, "IdleRunners after an idle runner is updated", runnerNames(mustIdle(t, s.Jobs, pool, 10)), base+"-c", base+"-d")
}

func testPendingJobs(t *testing.T, s Stores) {
	pool, other := newName("pool"), newName("pool")
	t0 := time.Now().Add(-time.Hour)
	// Ranks with the default step of a minute per priority point:
	// b: t0+30m−100m = t0−70m, c: t0+5m−10m = t0−5m, a: t0, d: t0+1m.
	a := pendingJob(pool, t0, 0)
	b := pendingJob(pool, t0.Add(30*time.Minute), 100)
	c := pendingJob(pool, t0.Add(5*time.Minute), 10)
	d := pendingJob(pool, t0.Add(time.Minute), 0)
	elsewhere := pendingJob(other, t0, 0)
	running := newJob(pool) // assigned, not pending
	mustCommit(t, s.Jobs, &jobs.Change{Jobs: []*jobs.Job{d, a, running, c, elsewhere, b}})

	checkIDs(t, "PendingJobs", jobIDs(mustPending(t, s.Jobs, pool, 10)), b.ID, c.ID, a.ID, d.ID)
	checkIDs(t, "PendingJobs limit 2", jobIDs(mustPending(t, s.Jobs, pool, 2)), b.ID, c.ID)
	checkIDs(t, "PendingJobs after the first page", jobIDs(mustPendingAfter(t, s.Jobs, pool, c.QueueKey, 2)), a.ID, d.ID)
	checkIDs(t, "PendingJobs of the other pool", jobIDs(mustPending(t, s.Jobs, other, 10)), elsewhere.ID)
	checkIDs(t, "PendingJobs of an unknown pool", jobIDs(mustPending(t, s.Jobs, newName("pool"), 10)))
	if got := mustPending(t, s.Jobs, pool, 1); len(got) == 1 {
		checkFields(t, "first pending job", got[0], mustJob(t, s.Jobs, b.ID))
	}

	update := func(id int64, change func(j *jobs.Job)) {
		t.Helper()
		j := mustJob(t, s.Jobs, id)
		change(j)
		mustCommit(t, s.Jobs, &jobs.Change{Jobs: []*jobs.Job{j}})
	}
	update(c.ID, func(j *jobs.Job) { reserve(j, newRunner(pool, jobs.RunnerIdle)) })
	checkIDs(t, "PendingJobs after one is reserved", jobIDs(mustPending(t, s.Jobs, pool, 10)), b.ID, a.ID, d.ID)
	// a is queued again with a higher priority: its new place is ahead of b.
	update(a.ID, func(j *jobs.Job) {
		j.Priority = 150
		j.QueueKey = jobs.RankKey(jobs.Rank(j.QueuedAt, j.Priority, jobs.DefaultPriorityStep), j.ID)
	})
	checkIDs(t, "PendingJobs after one moved up", jobIDs(mustPending(t, s.Jobs, pool, 10)), a.ID, b.ID, d.ID)
	update(d.ID, func(j *jobs.Job) {
		j.Status, j.Conclusion, j.Allocation, j.QueueKey = jobs.StatusCompleted, "cancelled", jobs.AllocationAbandoned, ""
	})
	checkIDs(t, "PendingJobs after one is abandoned", jobIDs(mustPending(t, s.Jobs, pool, 10)), a.ID, b.ID)
}

func testPools(t *testing.T, s Stores) {
	prefix := newName("pool")
	a := jobs.Pool{Name: prefix + "-a", Labels: []string{"linux", "x64"}, MinIdle: 1, MaxRunners: 10,
		Provider:    &provider.Config{Type: provider.TypeExec, Exec: &provider.ExecConfig{Command: []string{"/p", "--x"}, Timeout: time.Minute}},
		BootTimeout: 90 * time.Second, IdleTimeout: time.Hour, Ephemeral: true, Prewarm: 2, RunnerScope: "org/octo-org", RunnerGroupID: 3}
	b := jobs.Pool{Name: prefix + "-b", Labels: []string{"gpu"}, MaxRunners: 2}
	c := jobs.Pool{Name: prefix + "-c"}
	for _, p := range []jobs.Pool{c, a, b} {
		if err := s.Jobs.PutPool(t.Context(), p); err != nil {
			t.Fatalf("PutPool %s: %v", p.Name, err)
		}
	}
	checkPools(t, "Pools", ourPools(t, s.Jobs, prefix), a, b, c)

	b.Labels, b.MinIdle, b.MaxRunners = []string{"gpu", "a100"}, 1, 4
	if err := s.Jobs.PutPool(t.Context(), b); err != nil {
		t.Fatalf("PutPool of an existing pool: %v", err)
	}
	checkPools(t, "Pools after an update", ourPools(t, s.Jobs, prefix), a, b, c)

	if err := s.Jobs.DeletePool(t.Context(), a.Name); err != nil {
		t.Fatalf("DeletePool: %v", err)
	}
	checkPools(t, "Pools after a delete", ourPools(t, s.Jobs, prefix), b, c)
	for _, name := range []string{a.Name, prefix + "-never"} {
		if err := s.Jobs.DeletePool(t.Context(), name); !errors.Is(err, jobs.ErrNotFound) {
			t.Errorf("DeletePool of unknown pool %s: err = %v, want ErrNotFound", name, err)
		}
	}
}

func testNotFound(t *testing.T, s Stores) {
	ctx := t.Context()
	reads := []struct {
		what string
		read func() error
	}{
		{"Job", func() error { _, err := s.Jobs.Job(ctx, newID()); return err }},
		{"Runner", func() error { _, err := s.Jobs.Runner(ctx, newName("runner")); return err }},
		{"Run", func() error { _, err := s.Jobs.Run(ctx, newID()); return err }},
		{"Profile", func() error { _, err := s.Jobs.Profile(ctx, newRepo()); return err }},
	}
	for _, r := range reads {
		if err := r.read(); !errors.Is(err, jobs.ErrNotFound) {
			t.Errorf("%s of an unknown key: err = %v, want ErrNotFound", r.what, err)
		}
	}
}

func testFinish(t *testing.T, s Stores) {
	rec := mustCreateDelivery(t, s.Deliveries, time.Now())
	job := newJob(newName("pool"))
	fin := finishOf(rec, delivery.Processed, "processed: job queued")
	fin.At = time.Date(2025, 3, 30, 1, 59, 59, 999_999_999, time.FixedZone("UTC-3", -3*3600))
	mustCommit(t, s.Jobs, &jobs.Change{Jobs: []*jobs.Job{job}, Finish: fin})

	checkFinished(t, s.Deliveries, rec, fin)
	mustJob(t, s.Jobs, job.ID)
}

// An ignored event has no effects but its finish, which still goes through Commit.
func testFinishAlone(t *testing.T, s Stores) {
	rec := mustCreateDelivery(t, s.Deliveries, time.Now())
	fin := finishOf(rec, delivery.Ignored, "ignored: not a self-hosted job")
	mustCommit(t, s.Jobs, &jobs.Change{Finish: fin})
	checkFinished(t, s.Deliveries, rec, fin)
}

// A delivery processed twice (SQS redelivers; two processors race) has its effects once.
func testFinishTwiceConflicts(t *testing.T, s Stores) {
	rec := mustCreateDelivery(t, s.Deliveries, time.Now())
	first := finishOf(rec, delivery.Processed, "processed: first")
	mustCommit(t, s.Jobs, &jobs.Change{Jobs: []*jobs.Job{newJob(newName("pool"))}, Finish: first})

	second := newJob(newName("pool"))
	again := finishOf(rec, delivery.Processed, "processed: second")
	again.At = first.At.Add(time.Minute)
	commitConflict(t, s.Jobs, &jobs.Change{Jobs: []*jobs.Job{second}, Finish: again})
	checkFinished(t, s.Deliveries, rec, first)
	checkJobAbsent(t, s.Jobs, second.ID, "the second Commit's job")
}

// A delivery recorded already finished (Create with a final state) has no effects to
// apply: finishing it conflicts and keeps its outcome.
func testFinishOfRecordedFinished(t *testing.T, s Stores) {
	rec := newDelivery("workflow_job", time.Now())
	rec.State, rec.Outcome, rec.ProcessedAt = delivery.Ignored, "ignored: recorded finished", rec.ReceivedAt
	mustCreate(t, s.Deliveries, rec)

	job := newJob(newName("pool"))
	commitConflict(t, s.Jobs, &jobs.Change{Jobs: []*jobs.Job{job}, Finish: finishOf(rec, delivery.Processed, "processed")})
	want := finishOf(rec, delivery.Ignored, "ignored: recorded finished")
	want.At = rec.ReceivedAt
	checkFinished(t, s.Deliveries, rec, want)
	checkJobAbsent(t, s.Jobs, job.ID, "the Commit's job")
}

// A Finish for a delivery that was never recorded is a bug, not a race: ErrNotFound, so
// that the caller does not retry it as a conflict, and nothing is written.
func testFinishUnknownDelivery(t *testing.T, s Stores) {
	rec := newDelivery("workflow_job", time.Now()) // never created
	job := newJob(newName("pool"))
	err := s.Jobs.Commit(t.Context(), &jobs.Change{Jobs: []*jobs.Job{job}, Finish: finishOf(rec, delivery.Processed, "processed")})
	if !errors.Is(err, jobs.ErrNotFound) || errors.Is(err, jobs.ErrConflict) {
		t.Fatalf("Commit finishing an unknown delivery: err = %v, want ErrNotFound (and not ErrConflict)", err)
	}
	checkJobAbsent(t, s.Jobs, job.ID, "the Commit's job")
	if _, err := s.Deliveries.Get(t.Context(), rec.Key); !errors.Is(err, delivery.ErrNotFound) {
		t.Fatalf("Get of the unknown delivery after the Commit: err = %v, want delivery.ErrNotFound", err)
	}
}

// Processors racing for one idle runner, each for its own job: the runner is reserved for
// exactly one of them, and the others' changes are not written at all.
func testConcurrentReserve(t *testing.T, s Stores) {
	const n = 8
	pool := newName("pool")
	runner := newRunner(pool, jobs.RunnerIdle)
	pending := make([]*jobs.Job, n)
	for i := range pending {
		pending[i] = pendingJob(pool, time.Now(), i)
	}
	mustCommit(t, s.Jobs, &jobs.Change{Jobs: pending, Runners: []*jobs.Runner{runner}})

	read := mustRunner(t, s.Jobs, runner.Name) // read once, as every racer did
	changes := make([]*jobs.Change, n)
	for i := range changes {
		j, r := mustJob(t, s.Jobs, pending[i].ID), *read
		reserve(j, &r)
		changes[i] = &jobs.Change{Jobs: []*jobs.Job{j}, Runners: []*jobs.Runner{&r}}
	}
	errs := make([]error, n)
	suite.Race(n, func(i int) { errs[i] = s.Jobs.Commit(t.Context(), changes[i]) })

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("Commits %d and %d both reserved the runner", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, jobs.ErrConflict):
			t.Fatalf("Commit %d: err = %v, want nil or ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no Commit reserved the runner")
	}
	got := mustRunner(t, s.Jobs, runner.Name)
	if got.State != jobs.RunnerReserved || got.JobID != pending[winner].ID || got.Version != 2 {
		t.Errorf("runner: state %q, job %d, version %d; want reserved for job %d at version 2", got.State, got.JobID, got.Version, pending[winner].ID)
	}
	var losers []int64
	for i, p := range pending {
		j := mustJob(t, s.Jobs, p.ID)
		switch {
		case i == winner && (j.Allocation != jobs.AllocationReserved || j.Version != 2):
			t.Errorf("winning job: allocation %q, version %d; want reserved at version 2", j.Allocation, j.Version)
		case i != winner && (j.Allocation != jobs.AllocationPending || j.Version != 1):
			t.Errorf("losing job %d: allocation %q, version %d; want pending at version 1", i, j.Allocation, j.Version)
		}
		if i != winner {
			losers = append(losers, p.ID)
		}
	}
	checkNames(t, "IdleRunners", runnerNames(mustIdle(t, s.Jobs, pool, 10)))
	// Equal ranks are ordered by job id (RankKey), but only same-millisecond ranks are equal.
	gotPending := jobIDs(mustPending(t, s.Jobs, pool, n))
	slices.Sort(gotPending)
	slices.Sort(losers)
	checkIDs(t, "PendingJobs (any order)", gotPending, losers...)
}

// A pool's gate starts at version 0 without being written, and a Change carrying a gate
// read at a stale version conflicts as a whole: that is what serialises allocation
// decisions within a pool.
func testGates(t *testing.T, s Stores) {
	ctx := t.Context()
	pool := newName("pool")
	version := func() int64 {
		t.Helper()
		g, err := s.Jobs.Gate(ctx, pool, jobs.GateCapacity)
		if err != nil || g.Pool != pool {
			t.Fatalf("Gate(%s) = %+v, %v", pool, g, err)
		}
		return g.Version
	}
	if v := version(); v != 0 {
		t.Fatalf("unwritten gate at version %d, want 0", v)
	}
	mustCommit(t, s.Jobs, &jobs.Change{Gates: []*jobs.Gate{{Pool: pool}}})
	if v := version(); v != 1 {
		t.Fatalf("gate at version %d after one commit, want 1", v)
	}
	runner := newName("runner")
	commitConflict(t, s.Jobs, &jobs.Change{
		Gates:   []*jobs.Gate{{Pool: pool, Version: 0}},
		Runners: []*jobs.Runner{{Name: runner, Pool: pool, State: jobs.RunnerIdle}},
	})
	if _, err := s.Jobs.Runner(ctx, runner); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("a change with a stale gate wrote its runner: %v", err)
	}
	mustCommit(t, s.Jobs, &jobs.Change{Gates: []*jobs.Gate{{Pool: pool, Version: 1}}})
	if v := version(); v != 2 {
		t.Fatalf("gate at version %d after two commits, want 2", v)
	}
}

// The two allocation sides of a pool's gate (jobs.Gate): bumps commute, so Changes that
// bump one side at stale versions all commit, each adding one; a check of a side fails
// its whole Change once the side was bumped since it was read, and writes nothing; the
// sides and the capacity gate count apart; and a side both checked and written (Gates)
// is version checked.
func testGateSides(t *testing.T, s Stores) {
	ctx := t.Context()
	pool := newName("pool")
	version := func(side jobs.GateSide) int64 {
		t.Helper()
		g, err := s.Jobs.Gate(ctx, pool, side)
		if err != nil || g.Pool != pool || g.Side != side {
			t.Fatalf("Gate(%s, %q) = %+v, %v", pool, side, g, err)
		}
		return g.Version
	}
	runnersRead := &jobs.Gate{Pool: pool, Side: jobs.GateRunners, Version: version(jobs.GateRunners)}
	jobsSide := jobs.GateKey{Pool: pool, Side: jobs.GateJobs}
	// Three job plans that read the runners side at the same version: none conflicts.
	for range 3 {
		mustCommit(t, s.Jobs, &jobs.Change{GateChecks: []*jobs.Gate{runnersRead}, GateBumps: []jobs.GateKey{jobsSide}})
	}
	if v := version(jobs.GateJobs); v != 3 {
		t.Fatalf("jobs side at version %d after three bumps, want 3", v)
	}
	if v := version(jobs.GateRunners); v != 0 {
		t.Fatalf("checked runners side at version %d, want 0: a check writes nothing", v)
	}
	// A runner plan that read the jobs side before the last bump conflicts as a whole.
	runner := newName("runner")
	commitConflict(t, s.Jobs, &jobs.Change{
		GateChecks: []*jobs.Gate{{Pool: pool, Side: jobs.GateJobs, Version: 2}},
		GateBumps:  []jobs.GateKey{{Pool: pool, Side: jobs.GateRunners}},
		Runners:    []*jobs.Runner{{Name: runner, Pool: pool, State: jobs.RunnerIdle}},
	})
	if _, err := s.Jobs.Runner(ctx, runner); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("a change with a stale gate check wrote its runner: %v", err)
	}
	if v := version(jobs.GateRunners); v != 0 {
		t.Fatalf("runners side at version %d after a conflicting change, want 0", v)
	}
	// Read again, it commits; and then a job plan that read the runners side before it
	// conflicts in turn.
	mustCommit(t, s.Jobs, &jobs.Change{
		GateChecks: []*jobs.Gate{{Pool: pool, Side: jobs.GateJobs, Version: 3}},
		GateBumps:  []jobs.GateKey{{Pool: pool, Side: jobs.GateRunners}},
	})
	commitConflict(t, s.Jobs, &jobs.Change{GateChecks: []*jobs.Gate{runnersRead}, GateBumps: []jobs.GateKey{jobsSide}})
	if v := version(jobs.GateJobs); v != 3 {
		t.Fatalf("jobs side at version %d after a conflicting bump, want 3", v)
	}
	if v := version(jobs.GateCapacity); v != 0 {
		t.Fatalf("capacity gate at version %d after bumps of the sides, want 0", v)
	}
	// Checked and written: version checked.
	commitConflict(t, s.Jobs, &jobs.Change{Gates: []*jobs.Gate{{Pool: pool, Side: jobs.GateJobs, Version: 2}}})
	mustCommit(t, s.Jobs, &jobs.Change{Gates: []*jobs.Gate{{Pool: pool, Side: jobs.GateJobs, Version: 3}}})
	if v := version(jobs.GateJobs); v != 4 {
		t.Fatalf("jobs side at version %d after a versioned write, want 4", v)
	}
}
