package awsstore

import (
	"fmt"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/testenv"
)

// A table written before the counts existed (entities, no counts), or whose counts are
// off, is rebuilt by a recount: SetPoolCounts replaces every shard of each pool.
func TestSetPoolCountsRebuildsFromARecount(t *testing.T) {
	t.Parallel()
	env := testenv.SharedAWS(t)
	store := newStore(env, env.DynamoDB())
	ctx := t.Context()
	at := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	old := &jobs.Change{Runners: []*jobs.Runner{
		{Name: "l-1", Pool: "linux", State: jobs.RunnerIdle, LastSeen: at},
		{Name: "l-2", Pool: "linux", State: jobs.RunnerStarting, LastSeen: at},
		{Name: "g-1", Pool: "gpu", State: jobs.RunnerBusy, JobID: 8, LastSeen: at},
	}}
	for i := range 3 {
		old.Jobs = append(old.Jobs, &jobs.Job{ID: int64(i + 1), Pool: "gpu", Status: jobs.StatusQueued, QueuedAt: at,
			Allocation: jobs.AllocationPending, QueueKey: jobs.RankKey(at, int64(i+1))})
	}
	if err := store.Commit(ctx, old); err != nil {
		t.Fatal(err)
	}
	// Counts that are off, in several shards: all of them must go.
	for range 3 {
		if err := store.Commit(ctx, &jobs.Change{Counts: []jobs.PoolCounts{{Pool: "linux", Busy: 5}, {Pool: "arm", Idle: 2}}}); err != nil {
			t.Fatal(err)
		}
	}
	e := &jobs.Engine{Store: store, Pools: []jobs.Pool{{Name: "linux"}, {Name: "gpu"}, {Name: "arm"}}}
	counts, err := e.Recount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetPoolCounts(ctx, counts); err != nil {
		t.Fatal(err)
	}
	want := []jobs.PoolCounts{{Pool: "arm"}, {Pool: "gpu", Busy: 1, Pending: 3}, {Pool: "linux", Idle: 1, Starting: 1}}
	got, err := store.PoolCounts(ctx, []string{"arm", "gpu", "linux"})
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("counts after the rebuild: %+v, %v; want %+v", got, err, want)
	}
}
