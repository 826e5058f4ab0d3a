package embedded_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/jobs/jobstest"
	"github.com/runnerhub/webhooks/internal/storage/embedded"
	bolt "go.etcd.io/bbolt"
)

// A database written before the pool counts existed has runners and pending jobs but no
// counts: opening it counts them once, and later commits add to that.
func TestOpenRecountsPoolsOfAnOlderDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runnerhub.db")
	db, err := embedded.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	// What an older build wrote: the entities, no counts.
	old := &jobs.Change{Runners: []*jobs.Runner{
		{Name: "l-1", Pool: "linux", State: jobs.RunnerIdle, LastSeen: at},
		{Name: "l-2", Pool: "linux", State: jobs.RunnerBusy, JobID: 9, LastSeen: at},
		{Name: "g-1", Pool: "gpu", State: jobs.RunnerReserved, JobID: 8, LastSeen: at},
	}}
	for i := range 3 {
		old.Jobs = append(old.Jobs, &jobs.Job{ID: int64(i + 1), Pool: "linux", Status: jobs.StatusQueued, QueuedAt: at,
			Allocation: jobs.AllocationPending, QueueKey: jobs.RankKey(at, int64(i+1))})
	}
	old.Jobs = append(old.Jobs, &jobs.Job{ID: 8, Pool: "gpu", Status: jobs.StatusQueued, Allocation: jobs.AllocationReserved, ReservedRunner: "g-1"})
	if err := db.Store().Commit(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("poolCounts")) }); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	db, err = embedded.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	want := []jobs.PoolCounts{{Pool: "gpu", Reserved: 1}, {Pool: "linux", Idle: 1, Busy: 1, Pending: 3}, {Pool: "arm"}}
	counts, err := db.Store().PoolCounts(t.Context(), []string{"gpu", "linux", "arm"})
	if err != nil || fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("counts after reopening: %+v, %v; want %+v", counts, err, want)
	}
	// Counted once: a commit adds to the recount, and reopening counts nothing again.
	if err := db.Store().Commit(t.Context(), jobstest.CountNew(t, &jobs.Change{Runners: []*jobs.Runner{{Name: "l-3", Pool: "linux", State: jobs.RunnerIdle}}})); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err = embedded.Open(path); err != nil {
		t.Fatal(err)
	}
	want[1].Idle = 2
	counts, err = db.Store().PoolCounts(t.Context(), []string{"gpu", "linux", "arm"})
	if err != nil || fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("counts after a commit and another reopening: %+v, %v; want %+v", counts, err, want)
	}
}
