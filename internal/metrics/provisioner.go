package metrics

import "github.com/prometheus/client_golang/prometheus"

// The provisioner's counters (provisioning.Metrics; this package does not import it, so
// that functions that start no runners do not link providers), by name, with their
// labels. One table serves both adapters, so Prometheus and EMF cannot name them apart.
const (
	runnersCreated = "runnerhub_provisioner_runners_created_total"
	createFailures = "runnerhub_provisioner_create_failures_total"
	runnersRetired = "runnerhub_provisioner_runners_retired_total"
	bootTimeouts   = "runnerhub_provisioner_boot_timeouts_total"
	idleTimeouts   = "runnerhub_provisioner_idle_timeouts_total"
	orphansReaped  = "runnerhub_provisioner_orphans_reaped_total"
	jitFailures    = "runnerhub_provisioner_jit_failures_total"
)

var provisionerCounters = []struct {
	name, help string
	labels     []string
}{
	{runnersCreated, "Runners a provider's create accepted.", []string{"pool"}},
	{createFailures, "Provider creates that failed; the runner's record was removed and its demand retried.", []string{"pool"}},
	{runnersRetired, "Runners whose machine and GitHub registration were deleted after RunnerHub removed them, by why they were removed (completed, removed).", []string{"pool", "reason"}},
	{bootTimeouts, "Runners still starting after the pool's bootTimeout, replaced.", []string{"pool"}},
	{idleTimeouts, "Idle runners above the pool's minIdle removed after its idleTimeout.", []string{"pool"}},
	{orphansReaped, "Machines (where=provider) and GitHub runners (where=github) with no RunnerHub runner, deleted after the grace period.", []string{"pool", "where"}},
	{jitFailures, "Just-in-time configurations GitHub refused, by cause (forbidden, invalid, rate_limited, not_found, unavailable, other).", []string{"pool", "cause"}},
}

// Provisioner implements provisioning.Metrics, on Prometheus (Metrics.Provisioner) or
// EMF (EMF.Provisioner): one method set over either adapter's count.
type Provisioner struct {
	inc func(name string, values ...string)
}

// Provisioner registers the provisioner's collectors in m's registry.
func (m *Metrics) Provisioner() Provisioner {
	counters := map[string]*prometheus.CounterVec{}
	for _, c := range provisionerCounters {
		v := counterVec(c.name, c.help, c.labels...)
		m.Registry.MustRegister(v)
		counters[c.name] = v
	}
	return Provisioner{inc: func(name string, values ...string) { counters[name].WithLabelValues(values...).Inc() }}
}

// Provisioner writes the provisioner's counts as EMF lines (the provisioner function),
// each counter's labels as its dimensions.
func (e *EMF) Provisioner() Provisioner {
	return Provisioner{inc: func(name string, values ...string) {
		for _, c := range provisionerCounters {
			if c.name == name {
				line := e.newLine()
				for i, label := range c.labels {
					line.set(label, values[i])
				}
				line.directive(c.labels, line.count(name))
				e.write(line)
			}
		}
	}}
}

// RunnerCreated implements provisioning.Metrics.
func (p Provisioner) RunnerCreated(pool string) { p.inc(runnersCreated, pool) }

// CreateFailed implements provisioning.Metrics.
func (p Provisioner) CreateFailed(pool string) { p.inc(createFailures, pool) }

// RunnerRetired implements provisioning.Metrics.
func (p Provisioner) RunnerRetired(pool, reason string) { p.inc(runnersRetired, pool, reason) }

// BootTimedOut implements provisioning.Metrics.
func (p Provisioner) BootTimedOut(pool string) { p.inc(bootTimeouts, pool) }

// IdleTimedOut implements provisioning.Metrics.
func (p Provisioner) IdleTimedOut(pool string) { p.inc(idleTimeouts, pool) }

// OrphanReaped implements provisioning.Metrics.
func (p Provisioner) OrphanReaped(pool, where string) { p.inc(orphansReaped, pool, where) }

// JITFailed implements provisioning.Metrics.
func (p Provisioner) JITFailed(pool, cause string) { p.inc(jitFailures, pool, cause) }
