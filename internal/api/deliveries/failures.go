package deliveries

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
)

// DefaultFailureWindow is how long a write failure keeps health degraded after the
// last one: long enough for an uptime check polling every minute or two to see it,
// short enough that health recovers on its own once writes succeed again.
const DefaultFailureWindow = 5 * time.Minute

// WriteFailures remembers the recent write failures of the store and the queue, for
// health: reads that fail are health's own to see, but a failing write shows only to
// the one who tried it (ingest answering 503, the processor retrying). The store, the
// queue and the job store are wrapped (Store, Queue, Jobs) where the process builds
// them, so every writer reports without knowing it.
//
// It lives in the process: on AWS the ApiFunction (health) does not see the webhook
// function's failures, which the template's WebhookServerErrorsAlarm covers instead.
type WriteFailures struct {
	// Window is how long a failure counts (DefaultFailureWindow when zero).
	Window time.Duration
	Now    func() time.Time // time.Now when nil

	mu    sync.Mutex
	kinds map[string]*failureRun
}

// failureRun is a run of failures of one kind: none more than Window after the last.
type failureRun struct {
	count       int
	first, last time.Time
}

// The kinds of write, as health names them.
const (
	failedStore   = "store errors: writes of deliveries"
	failedQueue   = "queue errors: sends to the events queue"
	failedCommits = "store errors: commits of job and runner changes"
)

func (f *WriteFailures) now() time.Time {
	if f.Now == nil {
		return time.Now()
	}
	return f.Now()
}

func (f *WriteFailures) window() time.Duration {
	if f.Window <= 0 {
		return DefaultFailureWindow
	}
	return f.Window
}

// record notes a failed write of kind. A cancelled request (the client went away) and
// an optimistic-concurrency conflict (planned again) are not failures of the store.
func (f *WriteFailures) record(kind string, err error) {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, jobs.ErrConflict) {
		return
	}
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.kinds == nil {
		f.kinds = map[string]*failureRun{}
	}
	run := f.kinds[kind]
	if run == nil || now.Sub(run.last) > f.window() {
		run = &failureRun{first: now}
		f.kinds[kind] = run
	}
	run.count++
	run.last = now
}

// reasons describes the failures of the last Window, in a fixed order.
func (f *WriteFailures) reasons(now time.Time) []string {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, kind := range []string{failedStore, failedQueue, failedCommits} {
		run := f.kinds[kind]
		if run == nil || now.Sub(run.last) > f.window() {
			continue
		}
		out = append(out, fmt.Sprintf("%s failed %d times since %s, the last at %s (reported for %s after the last)",
			kind, run.count, run.first.UTC().Format(time.RFC3339), run.last.UTC().Format(time.RFC3339), hoursText(f.window())))
	}
	return out
}

// Store returns s reporting its failed writes (Create) to f; a delivery is finished by
// a commit, which Jobs watches.
func (f *WriteFailures) Store(s delivery.Store) delivery.Store { return watchedStore{s, f} }

// Queue returns q reporting its failed sends to f.
func (f *WriteFailures) Queue(q delivery.Queue) delivery.Queue { return watchedQueue{q, f} }

// Jobs returns s reporting its failed commits to f.
func (f *WriteFailures) Jobs(s jobs.Store) jobs.Store { return watchedJobs{s, f} }

type watchedStore struct {
	delivery.Store
	f *WriteFailures
}

func (w watchedStore) Create(ctx context.Context, rec *delivery.Record) (*delivery.Record, error) {
	existing, err := w.Store.Create(ctx, rec)
	w.f.record(failedStore, err)
	return existing, err
}

type watchedQueue struct {
	delivery.Queue
	f *WriteFailures
}

func (w watchedQueue) Enqueue(ctx context.Context, msg delivery.Message) error {
	err := w.Queue.Enqueue(ctx, msg)
	w.f.record(failedQueue, err)
	return err
}

type watchedJobs struct {
	jobs.Store
	f *WriteFailures
}

func (w watchedJobs) Commit(ctx context.Context, c *jobs.Change) error {
	err := w.Store.Commit(ctx, c)
	w.f.record(failedCommits, err)
	return err
}
