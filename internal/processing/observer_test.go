package processing_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/testenv"
)

// observed records what the processor tells its Observer and the engine its subscribers.
type observed struct {
	mu      sync.Mutex
	applied []*jobs.Commit
	failed  []error
}

func (o *observed) Committed(_ context.Context, c *jobs.Commit) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.applied = append(o.applied, c)
}

func (o *observed) Failed(_ *delivery.Record, err error, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failed = append(o.failed, err)
}

// A subscriber hears of each committed delivery once, with the job's transition, and the
// observer of each failed attempt; a delivery processed again is not applied again.
func TestObserver(t *testing.T) {
	s := embeddedStores(t)
	flaky := &flakyJobs{Store: s.Jobs}
	p, _ := newProcessor(t, Stores{Deliveries: s.Deliveries, Counters: s.Counters, Jobs: flaky})
	o := &observed{}
	p.Observer = o
	p.Engine.Subscribe(o)
	ctx := context.Background()
	payload := testenv.JobPayload(t, testenv.Job{ID: 4711, Labels: []string{"self-hosted", "linux"}, Status: "queued",
		Created: time.Now(), At: time.Now()})
	rec := record(t, s, "observed-1", "workflow_job", payload)
	msg := delivery.Message{Key: rec.Key, Event: rec.Event}

	flaky.failJob = jobIDOf(t, rec)
	if err := p.Process(ctx, msg); err == nil {
		t.Fatal("Process with a failing store: no error")
	}
	flaky.failJob = 0
	for range 2 { // SQS delivers twice
		if err := p.Process(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	if len(o.failed) != 1 || len(o.applied) != 1 {
		t.Fatalf("observed %d failures and %d applications, want 1 and 1", len(o.failed), len(o.applied))
	}
	tr, ok := o.applied[0].OwnTransition()
	if !ok || !tr.Applied || tr.From != "" || tr.Job.ID != jobIDOf(t, rec) || tr.Job.Status != jobs.StatusQueued {
		t.Fatalf("transition %+v, want the job's move to queued", tr)
	}
}
