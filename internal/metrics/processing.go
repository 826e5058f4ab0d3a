package metrics

import (
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/processing"
)

// statusError is webhook_events_total's status for a failed processing attempt; the
// applied ones count under the delivery's final state (processed, ignored).
const statusError = "error"

var (
	_ processing.Observer = (*Metrics)(nil)
	_ processing.Observer = (*EMF)(nil)
)

// jobFigures is what one applied delivery adds to the job metrics.
type jobFigures struct {
	repository string
	queued     bool // the job reached queued, or later, for the first time
	completed  bool
	conclusion string
	// wait (queued to started) is set when the job just started, run (started to
	// completed) when it just completed, each only when both times are known.
	wait, run *float64
	// queue is GitHub's created_at to started_at, set with wait, in pool (the one that
	// ran it, "none" for an unmanaged runner's job).
	queue *float64
	pool  string
}

// figuresOf derives the job metrics from the transition a plan made, if any. A job's
// status only moves forward and a plan is applied once, so each job counts once as
// queued and once as completed, whatever order GitHub's events came in.
func figuresOf(plan *jobs.Plan) (jobFigures, bool) {
	tr := plan.Advanced
	if tr == nil {
		return jobFigures{}, false
	}
	j := tr.Job
	reached := func(s jobs.Status) bool { return tr.From.Rank() < s.Rank() && j.Status.Rank() >= s.Rank() }
	f := jobFigures{
		repository: or(j.Repository, "unknown"),
		queued:     reached(jobs.StatusQueued),
		completed:  reached(jobs.StatusCompleted),
		conclusion: or(j.Conclusion, "unknown"),
	}
	if reached(jobs.StatusInProgress) && !j.QueuedAt.IsZero() && !j.StartedAt.IsZero() {
		f.wait = ptr(j.WaitSeconds())
	}
	if reached(jobs.StatusInProgress) && !j.CreatedAt.IsZero() && !j.StartedAt.IsZero() && !j.StartedAt.Before(j.CreatedAt) {
		f.queue, f.pool = ptr(j.StartedAt.Sub(j.CreatedAt).Seconds()), or(j.Pool, "none")
	}
	if f.completed && !j.StartedAt.IsZero() && !j.CompletedAt.IsZero() {
		f.run = ptr(j.RunSeconds())
	}
	return f, true
}

// Applied implements processing.Observer.
func (m *Metrics) Applied(rec *delivery.Record, plan *jobs.Plan, elapsed time.Duration) {
	event := or(rec.Event, "unknown")
	m.events.WithLabelValues(event, string(plan.State)).Inc()
	m.processTime.WithLabelValues(event).Observe(elapsed.Seconds())
	f, ok := figuresOf(plan)
	if !ok {
		return
	}
	if f.queued {
		m.jobsQueued.WithLabelValues(f.repository).Inc()
	}
	if f.completed {
		m.jobsCompleted.WithLabelValues(f.repository, f.conclusion).Inc()
	}
	if f.wait != nil {
		m.jobWait.WithLabelValues(f.repository).Observe(*f.wait)
	}
	if f.run != nil {
		m.jobDuration.WithLabelValues(f.repository).Observe(*f.run)
	}
	if f.queue != nil {
		m.jobQueue.WithLabelValues(f.pool, f.repository).Observe(*f.queue)
	}
}

// Failed implements processing.Observer.
func (m *Metrics) Failed(rec *delivery.Record, _ error, elapsed time.Duration) {
	event := or(rec.Event, "unknown")
	m.events.WithLabelValues(event, statusError).Inc()
	m.processTime.WithLabelValues(event).Observe(elapsed.Seconds())
}

// Applied implements processing.Observer with one EMF line: the delivery's count and
// processing time, and the job figures it adds, each metric with its Prometheus labels
// as dimensions.
func (e *EMF) Applied(rec *delivery.Record, plan *jobs.Plan, elapsed time.Duration) {
	line := e.processed(rec, string(plan.State), elapsed)
	f, ok := figuresOf(plan)
	if !ok {
		e.write(line)
		return
	}
	line.set("repository", f.repository)
	var byRepo []emfMetric
	if f.queued {
		byRepo = append(byRepo, line.count("github_jobs_queued_total"))
	}
	if f.wait != nil {
		byRepo = append(byRepo, line.seconds("github_job_wait_seconds", *f.wait))
	}
	if f.run != nil {
		byRepo = append(byRepo, line.seconds("github_job_duration_seconds", *f.run))
	}
	line.directive([]string{"repository"}, byRepo...)
	if f.queue != nil {
		line.set("pool", f.pool)
		line.directive([]string{"pool", "repository"}, line.seconds("github_job_queue_duration_seconds", *f.queue))
	}
	if f.completed {
		line.set("conclusion", f.conclusion)
		line.directive([]string{"repository", "conclusion"}, line.count("github_jobs_completed_total"))
	}
	e.write(line)
}

// Failed implements processing.Observer with one EMF line.
func (e *EMF) Failed(rec *delivery.Record, _ error, elapsed time.Duration) {
	e.write(e.processed(rec, statusError, elapsed))
}

// processed starts a processing line: webhook_events_total{event,status} and
// webhook_processing_duration_seconds{event}.
func (e *EMF) processed(rec *delivery.Record, status string, elapsed time.Duration) *emfLine {
	line := e.newLine()
	line.set("event", or(rec.Event, "unknown"))
	line.set("status", status)
	line.set("deliveryId", rec.DeliveryID) // not a dimension: for finding the line in the logs
	line.directive([]string{"event", "status"}, line.count("webhook_events_total"))
	line.directive([]string{"event"}, line.seconds("webhook_processing_duration_seconds", elapsed.Seconds()))
	return line
}

func or(v, fallback string) string {
	if v == "" {
		return fallback
	}
	return v
}

func ptr[T any](v T) *T { return &v }
