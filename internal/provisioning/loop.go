package provisioning

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/runnerhub/webhooks/internal/jobs"
)

// Defaults of the Loop.
const (
	// DefaultWorkers is how many demands, pre-warms and retirements a Loop handles at
	// once, and so how many provider calls run at once at most: a burst of queued jobs
	// should not wait in line behind provider calls, which may take a second or two (a
	// cloud's API, docker run). Under a burst of 200 on two cores, 32 workers left the
	// demands waiting for a worker longer than for anything else.
	DefaultWorkers = 128
	// DefaultQueueSize bounds the signals waiting for a worker. Past it a signal is
	// refused (the engine logs it); the next Pass catches up with what it asked for.
	DefaultQueueSize = 4096
	// DefaultRetryBase and DefaultRetryMax bound the wait before a failed signal is
	// tried again: base × 2^(attempt-1), at most max, half of it random.
	DefaultRetryBase = time.Second
	DefaultRetryMax  = time.Minute
	// DefaultAttempts is how often a signal is tried before the Loop gives it up to the
	// Pass (waiting jobs, orphans) and the engine's resent demands.
	DefaultAttempts = 8
)

// ErrQueueFull is returned by a Loop's signal methods when its queue is full.
var ErrQueueFull = errors.New("provisioner queue full")

// Loop runs a Provisioner in this process, as the local stack does: it is the engine's
// jobs.Signals, each signal is queued for a pool of workers, a failed one is tried
// again with jittered, capped exponential backoff, and Pass runs every Interval.
type Loop struct {
	Provisioner *Provisioner
	Interval    time.Duration // between passes
	Workers     int           // DefaultWorkers when 0
	// RetryBase, RetryMax and Attempts default to DefaultRetryBase, DefaultRetryMax and
	// DefaultAttempts.
	RetryBase, RetryMax time.Duration
	Attempts            int
	Log                 *slog.Logger // discarded when nil

	once  sync.Once
	tasks chan task
}

var _ jobs.Signals = (*Loop)(nil)

// task is one signal to handle, and how often it was tried.
type task struct {
	demand  *jobs.Demand
	prewarm *jobs.Prewarm
	retire  *jobs.Retire
	attempt int
}

func (t task) run(ctx context.Context, p *Provisioner) error {
	switch {
	case t.demand != nil:
		return p.Demand(ctx, *t.demand)
	case t.prewarm != nil:
		return p.Prewarm(ctx, *t.prewarm)
	}
	return p.Retire(ctx, *t.retire)
}

func (t task) attrs() []any {
	switch {
	case t.demand != nil:
		return []any{"signal", "demand", "pool", t.demand.Pool, "job_id", t.demand.JobID}
	case t.prewarm != nil:
		return []any{"signal", "prewarm", "pools", t.prewarm.Pools}
	}
	return []any{"signal", "retire", "pool", t.retire.Pool, "runner", t.retire.Runner}
}

func (l *Loop) queue() chan task {
	l.once.Do(func() { l.tasks = make(chan task, DefaultQueueSize) })
	return l.tasks
}

func (l *Loop) log() *slog.Logger {
	if l.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.Log
}

// enqueue queues t without waiting: signals are sent on the committing goroutine.
func (l *Loop) enqueue(t task) error {
	select {
	case l.queue() <- t:
		return nil
	default:
		return ErrQueueFull
	}
}

// Demand queues d.
func (l *Loop) Demand(_ context.Context, d jobs.Demand) error { return l.enqueue(task{demand: &d}) }

// Prewarm queues w.
func (l *Loop) Prewarm(_ context.Context, w jobs.Prewarm) error { return l.enqueue(task{prewarm: &w}) }

// Retire queues r.
func (l *Loop) Retire(_ context.Context, r jobs.Retire) error { return l.enqueue(task{retire: &r}) }

// Run handles the queued signals and runs a Pass at once and then every Interval, until
// ctx ends.
func (l *Loop) Run(ctx context.Context) {
	workers := l.Workers
	if workers <= 0 {
		workers = DefaultWorkers
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { l.work(ctx) })
	}
	tick := time.NewTicker(l.Interval)
	defer tick.Stop()
	for {
		l.Provisioner.Pass(ctx, time.Now())
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-tick.C:
		}
	}
}

func (l *Loop) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case t := <-l.queue():
			l.handle(ctx, t)
		}
	}
}

func (l *Loop) handle(ctx context.Context, t task) {
	err := t.run(ctx, l.Provisioner)
	if err == nil || ctx.Err() != nil {
		return
	}
	t.attempt++
	attempts := l.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	if t.attempt >= attempts {
		l.log().ErrorContext(ctx, "provisioning gave up on a signal: the next pass catches up", append(t.attrs(), "attempts", t.attempt, "error", err)...)
		return
	}
	wait := l.backoff(t.attempt)
	l.log().WarnContext(ctx, "provisioning failed: retrying", append(t.attrs(), "attempt", t.attempt, "retry_in", wait.String(), "error", err)...)
	time.AfterFunc(wait, func() {
		if ctx.Err() == nil && l.enqueue(t) != nil {
			l.log().ErrorContext(ctx, "provisioning retry dropped: the queue is full", t.attrs()...)
		}
	})
}

// backoff is the wait before the attempt-th retry: half of base × 2^(attempt-1), capped
// at max, plus up to as much again at random, so that signals that failed together do
// not retry in step.
func (l *Loop) backoff(attempt int) time.Duration {
	base, ceiling := l.RetryBase, l.RetryMax
	if base <= 0 {
		base = DefaultRetryBase
	}
	if ceiling <= 0 {
		ceiling = DefaultRetryMax
	}
	d := min(base<<min(attempt-1, 30), ceiling)
	return d/2 + rand.N(d/2+1)
}
