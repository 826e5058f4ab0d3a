package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/processing"
)

var t0 = time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)

// rec is the workflow_job delivery every test applies.
var rec = &delivery.Record{Event: "workflow_job", Key: delivery.Key{DeliveryID: "d-1"}}

// sink hears of commits and of failed attempts: Metrics and EMF.
type sink interface {
	jobs.Subscriber
	processing.Observer
}

// apply tells o that rec moved a job of repo from `from` to the job's status.
func apply(o sink, repo string, from jobs.Status, job jobs.Job) {
	job.Repository = repo
	o.Committed(context.Background(), &jobs.Commit{Operation: jobs.OpDelivery, Delivery: rec, Elapsed: 10 * time.Millisecond,
		Plan: &jobs.Plan{State: delivery.Processed, Advanced: &jobs.Transition{Job: &job, From: from}}})
}

// figure is a series' value as a test read it, and the value it should have.
type figure struct {
	what      string
	got, want float64
}

func checkFigures(t *testing.T, figures []figure) {
	t.Helper()
	for _, f := range figures {
		if f.got != f.want {
			t.Errorf("%s = %v, want %v", f.what, f.got, f.want)
		}
	}
}

func TestJobMetricsCountEachTransitionOnce(t *testing.T) {
	m := New()
	steps := []struct {
		from jobs.Status
		job  jobs.Job
	}{
		// Job 1 in order: queued, started after 30 s, completed 2 minutes later.
		{"", jobs.Job{Status: jobs.StatusQueued, QueuedAt: t0}},
		{jobs.StatusQueued, jobs.Job{Status: jobs.StatusInProgress, QueuedAt: t0, StartedAt: t0.Add(30 * time.Second)}},
		{jobs.StatusInProgress, jobs.Job{Status: jobs.StatusCompleted, Conclusion: "success", QueuedAt: t0,
			StartedAt: t0.Add(30 * time.Second), CompletedAt: t0.Add(150 * time.Second)}},
		// Job 2 first seen completed (its queued event comes late and changes nothing):
		// queued and completed at once, never started.
		{"", jobs.Job{Status: jobs.StatusCompleted, Conclusion: "cancelled", QueuedAt: t0}},
		// Job 3 waiting: no job metric.
		{"", jobs.Job{Status: jobs.StatusWaiting}},
	}
	for _, s := range steps {
		apply(m, "octo/api", s.from, s.job)
	}
	// no transition: a late event
	m.Committed(context.Background(), &jobs.Commit{Operation: jobs.OpDelivery, Delivery: rec, Plan: &jobs.Plan{State: delivery.Ignored}})
	m.Failed(rec, errors.New("store down"), time.Second)

	checkFigures(t, []figure{
		{"queued", testutil.ToFloat64(m.jobsQueued.WithLabelValues("octo/api")), 2},
		{"completed success", testutil.ToFloat64(m.jobsCompleted.WithLabelValues("octo/api", "success")), 1},
		{"completed cancelled", testutil.ToFloat64(m.jobsCompleted.WithLabelValues("octo/api", "cancelled")), 1},
		{"processed", testutil.ToFloat64(m.events.WithLabelValues("workflow_job", "processed")), 5},
		{"ignored", testutil.ToFloat64(m.events.WithLabelValues("workflow_job", "ignored")), 1},
		{"error", testutil.ToFloat64(m.events.WithLabelValues("workflow_job", "error")), 1},
	})
	// One wait (job 1's 30 s) and one run (its 120 s); job 2 never started.
	err := testutil.CollectAndCompare(m.jobWait, strings.NewReader(`
# HELP github_job_wait_seconds Time workflow jobs waited for a runner (queued to started).
# TYPE github_job_wait_seconds histogram
github_job_wait_seconds_bucket{repository="octo/api",le="1"} 0
github_job_wait_seconds_bucket{repository="octo/api",le="5"} 0
github_job_wait_seconds_bucket{repository="octo/api",le="15"} 0
github_job_wait_seconds_bucket{repository="octo/api",le="30"} 1
github_job_wait_seconds_bucket{repository="octo/api",le="60"} 1
github_job_wait_seconds_bucket{repository="octo/api",le="120"} 1
github_job_wait_seconds_bucket{repository="octo/api",le="300"} 1
github_job_wait_seconds_bucket{repository="octo/api",le="600"} 1
github_job_wait_seconds_bucket{repository="octo/api",le="1200"} 1
github_job_wait_seconds_bucket{repository="octo/api",le="1800"} 1
github_job_wait_seconds_bucket{repository="octo/api",le="3600"} 1
github_job_wait_seconds_bucket{repository="octo/api",le="7200"} 1
github_job_wait_seconds_bucket{repository="octo/api",le="14400"} 1
github_job_wait_seconds_bucket{repository="octo/api",le="21600"} 1
github_job_wait_seconds_bucket{repository="octo/api",le="+Inf"} 1
github_job_wait_seconds_sum{repository="octo/api"} 30
github_job_wait_seconds_count{repository="octo/api"} 1
`))
	if err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.jobDuration); n != 1 {
		t.Errorf("github_job_duration_seconds has %d series, want 1", n)
	}
	if n := testutil.CollectAndCount(m.processTime); n != 1 {
		t.Errorf("webhook_processing_duration_seconds has %d series, want 1", n)
	}
}

