package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/processing"
)

// statusError is webhook_events_total's status for a failed processing attempt; the
// applied ones count under the delivery's final state (processed, ignored).
const statusError = "error"

// Both sinks hear of commits from the engine (jobs.Subscriber) and of failed attempts
// from the processor (processing.Observer).
var (
	_ jobs.Subscriber     = (*Metrics)(nil)
	_ jobs.Subscriber     = (*EMF)(nil)
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

// conflictLabel is webhook_processing_conflicts_total's event: the delivery's event, or
// the fleet operation.
func conflictLabel(c *jobs.Commit) string {
	if c.Delivery != nil {
		return or(c.Delivery.Event, "unknown")
	}
	return string(c.Operation)
}

// conflictsOf returns how many conflicts a failed attempt met before it gave up (0 when
// it failed for another reason).
func conflictsOf(err error) int {
	var ce *jobs.ConflictError
	if errors.As(err, &ce) {
		return ce.Conflicts
	}
	return 0
}

// Committed implements jobs.Subscriber: a delivery's count and processing time, the job
// figures it adds, and the conflicts any commit met on the way.
func (m *Metrics) Committed(_ context.Context, c *jobs.Commit) {
	if c.Conflicts > 0 {
		m.conflicts.WithLabelValues(conflictLabel(c)).Add(float64(c.Conflicts))
	}
	if c.Delivery == nil {
		return
	}
	event := or(c.Delivery.Event, "unknown")
	m.events.WithLabelValues(event, string(c.State)).Inc()
	m.processTime.WithLabelValues(event).Observe(c.Elapsed.Seconds())
	f, ok := figuresOf(c.Plan)
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

// Failed implements processing.Observer. An attempt that ran out of time re-planning
// conflicts is counted as conflicts, not as an error.
func (m *Metrics) Failed(rec *delivery.Record, err error, elapsed time.Duration) {
	event := or(rec.Event, "unknown")
	if n := conflictsOf(err); n > 0 {
		m.conflicts.WithLabelValues(event).Add(float64(n))
	} else {
		m.events.WithLabelValues(event, statusError).Inc()
	}
	m.processTime.WithLabelValues(event).Observe(elapsed.Seconds())
}

// Committed implements jobs.Subscriber with one EMF line per delivery: its count and
// processing time, the job figures it adds and its conflicts, each metric with its
// Prometheus labels as dimensions. A fleet operation writes a line only when it met
// conflicts.
func (e *EMF) Committed(_ context.Context, c *jobs.Commit) {
	if c.Delivery == nil {
		if c.Conflicts > 0 {
			line := e.newLine()
			e.conflicted(line, conflictLabel(c), c.Conflicts)
			e.write(line)
		}
		return
	}
	line := e.processed(c.Delivery, string(c.State), c.Elapsed)
	if c.Conflicts > 0 {
		e.conflicted(line, conflictLabel(c), c.Conflicts)
	}
	f, ok := figuresOf(c.Plan)
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

// Failed implements processing.Observer with one EMF line: an error, or the conflicts of
// an attempt that ran out of time re-planning them.
func (e *EMF) Failed(rec *delivery.Record, err error, elapsed time.Duration) {
	n := conflictsOf(err)
	if n == 0 {
		e.write(e.processed(rec, statusError, elapsed))
		return
	}
	line := e.newLine()
	line.set("deliveryId", rec.DeliveryID)
	e.conflicted(line, or(rec.Event, "unknown"), n)
	e.write(line)
}

// conflicted adds webhook_processing_conflicts_total{event} = n to the line. The line's
// event property is the same value wherever both are set.
func (e *EMF) conflicted(line *emfLine, event string, n int) {
	line.set("event", event)
	line.fields["webhook_processing_conflicts_total"] = n
	line.directive([]string{"event"}, emfMetric{Name: "webhook_processing_conflicts_total", Unit: "Count"})
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
