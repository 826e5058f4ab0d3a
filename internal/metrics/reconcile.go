package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Reconciler holds the reconciler's metrics (reconcile.Metrics and github.Observer; this
// package imports neither, so that functions that never call GitHub do not link its
// client): the names
// (webhook_redeliveries_requested_total{hook}, webhook_deliveries_given_up_total,
// webhook_late_acknowledgements_total), GitHub's rate-limit budget and the stranded jobs
// found.
type Reconciler struct {
	redeliveries *prometheus.CounterVec
	givenUp      prometheus.Counter
	lateAcks     prometheus.Counter
	rateLimit    *prometheus.GaugeVec
	stranded     *prometheus.CounterVec
}

// Reconciler registers the reconciler's collectors in m's registry.
func (m *Metrics) Reconciler() *Reconciler {
	r := &Reconciler{
		redeliveries: counterVec("webhook_redeliveries_requested_total", "Redeliveries RunnerHub asked GitHub for: deliveries that failed and never reached RunnerHub.", "hook"),
		givenUp:      counter("webhook_deliveries_given_up_total", "Deliveries that never arrived and were no longer redelivered (too many attempts, or about to leave GitHub's three days)."),
		lateAcks:     counter("webhook_late_acknowledgements_total", "Deliveries RunnerHub recorded but GitHub logged as failed: acknowledged too late (slower than GitHub's 10 seconds) or with an error."),
		rateLimit:    gaugeVec("runnerhub_github_rate_limit_remaining", "GitHub REST calls left in the current rate-limit window, as GitHub last reported (X-RateLimit-Remaining), by resource.", "resource"),
		stranded:     counterVec("runnerhub_reconcile_stranded_jobs_total", "Jobs whose news RunnerHub had missed, found by asking GitHub, by GitHub's status (gone: GitHub answers 404).", "status"),
	}
	m.Registry.MustRegister(r.redeliveries, r.givenUp, r.lateAcks, r.rateLimit, r.stranded)
	return r
}

// RedeliveryRequested implements reconcile.Metrics.
func (r *Reconciler) RedeliveryRequested(hook string) { r.redeliveries.WithLabelValues(hook).Inc() }

// DeliveryGivenUp implements reconcile.Metrics.
func (r *Reconciler) DeliveryGivenUp(string) { r.givenUp.Inc() }

// LateAcknowledgement implements reconcile.Metrics.
func (r *Reconciler) LateAcknowledgement(string) { r.lateAcks.Inc() }

// StrandedJob implements reconcile.Metrics.
func (r *Reconciler) StrandedJob(status string) { r.stranded.WithLabelValues(status).Inc() }

// RateLimitRemaining implements github.Observer.
func (r *Reconciler) RateLimitRemaining(resource string, n int) {
	r.rateLimit.WithLabelValues(resource).Set(float64(n))
}

// RedeliveryRequested implements reconcile.Metrics with one EMF line.
func (e *EMF) RedeliveryRequested(hook string) {
	e.countWith("webhook_redeliveries_requested_total", "hook", hook)
}

// DeliveryGivenUp implements reconcile.Metrics with one EMF line.
func (e *EMF) DeliveryGivenUp(hook string) {
	e.countWith("webhook_deliveries_given_up_total", "", hook)
}

// LateAcknowledgement implements reconcile.Metrics with one EMF line.
func (e *EMF) LateAcknowledgement(hook string) {
	e.countWith("webhook_late_acknowledgements_total", "", hook)
}

// StrandedJob implements reconcile.Metrics with one EMF line.
func (e *EMF) StrandedJob(status string) {
	e.countWith("runnerhub_reconcile_stranded_jobs_total", "status", status)
}

// RateLimitRemaining implements github.Observer with one EMF line.
func (e *EMF) RateLimitRemaining(resource string, n int) {
	line := e.newLine()
	line.set("resource", resource)
	line.fields["runnerhub_github_rate_limit_remaining"] = n
	line.directive([]string{"resource"}, emfMetric{Name: "runnerhub_github_rate_limit_remaining", Unit: "Count"})
	e.write(line)
}

// countWith writes a count of name, with dimension dim (none when empty) set to value;
// without a dimension value is kept as the hook property, for the logs.
func (e *EMF) countWith(name, dim, value string) {
	line := e.newLine()
	if dim == "" {
		line.set("hook", value)
		line.directive([]string{}, line.count(name))
	} else {
		line.set(dim, value)
		line.directive([]string{dim}, line.count(name))
	}
	e.write(line)
}