// emfLines decodes EMF output, checking that every declared metric and dimension is a
// property of its line, as CloudWatch requires.
func emfLines(t *testing.T, out []byte) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, raw := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		var line map[string]any
		if err := json.Unmarshal(raw, &line); err != nil {
			t.Fatalf("EMF line %s: %v", raw, err)
		}
		var meta struct {
			CloudWatchMetrics []emfDirective
		}
		b, _ := json.Marshal(line["_aws"])
		if err := json.Unmarshal(b, &meta); err != nil || len(meta.CloudWatchMetrics) == 0 {
			t.Fatalf("EMF line %s has no directives (%v)", raw, err)
		}
		for _, d := range meta.CloudWatchMetrics {
			for _, dims := range d.Dimensions {
				for _, dim := range dims {
					if _, ok := line[dim].(string); !ok {
						t.Errorf("EMF line %s: dimension %s is not a string property", raw, dim)
					}
				}
			}
			for _, m := range d.Metrics {
				if _, ok := line[m.Name].(float64); !ok {
					t.Errorf("EMF line %s: metric %s has no value", raw, m.Name)
				}
			}
		}
		lines = append(lines, line)
	}
	return lines
}

// declared lists "metric[dimensions]" of an EMF line.
func declared(line map[string]any) []string {
	var out []string
	for _, d := range line["_aws"].(map[string]any)["CloudWatchMetrics"].([]any) {
		d := d.(map[string]any)
		dims, _ := json.Marshal(d["Dimensions"])
		for _, m := range d["Metrics"].([]any) {
			out = append(out, m.(map[string]any)["Name"].(string)+string(dims))
		}
	}
	slices.Sort(out)
	return out
}

func TestEMFJobMetrics(t *testing.T) {
	var buf bytes.Buffer
	e := NewEMF(&buf, "RunnerHub")
	apply(e, "octo/web", jobs.StatusInProgress, jobs.Job{Status: jobs.StatusCompleted, Conclusion: "failure",
		StartedAt: t0, CompletedAt: t0.Add(90 * time.Second)})
	apply(e, "octo/web", "", jobs.Job{Status: jobs.StatusInProgress, QueuedAt: t0, StartedAt: t0.Add(5 * time.Second)})
	e.Failed(rec, errors.New("boom"), 20*time.Millisecond)

	lines := emfLines(t, buf.Bytes())
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), buf.String())
	}
	want := [][]string{
		{`github_job_duration_seconds[["repository"]]`, `github_jobs_completed_total[["repository","conclusion"]]`,
			`webhook_events_total[["event","status"]]`, `webhook_processing_duration_seconds[["event"]]`},
		{`github_job_wait_seconds[["repository"]]`, `github_jobs_queued_total[["repository"]]`,
			`webhook_events_total[["event","status"]]`, `webhook_processing_duration_seconds[["event"]]`},
		{`webhook_events_total[["event","status"]]`, `webhook_processing_duration_seconds[["event"]]`},
	}
	for i, line := range lines {
		if got := declared(line); !slices.Equal(got, want[i]) {
			t.Errorf("line %d declares %v, want %v", i, got, want[i])
		}
	}
	if l := lines[0]; l["conclusion"] != "failure" || l["repository"] != "octo/web" || l["github_job_duration_seconds"] != 90.0 ||
		l["status"] != "processed" || l["deliveryId"] != "d-1" {
		t.Errorf("completion line %v", l)
	}
	if l := lines[1]; l["github_job_wait_seconds"] != 5.0 || l["github_jobs_queued_total"] != 1.0 {
		t.Errorf("start line %v", l)
	}
	if l := lines[2]; l["status"] != "error" || l["webhook_processing_duration_seconds"] != 0.02 {
		t.Errorf("failure line %v", l)
	}
}

