package jobstest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
)

// newID returns an id unique to the test, below 2⁵³ like GitHub's, so that stores that
// keep numbers as JSON or DynamoDB numbers keep it exactly.
func newID() int64 {
	var b [8]byte
	rand.Read(b[:]) // never fails since Go 1.24
	return int64(binary.BigEndian.Uint64(b[:])>>11) + 1
}

// newName returns a name unique to the test, so that stores may be shared between tests.
func newName(prefix string) string {
	var b [6]byte
	rand.Read(b[:]) // never fails since Go 1.24
	return prefix + "-" + hex.EncodeToString(b[:])
}

func newRepo() string { return newName("octo-org/repo") }

// zone is not UTC, so that a store that does not convert times is caught.
var zone = time.FixedZone("UTC+5:30", 5*3600+1800)

// newJob returns a job with every field set, assigned to a runner in pool.
func newJob(pool string) *jobs.Job {
	queued := time.Date(2024, 2, 29, 23, 59, 59, 123_456_789, zone)
	return &jobs.Job{
		ID:             newID(),
		RunID:          newID(),
		Repository:     newRepo(),
		Name:           "build (ubuntu, 1.26)",
		Labels:         []string{"self-hosted", "linux", "production"},
		HeadSHA:        "d6fde92930d4715a2b49857d24b940956b26d2d3",
		HTMLURL:        "https://github.com/octo-org/octo-repo/actions/runs/1/job/2",
		Status:         jobs.StatusInProgress,
		Conclusion:     "",
		Priority:       100,
		RunnerID:       newID(),
		RunnerName:     newName("runner"),
		Pool:           pool,
		Allocation:     jobs.AllocationAssigned,
		ReservedRunner: newName("runner"),
		CreatedAt:      queued.Add(-1500 * time.Microsecond),
		QueuedAt:       queued,
		StartedAt:      queued.Add(90*time.Second + 999*time.Microsecond),
		Deliveries:     []string{"72d3162e-cc78-11e3-81ab-4c9367dc0958", "a1b2c3d4-cc78-11e3-81ab-4c9367dc0958"},
	}
}

// pendingJob returns a job in pool's pending queue, placed by its queue time and priority.
func pendingJob(pool string, queuedAt time.Time, priority int) *jobs.Job {
	j := newJob(pool)
	j.Status, j.Priority, j.QueuedAt, j.StartedAt = jobs.StatusQueued, priority, queuedAt, time.Time{}
	j.RunnerID, j.RunnerName, j.ReservedRunner = 0, "", ""
	j.Allocation = jobs.AllocationPending
	j.QueueKey = jobs.RankKey(jobs.Rank(queuedAt, priority, jobs.DefaultPriorityStep), j.ID)
	return j
}

func newRunner(pool string, state jobs.RunnerState) *jobs.Runner {
	return &jobs.Runner{
		Name:      newName("runner"),
		Pool:      pool,
		Labels:    []string{"self-hosted", "linux", "x64"},
		Ephemeral: true,
		State:     state,
		UpdatedAt: time.Date(2024, 7, 1, 12, 0, 0, 987_654_321, zone),
	}
}

func newRun() *jobs.Run {
	created := time.Date(2024, 12, 31, 23, 30, 0, 1_999_999, zone)
	return &jobs.Run{
		ID:           newID(),
		Repository:   newRepo(),
		WorkflowName: "CI",
		HeadBranch:   "main",
		HeadSHA:      "d6fde92930d4715a2b49857d24b940956b26d2d3",
		Event:        "push",
		Status:       "queued",
		CreatedAt:    created,
		UpdatedAt:    created.Add(time.Second),
	}
}

func newProfile() *jobs.Profile {
	return &jobs.Profile{Repository: newRepo(), PoolUses: map[string]int{"linux-x64": 12, "gpu": 1}}
}

// reserve gives runner to job, as the engine does when it allocates.
func reserve(job *jobs.Job, runner *jobs.Runner) {
	job.Allocation, job.ReservedRunner, job.QueueKey = jobs.AllocationReserved, runner.Name, ""
	runner.State, runner.JobID = jobs.RunnerReserved, job.ID
}

