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
		Registry:      prometheus.NewRegistry(),
		events:        counterVec("webhook_events_total", "Webhook deliveries by event and status: at ingest accepted, requeued, duplicate, rejected or failed; once processed processed or ignored; error for a failed processing attempt.", "event", "status"),
		rejections:    counterVec("webhook_rejections_total", "Refused webhook requests by reason.", "reason"),
		ingestTime:    histogramVec("webhook_ingest_duration_seconds", "Time to verify, record and queue a delivery.", prometheus.ExponentialBuckets(0.0005, 2, 14), "event"),
		processTime:   histogramVec("webhook_processing_duration_seconds", "Time to apply a queued delivery (read, plan, commit), failed attempts included.", prometheus.ExponentialBuckets(0.001, 2, 14), "event"),
		conflicts:     counterVec("webhook_processing_conflicts_total", "Plans that lost an optimistic-concurrency race and were planned again (no error), by delivery event or fleet operation (runner.register, runner.heartbeat, runner.remove).", "event"),
		jobsQueued:    counterVec("github_jobs_queued_total", "Workflow jobs that were queued (counted once per job, when first seen queued or later).", "repository"),
		jobsCompleted: counterVec("github_jobs_completed_total", "Workflow jobs that completed, by conclusion.", "repository", "conclusion"),
		jobDuration:   histogramVec("github_job_duration_seconds", "Run time of completed workflow jobs (started to completed).", jobBuckets, "repository"),
		jobWait:       histogramVec("github_job_wait_seconds", "Time workflow jobs waited for a runner (queued to started).", jobBuckets, "repository"),
		jobQueue:      histogramVec("github_job_queue_duration_seconds", "Time from a job's creation on GitHub (created_at) to its start (started_at), by the pool that ran it (ARC's gha_job_startup_duration_seconds).", jobBuckets, "pool", "repository"),
	}
	m.Registry.MustRegister(m.events, m.rejections, m.ingestTime,
		m.processTime, m.conflicts, m.jobsQueued, m.jobsCompleted, m.jobDuration, m.jobWait, m.jobQueue,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// jobBuckets span a job's wait or run time: from a second to six hours (GitHub's limit).
var jobBuckets = []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 21600}

// counter, counterVec, gaugeVec and histogramVec declare a collector by its name, help
// and labels (and buckets): one line each, so that the contract's names read as a list.
func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

func gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
}

func histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
}

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
