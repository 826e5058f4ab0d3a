package jobs_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/storage/embedded"
)

// Apply runs a recorded delivery through the commit pipeline: it plans the delivery's
// effects, commits them with the delivery's finished mark, re-plans on conflict, and
// announces the commit to the engine's subscribers. Applying it again does nothing.
func ExampleEngine_Apply() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := embedded.Open(filepath.Join(dir, "runnerhub.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	store := db.Store()
	ctx := context.Background()

	engine := &jobs.Engine{Store: store, Deliveries: store, Step: time.Minute,
		Pools: []jobs.Pool{{Name: "linux", Labels: []string{"linux"}, MaxRunners: 2}}}
	// A subscriber hears of each commit once, after it: here it prints what the
	// delivery did to its job, and the demand it sends for want of an idle runner.
	engine.Subscribe(jobs.SubscriberFunc(func(_ context.Context, c *jobs.Commit) {
		if t, ok := c.OwnTransition(); ok {
			fmt.Printf("job %d: %s -> %s (%s, pool %s), applied %v\n", t.Job.ID, t.From, t.Job.Status, t.Job.Allocation, t.Job.Pool, t.Applied)
		}
		for _, d := range c.Demands {
			fmt.Printf("demand: a runner in pool %s for job %d\n", d.Pool, d.JobID)
		}
	}))

	rec := &delivery.Record{
		Key:   delivery.Key{HookID: "1", DeliveryID: "d-1"},
		Event: "workflow_job", Action: "queued", Repository: "octo/repo",
		ReceivedAt: time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC), State: delivery.Received,
		Payload: []byte(`{"action":"queued","repository":{"full_name":"octo/repo"},
			"workflow_job":{"id":42,"run_id":7,"status":"queued","labels":["self-hosted","linux"]}}`),
	}
	if _, err := store.Create(ctx, rec); err != nil {
		log.Fatal(err)
	}
	c, err := engine.Apply(ctx, rec)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.State, "after", c.Conflicts, "conflicts:", c.Outcome.Code, "-", c.Outcome.Text())

	again, err := store.Get(ctx, rec.Key) // SQS delivers it again
	if err != nil {
		log.Fatal(err)
	}
	c, err = engine.Apply(ctx, again)
	fmt.Println("again:", c, err)
	// Output:
	// job 42:  -> queued (pending, pool linux), applied true
	// demand: a runner in pool linux for job 42
	// processed after 0 conflicts: job.pending - job 42 queued in pool linux; no idle runner, demand sent
	// again: <nil> <nil>
}
