package jobs_test

import (
	"slices"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/jobs"
)

func TestStaleDemands(t *testing.T) {
	e := newEngine(t)
	now := t0.Add(time.Hour)
	pending(t, e, 1, "linux", now.Add(-30*time.Minute), 0)
	pending(t, e, 2, "linux", now.Add(-5*time.Minute), 0)       // not waiting long enough
	pending(t, e, 3, "linux", now.Add(-20*time.Minute), 100)    // ahead of 1 in the queue
	pending(t, e, 4, "gpu", now.Add(-10*time.Minute), 0, "gpu") // exactly the threshold
	commit(t, e, &jobs.Change{Jobs: []*jobs.Job{{ID: 5, Repository: "octo/repo", Labels: []string{"linux"},
		Status: jobs.StatusQueued, Pool: "linux", Allocation: jobs.AllocationReserved, QueuedAt: t0}}}) // has a runner

	got, err := e.StaleDemands(t.Context(), now, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, d := range got {
		ids = append(ids, d.JobID)
		if !d.Resent || !d.At.Equal(now) || d.Repository != "octo/repo" || len(d.Labels) == 0 {
			t.Errorf("demand %+v: want resent at %v with the job's repository and labels", d, now)
		}
		if want := map[int64]string{1: "linux", 3: "linux", 4: "gpu"}[d.JobID]; d.Pool != want {
			t.Errorf("job %d: pool %q, want %q", d.JobID, d.Pool, want)
		}
	}
	// Pools by name (gpu, linux), each in queue order.
	if !slices.Equal(ids, []int64{4, 3, 1}) {
		t.Fatalf("demands for jobs %v, want [4 3 1]", ids)
	}
	if got, _ := e.StaleDemands(t.Context(), now, time.Hour); len(got) != 0 {
		t.Fatalf("nothing has waited an hour, got %+v", got)
	}
}
