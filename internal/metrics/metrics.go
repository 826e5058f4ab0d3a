// Package metrics holds RunnerHub's Prometheus metrics, named as in the product
// description (webhook_events_total{event,status}, webhook_processing_duration_seconds{event}).
package metrics

import (
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

	events     *prometheus.CounterVec
	rejections *prometheus.CounterVec
	ingestTime *prometheus.HistogramVec
}

var _ ingest.Metrics = (*Metrics)(nil)

// New registers the collectors in a fresh registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webhook_events_total",
			Help: "Webhook deliveries by event and status (accepted, requeued, duplicate, rejected, failed).",
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
	}
	m.Registry.MustRegister(m.events, m.rejections, m.ingestTime,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Routes serves the registry on GET /metrics (authenticated: metrics name repositories).
func (m *Metrics) Routes() []httpapi.Route {
	return []httpapi.Route{{Method: http.MethodGet, Pattern: "/metrics", Handler: promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})}}
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
