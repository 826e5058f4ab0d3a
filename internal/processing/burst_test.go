package processing_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/ingest"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/jobs/jobstest"
	"github.com/runnerhub/webhooks/internal/metrics"
	"github.com/runnerhub/webhooks/internal/processing"
	"github.com/runnerhub/webhooks/internal/storage/embedded"
	"github.com/runnerhub/webhooks/internal/testenv"
	"github.com/runnerhub/webhooks/internal/webhook"
)

// The burst test (issue 9's second finding): a pool of 3 runners takes a burst of signed
// queued deliveries of distinct jobs, all from one repository, 16 at a time. Every
// delivery plans against the same pool gate and the same repository profile, so plans
// conflict all the time; a conflict must be re-planned, never spend one of the delivery's
// attempts, never count as an error, and never dead-letter a delivery. make test runs a
// small burst on each store; the size with
//
//	go test ./internal/processing -run Burst -v -burst.deliveries 6000
var burstDeliveries = flag.Int("burst.deliveries", 0, "deliveries per burst (0: 300 on bbolt, 32 on DynamoDB)")

// maxAttempts is what the queues allow a delivery before the dead-letter queue: the
// local stack's five attempts, EventsQueue's maxReceiveCount of 5.
const maxAttempts = 5

// burstQueue is the events queue a burst runs on: receive, then ack or nack.
type burstQueue interface {
	delivery.Queue
	receive(ctx context.Context) (burstItem, bool)
	ack(it burstItem)
	// nack hands a failed attempt back; it reports whether the delivery was dead-lettered.
	nack(it burstItem, err error) bool
}

type burstItem struct {
	msg      delivery.Message
	id       uint64
	attempts int
}

// localQueue is the local stack's own queue (bbolt).
type localQueue struct{ *embedded.Queue }

func (q localQueue) receive(ctx context.Context) (burstItem, bool) {
	items, err := q.Receive(ctx, 1)
	if err != nil {
		return burstItem{}, false
	}
	return burstItem{msg: items[0].Message, id: items[0].ID, attempts: items[0].Attempts}, true
}

func (q localQueue) ack(it burstItem) { q.Ack(it.id) }

func (q localQueue) nack(it burstItem, err error) bool {
	if nackErr := q.Nack(it.id, err); nackErr != nil {
		panic(nackErr)
	}
	return it.attempts+1 >= maxAttempts
}

// sqsQueue stands in for EventsQueue with SQS's rules that matter here: each receive
// counts, and the maxAttempts-th failed receive moves the message to the DLQ.
type sqsQueue struct {
	ch chan burstItem
}

func (q *sqsQueue) Enqueue(_ context.Context, msg delivery.Message) error {
	q.ch <- burstItem{msg: msg}
	return nil
}

func (q *sqsQueue) receive(ctx context.Context) (burstItem, bool) {
	select {
	case it := <-q.ch:
		return it, true
	case <-ctx.Done():
		return burstItem{}, false
	}
}

func (q *sqsQueue) ack(burstItem) {}

func (q *sqsQueue) nack(it burstItem, _ error) bool {
	if it.attempts++; it.attempts >= maxAttempts {
		return true
	}
	q.ch <- it
	return false
}

func TestBurstOfQueuedJobsInOnePool(t *testing.T) {
	tests := []struct {
		name  string
		size  int
		setup func(t *testing.T) (Stores, burstQueue)
		// invocation bounds each receive as Lambda does (the ProcessorFunction's 30 s
		// timeout, here for one record; a batch of ten shares it); 0: no deadline, as the
		// local consumer.
		invocation time.Duration
	}{
		{"bbolt", 300, func(t *testing.T) (Stores, burstQueue) {
			db := testenv.Embedded(t)
			s := db.Store()
			return Stores{Deliveries: s, Counters: s, Jobs: s}, localQueue{db.Queue(maxAttempts)}
		}, 0},
		{"DynamoDB", 32, func(t *testing.T) (Stores, burstQueue) {
			return dynamoStores(t), &sqsQueue{ch: make(chan burstItem, 1<<16)}
		}, 30 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.size
			if *burstDeliveries > 0 {
				n = *burstDeliveries
			}
			s, queue := tc.setup(t)
			runBurst(t, s, queue, n, tc.invocation)
		})
	}
}

