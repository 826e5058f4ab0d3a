package embedded_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/delivery/deliverytest"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/storage/embedded"
	"github.com/runnerhub/webhooks/internal/storage/storagetest"
	"github.com/runnerhub/webhooks/internal/testenv"
)

func TestConformance(t *testing.T) {
	storagetest.Conformance(t, func(t *testing.T) storagetest.Store { return testenv.Embedded(t).Store() })
}

func TestQueueConformance(t *testing.T) {
	deliverytest.QueueSuite(t, func(t *testing.T) (delivery.Queue, func(context.Context) []delivery.Message) {
		q := testenv.Embedded(t).Queue(3)
		return q, func(ctx context.Context) []delivery.Message { return testenv.DrainEmbedded(ctx, q) }
	})
}

// openAt opens the database at path. The test closes it: a restart closes it and opens
// path again.
func openAt(t *testing.T, path string) *embedded.DB {
	t.Helper()
	db, err := embedded.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// accept records delivery id and queues it, as ingest does.
func accept(t *testing.T, s *embedded.Store, q *embedded.Queue, id string) {
	t.Helper()
	if _, err := s.Create(context.Background(), record(id)); err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(context.Background(), msg(id)); err != nil {
		t.Fatal(err)
	}
}

// poisoned is a queue giving up on a delivery after maxAttempts, and the delivery
// "poison" accepted and failed on each of them with "cannot parse": dead-lettered.
func poisoned(t *testing.T, maxAttempts int) *embedded.Queue {
	t.Helper()
	db := testenv.Embedded(t)
	q := db.Queue(maxAttempts)
	accept(t, db.Store(), q, "poison")
	for attempt := range maxAttempts {
		items, err := q.Receive(context.Background(), 1)
		if err != nil || len(items) != 1 || items[0].Attempts != attempt {
			t.Fatalf("attempt %d: %+v %v", attempt, items, err)
		}
		if err := q.Nack(items[0].ID, errors.New("cannot parse")); err != nil {
			t.Fatal(err)
		}
	}
	return q
}

func msg(id string) delivery.Message {
	return delivery.Message{Key: delivery.Key{HookID: "1", DeliveryID: id}, Event: "push"}
}

func record(id string) *delivery.Record {
	return &delivery.Record{Key: delivery.Key{HookID: "1", DeliveryID: id}, Event: "push",
		ReceivedAt: time.Now(), Payload: []byte(`{}`), State: delivery.Received}
}

// Whatever was recorded and not finished when the process stopped — queued, or taken by
// the consumer but not done — is queued again after the next start; finished ones are not.
func TestUnfinishedDeliveriesAreRecoveredAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runnerhub.db")
	db := openAt(t, path)
	ctx := context.Background()
	store, q := db.Store(), db.Queue(3)
	for _, id := range []string{"a", "b", "c"} {
		accept(t, store, q, id)
	}
	items, err := q.Receive(ctx, 2)
	if err != nil || len(items) != 2 {
		t.Fatalf("receive: %v %v", items, err)
	}
	// "a" is finished; "b" is taken but the process dies before it finishes.
	if err := store.Commit(ctx, &jobs.Change{Finish: &jobs.Finish{Key: items[0].Key, State: delivery.Processed, Outcome: "done", At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	q.Ack(items[0].ID)
	db.Close()

	db = openAt(t, path)
	defer db.Close()
	q = db.Queue(3)
	if n, err := q.Recover(); err != nil || n != 2 {
		t.Fatalf("recovered %d, %v", n, err)
	}
	items, err = q.Receive(ctx, 10)
	if err != nil || len(items) != 2 || items[0].DeliveryID != "b" || items[1].DeliveryID != "c" {
		t.Fatalf("after restart: %+v %v", items, err)
	}
	if pending, _, _ := q.Depth(); pending != 2 {
		t.Fatalf("pending %d, want 2", pending)
	}
}

func TestQueueDeadLettersAfterMaxAttempts(t *testing.T) {
	q := poisoned(t, 2)
	pending, dead, err := q.Depth()
	if err != nil || pending != 0 || dead != 1 {
		t.Fatalf("depth pending=%d dead=%d %v", pending, dead, err)
	}
	if n, _ := q.Recover(); n != 0 {
		t.Fatal("a dead-lettered delivery would be retried at the next start")
	}
	letters, err := q.DeadLetters()
	if err != nil || len(letters) != 1 || letters[0].DeliveryID != "poison" || letters[0].LastError != "cannot parse" || letters[0].Attempts != 2 {
		t.Fatalf("dead letters %+v %v", letters, err)
	}
}

func TestReceiveWaitsForEnqueue(t *testing.T) {
	q := testenv.Embedded(t).Queue(3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(chan []embedded.Item, 1)
	go func() {
		items, _ := q.Receive(ctx, 10)
		got <- items
	}()
	time.Sleep(20 * time.Millisecond)
	if err := q.Enqueue(ctx, msg("late")); err != nil {
		t.Fatal(err)
	}
	if items := <-got; len(items) != 1 || items[0].DeliveryID != "late" {
		t.Fatalf("got %+v", items)
	}
}

func TestReplayDeadLetters(t *testing.T) {
	q := poisoned(t, 1)
	if n, err := q.ReplayDeadLetters(); err != nil || n != 1 {
		t.Fatalf("replayed %d, %v", n, err)
	}
	pending, dead, _ := q.Depth()
	items, _ := q.Receive(context.Background(), 1)
	if pending != 1 || dead != 0 || len(items) != 1 || items[0].DeliveryID != "poison" || items[0].Attempts != 0 {
		t.Fatalf("after replay: pending %d dead %d items %+v", pending, dead, items)
	}
}

// Job state, its indexes and the counters are in the file, not in memory.
func TestJobStateSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runnerhub.db")
	db := openAt(t, path)
	ctx := context.Background()
	rec := record("restart")
	if _, err := db.Store().Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	job := &jobs.Job{ID: 42, Pool: "linux", Status: jobs.StatusQueued, Allocation: jobs.AllocationPending,
		QueueKey: jobs.RankKey(time.Now(), 42)}
	runner := &jobs.Runner{Name: "runner-1", Pool: "linux", State: jobs.RunnerIdle}
	fin := &jobs.Finish{Key: rec.Key, Event: rec.Event, State: delivery.Processed, At: time.Now(), ReceivedAt: rec.ReceivedAt}
	if err := db.Store().Commit(ctx, &jobs.Change{Jobs: []*jobs.Job{job}, Runners: []*jobs.Runner{runner}, Finish: fin}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db = openAt(t, path)
	defer db.Close()
	s := db.Store()
	if pending, err := s.PendingJobs(ctx, "linux", "", 10); err != nil || len(pending) != 1 || pending[0].ID != 42 {
		t.Fatalf("pending after restart: %+v %v", pending, err)
	}
	if idle, err := s.IdleRunners(ctx, "linux", "", 10); err != nil || len(idle) != 1 || idle[0].Name != "runner-1" {
		t.Fatalf("idle after restart: %+v %v", idle, err)
	}
	hour := delivery.Hour(rec.ReceivedAt)
	counts, err := s.HourlyCounts(ctx, hour, hour.Add(time.Hour))
	if err != nil || len(counts) != 1 || counts[0].Total != 1 || counts[0].Processed != 1 {
		t.Fatalf("counters after restart: %+v %v", counts, err)
	}
	if n, _ := db.Queue(3).Recover(); n != 0 {
		t.Fatalf("%d deliveries queued again after restart, want 0: the Commit finished the only one", n)
	}
}

// A conflicting Commit rolls back the batch it shares with other writes, which bbolt then
// runs again: each of them must still apply exactly once.
func TestBatchRetriesApplyOnce(t *testing.T) {
	ctx := context.Background()
	s := testenv.Embedded(t).Store()
	runner := &jobs.Runner{Name: "contended", State: jobs.RunnerIdle}
	if err := s.Commit(ctx, &jobs.Change{Runners: []*jobs.Runner{runner}}); err != nil {
		t.Fatal(err)
	}
	const n = 16
	receivedAt := time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Created again at version 0: a conflict, whatever batch it lands in.
			err := s.Commit(ctx, &jobs.Change{Runners: []*jobs.Runner{{Name: "contended", State: jobs.RunnerBusy}}})
			if !errors.Is(err, jobs.ErrConflict) {
				t.Errorf("Commit of a stale runner: %v, want ErrConflict", err)
			}
		})
		wg.Go(func() {
			if err := s.CountError(ctx, "workflow_job", receivedAt); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			if err := s.Commit(ctx, &jobs.Change{Jobs: []*jobs.Job{{ID: int64(i + 1), Status: jobs.StatusQueued}}}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	counts, err := s.HourlyCounts(ctx, delivery.Hour(receivedAt), delivery.Hour(receivedAt).Add(time.Hour))
	if err != nil || len(counts) != 1 || counts[0].Errors != n {
		t.Fatalf("errors counted: %+v %v, want %d", counts, err, n)
	}
	for i := range n {
		if j, err := s.Job(ctx, int64(i+1)); err != nil || j.Version != 1 {
			t.Fatalf("job %d: %+v %v, want version 1", i+1, j, err)
		}
	}
	if r, err := s.Runner(ctx, "contended"); err != nil || r.Version != 1 || r.State != jobs.RunnerIdle {
		t.Fatalf("runner: %+v %v, want idle at version 1", r, err)
	}
}

// A failed message comes back after a pause, not at once.
func TestNackBacksOff(t *testing.T) {
	q := testenv.Embedded(t).Queue(3)
	ctx := context.Background()
	if err := q.Enqueue(ctx, msg("flaky")); err != nil {
		t.Fatal(err)
	}
	items, _ := q.Receive(ctx, 1)
	if err := q.Nack(items[0].ID, errors.New("locked")); err != nil {
		t.Fatal(err)
	}
	soon, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if items, err := q.Receive(soon, 1); err == nil {
		t.Fatalf("retried at once: %+v", items)
	}
	later, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if items, err := q.Receive(later, 1); err != nil || items[0].Attempts != 1 {
		t.Fatalf("not retried after the pause: %+v %v", items, err)
	}
}