// atVersion returns a copy of an entity with its Version field set: what the store should
// hand back once it has stored the entity at that version.
func atVersion[T any](v *T, version int64) *T {
	c := *v
	reflect.ValueOf(&c).Elem().FieldByName("Version").SetInt(version)
	return &c
}

func mustCommit(t *testing.T, s jobs.Store, c *jobs.Change) {
	t.Helper()
	if err := s.Commit(t.Context(), c); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func commitConflict(t *testing.T, s jobs.Store, c *jobs.Change) {
	t.Helper()
	if err := s.Commit(t.Context(), c); !errors.Is(err, jobs.ErrConflict) {
		t.Fatalf("Commit: err = %v, want ErrConflict", err)
	}
}

func must[T any](t *testing.T, what string, v T, err error) T {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func mustJob(t *testing.T, s jobs.Store, id int64) *jobs.Job {
	t.Helper()
	j, err := s.Job(t.Context(), id)
	return must(t, fmt.Sprintf("Job %d", id), j, err)
}

func mustRunner(t *testing.T, s jobs.Store, name string) *jobs.Runner {
	t.Helper()
	r, err := s.Runner(t.Context(), name)
	return must(t, "Runner "+name, r, err)
}

func mustRun(t *testing.T, s jobs.Store, id int64) *jobs.Run {
	t.Helper()
	r, err := s.Run(t.Context(), id)
	return must(t, fmt.Sprintf("Run %d", id), r, err)
}

func mustProfile(t *testing.T, s jobs.Store, repo string) *jobs.Profile {
	t.Helper()
	p, err := s.Profile(t.Context(), repo)
	return must(t, "Profile "+repo, p, err)
}

func mustIdle(t *testing.T, s jobs.Store, pool string, limit int) []*jobs.Runner {
	t.Helper()
	return mustIdleAfter(t, s, pool, "", limit)
}

func mustIdleAfter(t *testing.T, s jobs.Store, pool, after string, limit int) []*jobs.Runner {
	t.Helper()
	rs, err := s.IdleRunners(t.Context(), pool, after, limit)
	return must(t, "IdleRunners "+pool, rs, err)
}

func mustPending(t *testing.T, s jobs.Store, pool string, limit int) []*jobs.Job {
	t.Helper()
	return mustPendingAfter(t, s, pool, "", limit)
}

func mustPendingAfter(t *testing.T, s jobs.Store, pool, after string, limit int) []*jobs.Job {
	t.Helper()
	js, err := s.PendingJobs(t.Context(), pool, after, limit)
	return must(t, "PendingJobs "+pool, js, err)
}

func checkJobAbsent(t *testing.T, s jobs.Store, id int64, what string) {
	t.Helper()
	if _, err := s.Job(t.Context(), id); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("%s was written (Job: err = %v, want ErrNotFound)", what, err)
	}
}

func runnerNames(rs []*jobs.Runner) []string {
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.Name
	}
	return names
}

func jobIDs(js []*jobs.Job) []int64 {
	ids := make([]int64, len(js))
	for i, j := range js {
		ids[i] = j.ID
	}
	return ids
}

func checkNames(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func checkIDs(t *testing.T, what string, got []int64, want ...int64) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// ourPools returns the pools whose names start with prefix: the store may hold others'.
func ourPools(t *testing.T, s jobs.Store, prefix string) []jobs.Pool {
	t.Helper()
	pools, err := s.Pools(t.Context())
	return slices.DeleteFunc(must(t, "Pools", pools, err), func(p jobs.Pool) bool { return !strings.HasPrefix(p.Name, prefix) })
}

func checkPools(t *testing.T, what string, got []jobs.Pool, want ...jobs.Pool) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d pools %+v, want %d %+v", what, len(got), got, len(want), want)
	}
	for i := range want {
		checkFields(t, fmt.Sprintf("%s[%d]", what, i), &got[i], &want[i])
	}
}

