package metrics

import (
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/jobs"
)

// github_job_queue_duration_seconds runs from GitHub's created_at to started_at, once per
// job, by the pool that ran it.
func TestQueueDurationPerPoolAndRepository(t *testing.T) {
	for _, tc := range []struct {
		name      string
		from      jobs.Status
		job       jobs.Job
		pool      string
		wantCount uint64
		wantSum   float64
	}{
		{"started in a pool", jobs.StatusQueued, jobs.Job{Status: jobs.StatusInProgress, Pool: "linux", CreatedAt: t0, QueuedAt: t0.Add(5 * time.Second), StartedAt: t0.Add(95 * time.Second)}, "linux", 1, 95},
		{"first seen completed", "", jobs.Job{Status: jobs.StatusCompleted, Pool: "linux", CreatedAt: t0, StartedAt: t0.Add(40 * time.Second), CompletedAt: t0.Add(time.Minute)}, "linux", 1, 40},
		{"unmanaged runner", jobs.StatusQueued, jobs.Job{Status: jobs.StatusInProgress, CreatedAt: t0, StartedAt: t0.Add(time.Second)}, "none", 1, 1},
		{"completed after started: counted already", jobs.StatusInProgress, jobs.Job{Status: jobs.StatusCompleted, Pool: "linux", CreatedAt: t0, StartedAt: t0.Add(time.Second), CompletedAt: t0.Add(time.Minute)}, "linux", 0, 0},
		{"no created_at", jobs.StatusQueued, jobs.Job{Status: jobs.StatusInProgress, Pool: "linux", StartedAt: t0}, "linux", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New()
			apply(m, "octo/api", tc.from, tc.job)
			var count uint64
			var sum float64
			families, err := m.Registry.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range families {
				if f.GetName() != "github_job_queue_duration_seconds" {
					continue
				}
				for _, mt := range f.GetMetric() {
					labels := map[string]string{}
					for _, l := range mt.GetLabel() {
						labels[l.GetName()] = l.GetValue()
					}
					if labels["pool"] == tc.pool && labels["repository"] == "octo/api" {
						count, sum = mt.GetHistogram().GetSampleCount(), mt.GetHistogram().GetSampleSum()
					}
				}
			}
			if count != tc.wantCount || sum != tc.wantSum {
				t.Fatalf("count %d sum %v, want %d and %v", count, sum, tc.wantCount, tc.wantSum)
			}
		})
	}
}