func TestSampledGauges(t *testing.T) {
	m := New()
	m.Log = slog.New(slog.DiscardHandler)
	m.WatchQueues(func(context.Context) (map[string]int, error) { return map[string]int{"events": 3, "dlq": 1}, nil })
	var poolErr error
	m.WatchPools(func(context.Context) ([]jobs.PoolStatus, error) {
		return []jobs.PoolStatus{{Pool: jobs.Pool{Name: "linux"}, Idle: 2, Busy: 1, Starting: 3, Offline: 1, PendingJobs: 4,
			OldestWait: 90 * time.Second, Demand: 2}}, poolErr
	})
	err := testutil.GatherAndCompare(m.Registry, strings.NewReader(`
# HELP runnerhub_pool_demand Runners a pool needs now: pending jobs plus minIdle less idle runners, within maxRunners.
# TYPE runnerhub_pool_demand gauge
runnerhub_pool_demand{pool="linux"} 2
# HELP runnerhub_pool_oldest_wait_seconds Wait of the job at the head of a pool's queue (the next served).
# TYPE runnerhub_pool_oldest_wait_seconds gauge
runnerhub_pool_oldest_wait_seconds{pool="linux"} 90
# HELP runnerhub_pool_pending_jobs Jobs waiting in a pool's queue for a runner.
# TYPE runnerhub_pool_pending_jobs gauge
runnerhub_pool_pending_jobs{pool="linux"} 4
# HELP runnerhub_pool_runners Runners of a pool by state (idle, reserved, busy, starting, offline: not seen lately).
# TYPE runnerhub_pool_runners gauge
runnerhub_pool_runners{pool="linux",state="busy"} 1
runnerhub_pool_runners{pool="linux",state="idle"} 2
runnerhub_pool_runners{pool="linux",state="offline"} 1
runnerhub_pool_runners{pool="linux",state="reserved"} 0
runnerhub_pool_runners{pool="linux",state="starting"} 3
# HELP webhook_queue_depth Deliveries in a queue (events: waiting or being processed; dlq: dead-lettered).
# TYPE webhook_queue_depth gauge
webhook_queue_depth{queue="dlq"} 1
webhook_queue_depth{queue="events"} 3
`), "runnerhub_pool_demand", "runnerhub_pool_oldest_wait_seconds", "runnerhub_pool_pending_jobs", "runnerhub_pool_runners", "webhook_queue_depth")
	if err != nil {
		t.Error(err)
	}

	// A store that cannot be read costs the pool gauges, not the scrape.
	poolErr = errors.New("store unavailable")
	h := m.Routes()[0].Handler
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `webhook_queue_depth{queue="events"} 3`) {
		t.Errorf("scrape with a failing sampler: %d\n%s", w.Code, w.Body)
	}
}

// A conflict is counted as such, never as an error: re-planned within the commit, or
// given up on when the attempt ran out of time; a fleet operation's under its name.
func TestConflictsAreNotErrors(t *testing.T) {
	var buf bytes.Buffer
	m, e := New(), NewEMF(&buf, "RunnerHub")
	gaveUp := fmt.Errorf("apply: %w", &jobs.ConflictError{Operation: jobs.OpDelivery, Conflicts: 4, Last: jobs.ErrConflict})
	for _, o := range []sink{m, e} {
		o.Committed(context.Background(), &jobs.Commit{Operation: jobs.OpDelivery, Delivery: rec, Conflicts: 2,
			Plan: &jobs.Plan{State: delivery.Processed}})
		o.Committed(context.Background(), &jobs.Commit{Operation: jobs.OpHeartbeat, Conflicts: 1, Plan: &jobs.Plan{}})
		o.Committed(context.Background(), &jobs.Commit{Operation: jobs.OpRegister, Plan: &jobs.Plan{}}) // no conflict: no line
		o.Failed(rec, gaveUp, time.Second)
	}
	checkFigures(t, []figure{
		{"workflow_job conflicts", testutil.ToFloat64(m.conflicts.WithLabelValues("workflow_job")), 6},
		{"heartbeat conflicts", testutil.ToFloat64(m.conflicts.WithLabelValues("runner.heartbeat")), 1},
		{"errors", testutil.ToFloat64(m.events.WithLabelValues("workflow_job", "error")), 0},
	})
	lines := emfLines(t, buf.Bytes())
	var conflicts float64
	for _, l := range lines {
		if l["status"] == "error" {
			t.Errorf("EMF line %v counts a conflict as an error", l)
		}
		if n, ok := l["webhook_processing_conflicts_total"].(float64); ok {
			conflicts += n
		}
	}
	if len(lines) != 3 || conflicts != 7 {
		t.Errorf("EMF: %d lines with %v conflicts, want 3 lines with 7:\n%s", len(lines), conflicts, buf.String())
	}
}