// checkFields compares two entities of the same struct type field by field, naming the
// fields that differ. Times must come back in UTC, truncated to the millisecond; an empty
// slice or map equals a nil one, since stores need not keep the difference.
func checkFields[T any](t *testing.T, what string, got, want *T) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: nothing, want %+v", what, *want)
	}
	g, w := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
	for i := range g.NumField() {
		field := what + ": " + g.Type().Field(i).Name
		gf, wf := g.Field(i), w.Field(i)
		if wt, ok := wf.Interface().(time.Time); ok {
			checkTime(t, field, gf.Interface().(time.Time), wt)
			continue
		}
		if isEmpty(gf) && isEmpty(wf) {
			continue
		}
		if !reflect.DeepEqual(gf.Interface(), wf.Interface()) {
			t.Errorf("%s = %#v, want %#v", field, gf.Interface(), wf.Interface())
		}
	}
}

func isEmpty(v reflect.Value) bool {
	return (v.Kind() == reflect.Slice || v.Kind() == reflect.Map) && v.Len() == 0
}

func checkTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	want = want.UTC().Truncate(time.Millisecond)
	if !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// newDelivery returns a delivery record in state received, not stored.
func newDelivery(event string, receivedAt time.Time) *delivery.Record {
	return &delivery.Record{
		Key:        delivery.Key{HookID: "123456", DeliveryID: newName("delivery")},
		Event:      event,
		Action:     "queued",
		Repository: "octo-org/octo-repo",
		ReceivedAt: receivedAt,
		Payload:    []byte(`{"action":"queued"}`),
		State:      delivery.Received,
	}
}

func mustCreate(t *testing.T, s delivery.Store, rec *delivery.Record) {
	t.Helper()
	existing, err := s.Create(t.Context(), rec)
	if err != nil || existing != nil {
		t.Fatalf("Create of a new delivery: existing %v, err %v", existing, err)
	}
}

// mustCreateDelivery records a workflow_job delivery in state received.
func mustCreateDelivery(t *testing.T, s delivery.Store, receivedAt time.Time) *delivery.Record {
	t.Helper()
	rec := newDelivery("workflow_job", receivedAt)
	mustCreate(t, s, rec)
	return rec
}

func mustGetDelivery(t *testing.T, s delivery.Store, key delivery.Key) *delivery.Record {
	t.Helper()
	rec, err := s.Get(t.Context(), key)
	return must(t, "Get delivery "+key.DeliveryID, rec, err)
}

// CommitFinish finishes rec as the processor does, with a Commit of its Finish alone; s
// must also be a jobs.Store. It is the deliverytest.Finish of every adapter.
func CommitFinish(t *testing.T, s delivery.Store, rec *delivery.Record, state delivery.State, outcome string, at time.Time) {
	t.Helper()
	js, ok := s.(jobs.Store)
	if !ok {
		t.Fatalf("CommitFinish: %T is no jobs.Store", s)
	}
	fin := finishOf(rec, state, outcome)
	fin.At = at
	mustCommit(t, js, &jobs.Change{Finish: fin})
}

// StartOne starts one runner with Engine.StartRunners, as the provisioner does, and
// returns it as committed, or why it was not started: StartRunners' error, or the
// refusal of spec.
func StartOne(ctx context.Context, e *jobs.Engine, spec jobs.StartSpec, now time.Time) (*jobs.Runner, error) {
	started, _, err := e.StartRunners(ctx, []jobs.StartSpec{spec}, now)
	if err != nil {
		return nil, err
	}
	return started[0].Runner, started[0].Err
}

// finishOf is the Finish of rec a processor puts in its Change.
func finishOf(rec *delivery.Record, state delivery.State, outcome string) *jobs.Finish {
	return &jobs.Finish{Key: rec.Key, Event: rec.Event, State: state, Outcome: outcome,
		At: time.Now().In(zone), ReceivedAt: rec.ReceivedAt}
}

// checkFinished checks the delivery store has rec finished as fin says.
func checkFinished(t *testing.T, s delivery.Store, rec *delivery.Record, fin *jobs.Finish) {
	t.Helper()
	got := mustGetDelivery(t, s, rec.Key)
	if got.State != fin.State || got.Outcome != fin.Outcome {
		t.Errorf("delivery: state %q, outcome %q; want %q, %q", got.State, got.Outcome, fin.State, fin.Outcome)
	}
	checkTime(t, "delivery: ProcessedAt", got.ProcessedAt, fin.At)
}
