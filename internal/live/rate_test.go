package live_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/live"
	"github.com/runnerhub/webhooks/internal/live/localhub"
)

// The load of issue 14 item 4: 50 dashboards while 400 deliveries/s are committed.
var (
	rateConnections = flag.Int("fanout.connections", 50, "simulated WebSocket connections, each subscribed to everything")
	rateDeliveries  = flag.Int("fanout.rate", 400, "deliveries committed per second")
	rateSeconds     = flag.Float64("fanout.seconds", 2, "seconds the load lasts")
	// 1s stands for the FanoutFunction, whose event source gathers a second of commits.
	rateInterval = flag.Duration("fanout.interval", live.CoalesceInterval, "least time between two fan-out runs")
)

// countingSender counts posts, as API Gateway would bill and throttle them, and the
// messages they carry.
type countingSender struct{ posts, messages, bytes atomic.Int64 }

func (s *countingSender) Send(_ context.Context, _ string, data []byte) error {
	s.posts.Add(1)
	s.bytes.Add(int64(len(data)))
	n := int64(1)
	if data[0] == '[' {
		var batch []json.RawMessage
		if err := json.Unmarshal(data, &batch); err != nil {
			return err
		}
		n = int64(len(batch))
	}
	s.messages.Add(n)
	return nil
}

// countingRegistry counts the reads that find a message's connections.
type countingRegistry struct {
	live.Registry
	reads atomic.Int64
}

func (r *countingRegistry) Audience(ctx context.Context, rooms []string, now time.Time) ([]live.Connection, error) {
	r.reads.Add(1)
	return r.Registry.Audience(ctx, rooms, now)
}

// emptyPools answers every pool read with zeros: the counts do not matter here.
type emptyPools struct{}

func (emptyPools) PoolCounts(_ context.Context, pools []string) ([]jobs.PoolCounts, error) {
	counts := make([]jobs.PoolCounts, len(pools))
	for i, pool := range pools {
		counts[i].Pool = pool
	}
	return counts, nil
}

// queuedCommit is the commit of a queued workflow_job delivery that put job id in the
// default pool's queue: it announces a workflow-job, a webhook-event and a pool-status.
func queuedCommit(id int64) *jobs.Commit {
	job := &jobs.Job{ID: id, Repository: fmt.Sprintf("octo-org/repo-%d", id%20), Status: jobs.StatusQueued,
		Allocation: jobs.AllocationPending, Pool: "default", Labels: []string{"self-hosted"}}
	now := time.Now().UTC()
	return &jobs.Commit{
		Plan:      &jobs.Plan{State: delivery.Processed, Job: job, Change: jobs.Change{Jobs: []*jobs.Job{job}}},
		Operation: jobs.OpDelivery,
		Delivery: &delivery.Record{Key: delivery.Key{HookID: "1", DeliveryID: fmt.Sprintf("rate-%d", id)}, Event: "workflow_job",
			Action: "queued", Repository: job.Repository, ReceivedAt: now, State: delivery.Processed},
		At:          now,
		Transitions: []jobs.Transition{{Job: job, From: jobs.StatusQueued, Own: true, Applied: true}},
		Pools:       []string{"default"},
	}
}

// TestFanoutPostRate measures the posts per second the live updates make (what API
// Gateway's PostToConnection would be asked for) with -fanout.connections dashboards
// while -fanout.rate deliveries are committed per second, each announcing three messages,
// through the local stack's path (Announcer, Coalescer, Hub.Deliver). Every message must
// arrive, in at most one post per connection per CoalesceInterval (or -fanout.interval;
// 1s is the FanoutFunction's batching window):
//
//	go test ./internal/live -run FanoutPostRate -v
//	go test ./internal/live -run FanoutPostRate -v -fanout.interval 1s -fanout.seconds 5
func TestFanoutPostRate(t *testing.T) {
	sender := &countingSender{}
	registry := &countingRegistry{Registry: localhub.NewRegistry()}
	hub := &live.Hub{Registry: registry, Sender: sender, Pools: emptyPools{}}
	ctx := context.Background()
	for i := range *rateConnections {
		connect(t, hub, fmt.Sprintf("dashboard-%02d", i))
	}
	coalescer := live.NewCoalescer(hub, *rateInterval, live.CoalescerBuffer)
	stop := runCoalescer(t, coalescer)
	announcer := &live.Announcer{Outbox: coalescer}

	n := int(float64(*rateDeliveries) * *rateSeconds)
	interval := time.Second / time.Duration(*rateDeliveries)
	start := time.Now()
	var slowest time.Duration // the longest a commit waited for its announcement
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		before := time.Now()
		announcer.Committed(ctx, queuedCommit(int64(i+1)))
		slowest = max(slowest, time.Since(before))
	}
	elapsed := time.Since(start)
	stop()

	posts, messages, reads := sender.posts.Load(), sender.messages.Load(), registry.reads.Load()
	t.Logf("%d connections, %d deliveries in %v (%.0f/s): %d posts, %.0f posts/s, %.2f per delivery, %.1f messages (%.0f KB) per post; %d connection reads (%.1f/s); slowest announcement %v; %d dropped",
		*rateConnections, n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), posts,
		float64(posts)/elapsed.Seconds(), float64(posts)/float64(n), float64(messages)/float64(max(posts, 1)),
		float64(sender.bytes.Load())/float64(max(posts, 1))/1000, reads, float64(reads)/elapsed.Seconds(), slowest, coalescer.Dropped())
	if want := int64(3 * n * *rateConnections); messages != want || coalescer.Dropped() != 0 {
		t.Errorf("%d messages delivered (%d dropped), want %d: three per delivery per connection", messages, coalescer.Dropped(), want)
	}
	// One run at the start, then one per interval, and the last one at the stop; a run
	// whose messages exceed MaxMessageBytes for a connection posts them in several parts.
	runs := int64(elapsed / *rateInterval) + 2
	if limit := int64(*rateConnections)*runs + sender.bytes.Load()/live.MaxMessageBytes; posts > limit {
		t.Errorf("%d posts, more than one per connection per %v and per %d bytes (%d)", posts, *rateInterval, live.MaxMessageBytes, limit)
	}
}
