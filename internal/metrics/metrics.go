// Package metrics holds RunnerHub's Prometheus metrics, named as in the product
// description (webhook_events_total{event,status}, webhook_processing_duration_seconds{event},
// github_jobs_queued_total{repository}, github_jobs_completed_total{repository,conclusion},
// github_job_duration_seconds{repository}), plus webhook_processing_conflicts_total{event},
// queue depth and pool gauges sampled at
// scrape time, and the same figures as CloudWatch Embedded Metric Format lines (EMF) for
// the Lambda functions.
package metrics

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/runnerhub/webhooks/internal/httpapi"
	"github.com/runnerhub/webhooks/internal/ingest"
)

// Metrics is one registry with every RunnerHub collector.
type Metrics struct {
	Registry *prometheus.Registry
	// Log, if set, receives what a scrape could not collect (see Routes).
	Log *slog.Logger

	events     *prometheus.CounterVec
	rejections *prometheus.CounterVec
	ingestTime *prometheus.HistogramVec

	processTime   *prometheus.HistogramVec
	conflicts     *prometheus.CounterVec
	jobsQueued    *prometheus.CounterVec
	jobsCompleted *prometheus.CounterVec
	jobDuration   *prometheus.HistogramVec
	jobWait       *prometheus.HistogramVec
	jobQueue      *prometheus.HistogramVec
}

var _ ingest.Metrics = (*Metrics)(nil)

// New registers the collectors in a fresh registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webhook_events_total",
			Help: "Webhook deliveries by event and status: at ingest accepted, requeued, duplicate, rejected or failed; once processed processed or ignored; error for a failed processing attempt.",
		}, []string{"event", "status"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webhook_rejections_total",
			Help: "Refused webhook requests by reason.",
		}, []string{"reason"}),
		ingestTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "webhook_ingest_duration_seconds",
			Help:    "Time to verify, record and queue a delivery.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"event"}),
		processTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "webhook_processing_duration_seconds",
			Help:    "Time to apply a queued delivery (read, plan, commit), failed attempts included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"event"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webhook_processing_conflicts_total",
			Help: "Plans that lost an optimistic-concurrency race and were planned again (no error), by delivery event or fleet operation (runner.register, runner.heartbeat, runner.remove).",
		}, []string{"event"}),
		jobsQueued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "github_jobs_queued_total",
			Help: "Workflow jobs that were queued (counted once per job, when first seen queued or later).",
		}, []string{"repository"}),
		jobsCompleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "github_jobs_completed_total",
			Help: "Workflow jobs that completed, by conclusion.",
		}, []string{"repository", "conclusion"}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "github_job_duration_seconds",
			Help:    "Run time of completed workflow jobs (started to completed).",
			Buckets: jobBuckets,
		}, []string{"repository"}),
		jobWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "github_job_wait_seconds",
			Help:    "Time workflow jobs waited for a runner (queued to started).",
			Buckets: jobBuckets,
		}, []string{"repository"}),
		jobQueue: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "github_job_queue_duration_seconds",
			Help:    "Time from a job's creation on GitHub (created_at) to its start (started_at), by the pool that ran it (ARC's gha_job_startup_duration_seconds).",
			Buckets: jobBuckets,
		}, []string{"pool", "repository"}),
	}
	m.Registry.MustRegister(m.events, m.rejections, m.ingestTime,
		m.processTime, m.conflicts, m.jobsQueued, m.jobsCompleted, m.jobDuration, m.jobWait, m.jobQueue,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// jobBuckets span a job's wait or run time: from a second to six hours (GitHub's limit).
var jobBuckets = []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 21600}

// Routes serves the registry on GET /metrics (authenticated: metrics name repositories).
// A gauge that cannot be sampled (the store is unreachable) is left out of the scrape
// rather than failing all of it.
func (m *Metrics) Routes() []httpapi.Route {
	opts := promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}
	if m.Log != nil {
		opts.ErrorLog = errorLog{m.Log}
	}
	h := promhttp.HandlerFor(m.Registry, opts)
	return []httpapi.Route{{Method: http.MethodGet, Pattern: "/metrics", Handler: h}}
}

// Observe implements ingest.Metrics. event is empty for requests refused before the
// signature was checked, so unauthenticated senders cannot mint label values.
func (m *Metrics) Observe(event, outcome, reason string, elapsed time.Duration) {
	if event == "" {
		event = "unknown"
	}
	m.events.WithLabelValues(event, outcome).Inc()
	if reason != "" {
		m.rejections.WithLabelValues(reason).Inc()
	}
	if outcome != ingest.OutcomeRejected {
		m.ingestTime.WithLabelValues(event).Observe(elapsed.Seconds())
	}
}
