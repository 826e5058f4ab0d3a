package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/runnerhub/webhooks/internal/jobs"
)

// sampleTimeout bounds the reads one scrape makes for the sampled gauges.
const sampleTimeout = 5 * time.Second

// WatchQueues adds webhook_queue_depth{queue}: the deliveries in each queue depth
// returns (queue name → count), read at every scrape, so that no gauge goes stale
// between processes (in Lambda the API function serves /metrics, not the one queuing).
func (m *Metrics) WatchQueues(depth func(ctx context.Context) (map[string]int, error)) {
	desc := prometheus.NewDesc("webhook_queue_depth", "Deliveries in a queue (events: waiting or being processed; dlq: dead-lettered).", []string{"queue"}, nil)
	m.Registry.MustRegister(sampler{descs: []*prometheus.Desc{desc}, sample: func(ctx context.Context, ch chan<- prometheus.Metric) error {
		counts, err := depth(ctx)
		for queue, n := range counts {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(n), queue)
		}
		return err
	}})
}

// WatchPools adds the pool gauges, from the pool status status returns at every scrape.
func (m *Metrics) WatchPools(status func(ctx context.Context) ([]jobs.PoolStatus, error)) {
	var (
		runners = prometheus.NewDesc("runnerhub_pool_runners", "Runners of a pool by state (idle, reserved, busy, starting, offline: not seen lately).", []string{"pool", "state"}, nil)
		pending = prometheus.NewDesc("runnerhub_pool_pending_jobs", "Jobs waiting in a pool's queue for a runner.", []string{"pool"}, nil)
		oldest  = prometheus.NewDesc("runnerhub_pool_oldest_wait_seconds", "Wait of the job at the head of a pool's queue (the next served).", []string{"pool"}, nil)
		demand  = prometheus.NewDesc("runnerhub_pool_demand", "Runners a pool needs now: pending jobs plus minIdle less idle runners, within maxRunners.", []string{"pool"}, nil)
	)
	m.Registry.MustRegister(sampler{descs: []*prometheus.Desc{runners, pending, oldest, demand}, sample: func(ctx context.Context, ch chan<- prometheus.Metric) error {
		pools, err := status(ctx)
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
		}
		for _, p := range pools {
			for state, n := range map[string]int{"idle": p.Idle, "reserved": p.Reserved, "busy": p.Busy, "starting": p.Starting, "offline": p.Offline} {
				gauge(runners, float64(n), p.Name, state)
			}
			gauge(pending, float64(p.PendingJobs), p.Name)
			gauge(oldest, p.OldestWait.Seconds(), p.Name)
			gauge(demand, float64(p.Demand), p.Name)
		}
		return err
	}})
}

// sampler is a collector whose metrics are read when scraped. A failed read becomes an
// invalid metric: the scrape reports it (Routes logs it) and serves everything else.
type sampler struct {
	descs  []*prometheus.Desc
	sample func(ctx context.Context, ch chan<- prometheus.Metric) error
}

func (s sampler) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range s.descs {
		ch <- d
	}
}

func (s sampler) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), sampleTimeout)
	defer cancel()
	if err := s.sample(ctx, ch); err != nil {
		ch <- prometheus.NewInvalidMetric(s.descs[0], err)
	}
}

// errorLog is promhttp's error log on a slog.Logger.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Println(v ...any) { l.log.Error("serving metrics", "error", fmt.Sprint(v...)) }