func runBurst(t *testing.T, s Stores, queue burstQueue, n int, invocation time.Duration) {
	const (
		concurrency = 16
		secret      = "burst-secret"
		repository  = "burst/r"
	)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	pool := jobs.Pool{Name: "burst", Labels: []string{"linux", "burst"}, MaxRunners: 3}
	// Job ids and runner names are unique per run: the DynamoDB table is shared.
	base := time.Now().UnixNano() % 1e12 * 10
	var runners []*jobs.Runner
	for i := range 3 {
		runners = append(runners, &jobs.Runner{Name: fmt.Sprintf("burst-%d-%d", base, i), Pool: pool.Name,
			State: jobs.RunnerIdle, UpdatedAt: time.Now().UTC(), LastSeen: time.Now().UTC()})
	}
	if err := s.Jobs.Commit(ctx, &jobs.Change{Runners: runners}); err != nil {
		t.Fatal(err)
	}

	m := metrics.New()
	signals := &jobstest.Signals{}
	engine := &jobs.Engine{Store: s.Jobs, Deliveries: s.Deliveries, Pools: []jobs.Pool{pool}, Step: time.Minute,
		Subscribers: []jobs.Subscriber{&jobs.SignalSender{Signals: signals, Log: log}, m}}
	proc := &processing.Processor{Deliveries: s.Deliveries, Counters: s.Counters, Engine: engine,
		Signals: signals, Log: log, Now: time.Now, Observer: m}
	ing := &ingest.Handler{
		Parser: &webhook.Parser{Verifier: webhook.NewVerifier(secret, "")},
		Store:  s.Deliveries, Queue: queue, MaxBodyBytes: 25 << 20, Log: log, Metrics: m, Now: time.Now,
	}

	start := time.Now()
	// A conflict that outlasts an invocation (DynamoDB only) spends a receive, but is no
	// error; any other failure is one.
	var processed, deadLetters, conflictTimeouts, failures atomic.Int64
	workCtx, stop := context.WithCancel(ctx)
	defer stop()
	var workers sync.WaitGroup
	for range concurrency {
		workers.Go(func() {
			for {
				it, ok := queue.receive(workCtx)
				if !ok {
					return
				}
				attemptCtx, cancel := ctx, context.CancelFunc(func() {})
				if invocation > 0 {
					attemptCtx, cancel = context.WithTimeout(ctx, invocation)
				}
				err := proc.Process(attemptCtx, it.msg)
				cancel()
				if err == nil {
					queue.ack(it)
					processed.Add(1)
					continue
				}
				if errors.Is(err, jobs.ErrConflict) {
					conflictTimeouts.Add(1)
				} else {
					failures.Add(1)
					t.Logf("delivery %s, attempt %d: %v", it.msg.DeliveryID, it.attempts+1, err)
				}
				if queue.nack(it, err) {
					deadLetters.Add(1)
					processed.Add(1) // finished, badly
				}
			}
		})
	}

	// 16 senders post signed deliveries, as GitHub would, each answered 202.
	var next atomic.Int64
	var senders sync.WaitGroup
	now := time.Now().UTC()
	for range concurrency {
		senders.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				body := testenv.JobPayload(t, testenv.Job{ID: base + i, Labels: []string{"self-hosted", "linux", "burst"},
					Status: string(jobs.StatusQueued), Repository: repository, Created: now, At: now})
				req := httptest.NewRequest(http.MethodPost, ingest.Path, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-GitHub-Event", "workflow_job")
				req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("burst-%d-%d", base, i))
				req.Header.Set("X-GitHub-Hook-ID", "9")
				req.Header.Set("X-Hub-Signature-256", webhook.Sign(secret, body))
				w := httptest.NewRecorder()
				ing.ServeHTTP(w, req)
				if w.Code != http.StatusAccepted {
					t.Errorf("delivery %d: %d %s", i, w.Code, w.Body)
					return
				}
			}
		})
	}
	senders.Wait()
	deadline := time.Now().Add(10 * time.Minute)
	for processed.Load() < int64(n) && !t.Failed() {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries finished after 10 minutes", processed.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	workers.Wait()
	elapsed := time.Since(start)

	// Every job is queued: one of three reserved for a runner, the rest pending.
	var reserved, pending int
	for i := int64(1); i <= int64(n); i++ {
		j, err := s.Jobs.Job(ctx, base+i)
		if err != nil {
			t.Fatalf("job %d: %v", base+i, err)
		}
		switch {
		case j.Status != jobs.StatusQueued:
			t.Errorf("job %d is %s, want queued", j.ID, j.Status)
		case j.Allocation == jobs.AllocationReserved:
			reserved++
		case j.Allocation == jobs.AllocationPending:
			pending++
		default:
			t.Errorf("job %d allocation %q, want reserved or pending", j.ID, j.Allocation)
		}
	}
	counts, err := s.Counters.HourlyCounts(ctx, delivery.Hour(now).Add(-time.Hour), delivery.Hour(now).Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var errorsCounted int64
	for _, c := range counts {
		errorsCounted += c.Errors
	}
	conflicts := counted(t, m, "webhook_processing_conflicts_total", "")
	metricErrors := counted(t, m, "webhook_events_total", "error")
	t.Logf("%d deliveries, %d at a time, in %v: %.0f conflicts re-planned, %d attempts out of time re-planning, %d other failed attempts, %d errors counted (%.0f in metrics), %d dead letters; %d reserved, %d pending, %d demands",
		n, concurrency, elapsed.Round(time.Millisecond), conflicts, conflictTimeouts.Load(), failures.Load(), errorsCounted, metricErrors,
		deadLetters.Load(), reserved, pending, len(signals.Demands()))
	if deadLetters.Load() != 0 || failures.Load() != 0 || errorsCounted != 0 || metricErrors != 0 {
		t.Errorf("%d dead letters, %d failed attempts, %d errors counted (%.0f in metrics): want none",
			deadLetters.Load(), failures.Load(), errorsCounted, metricErrors)
	}
	if invocation == 0 && conflictTimeouts.Load() != 0 {
		t.Errorf("%d attempts gave up on conflicts without a deadline: want none (a conflict is re-planned until it commits)", conflictTimeouts.Load())
	}
	if reserved != 3 || reserved+pending != n {
		t.Errorf("%d reserved and %d pending of %d jobs, want 3 reserved (the pool's runners) and the rest pending", reserved, pending, n)
	}
}

// counted sums a counter's series, those with status (when given) only.
func counted(t *testing.T, m *metrics.Metrics, name, status string) float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, metric := range f.GetMetric() {
			matches := status == ""
			for _, l := range metric.GetLabel() {
				matches = matches || l.GetName() == "status" && l.GetValue() == status
			}
			if matches {
				sum += metric.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// conflicting fails the first `times` commits as if another processor had just changed
// what they read (times < 0: every commit).
type conflicting struct {
	jobs.Store
	mu    sync.Mutex
	times int
	seen  int
}

func (c *conflicting) Commit(ctx context.Context, ch *jobs.Change) error {
	c.mu.Lock()
	c.seen++
	conflict := c.times < 0 || c.seen <= c.times
	c.mu.Unlock()
	if conflict {
		return fmt.Errorf("injected: %w", jobs.ErrConflict)
	}
	return c.Store.Commit(ctx, ch)
}

// A conflict is re-planned, not failed: without a deadline until the change commits
// (far past the eight attempts the processor used to allow), with one until shortly
// before it; either way no error is counted, and the conflicts are.
func TestConflictsAreReplannedWithinTheContext(t *testing.T) {
	tests := []struct {
		name      string
		conflicts int // -1: for ever
		deadline  time.Duration
		// want
		committed bool
		counted   float64 // webhook_processing_conflicts_total at least
	}{
		{"twelve conflicts, no deadline", 12, 0, true, 12},
		{"endless conflicts, an invocation's deadline", -1, jobs.ConflictMargin + 500*time.Millisecond, false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := embeddedStores(t)
			store := &conflicting{Store: s.Jobs, times: tc.conflicts}
			p, _ := newProcessor(t, Stores{Deliveries: s.Deliveries, Counters: s.Counters, Jobs: store})
			p.Engine.Store = store
			m := metrics.New()
			p.Observer = m
			p.Engine.Subscribe(m)
			rec := fixtureRecord(t, "workflow_job.queued.json", "conflicts")
			if _, err := s.Deliveries.Create(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tc.deadline > 0 {
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
			}
			defer cancel()
			start := time.Now()
			err := p.Process(ctx, delivery.Message{Key: rec.Key})
			var gaveUp *jobs.ConflictError
			switch {
			case tc.committed && err != nil:
				t.Fatalf("Process: %v", err)
			case !tc.committed && !errors.As(err, &gaveUp):
				t.Fatalf("Process: %v, want a ConflictError", err)
			case !tc.committed && time.Since(start) > tc.deadline-jobs.ConflictMargin+conflictSlack:
				t.Errorf("gave up after %v, want before the deadline less %v", time.Since(start), jobs.ConflictMargin)
			}
			got, _ := s.Deliveries.Get(context.Background(), rec.Key)
			if got.State.Done() != tc.committed {
				t.Errorf("delivery %s, want finished %v", got.State, tc.committed)
			}
			counts, _ := s.Counters.HourlyCounts(context.Background(), delivery.Hour(rec.ReceivedAt), delivery.Hour(rec.ReceivedAt).Add(time.Hour))
			var processedCount int64
			for _, c := range counts {
				processedCount += c.Processed
				if c.Errors != 0 {
					t.Errorf("%d errors counted for conflicts", c.Errors)
				}
			}
			if want := map[bool]int64{true: 1}[tc.committed]; processedCount != want {
				t.Errorf("counted processed %d times, want %d", processedCount, want)
			}
			if n := counted(t, m, "webhook_processing_conflicts_total", ""); n < tc.counted {
				t.Errorf("%v conflicts counted, want at least %v", n, tc.counted)
			}
			if n := counted(t, m, "webhook_events_total", "error"); n != 0 {
				t.Errorf("%v errors in the metrics, want none", n)
			}
		})
	}
}

// conflictSlack is how much later than planned a give-up may come on a busy machine.
const conflictSlack = 300 * time.Millisecond
