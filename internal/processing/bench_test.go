package processing_test

import (
	"context"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/testenv"
)

// BenchmarkPlan is the processor's CPU per event, excluding I/O: decoding the payload and
// planning its effects against an embedded store whose reads come from memory (bbolt maps
// the file), without committing. Each sub-benchmark plans the same delivery repeatedly
// against the state the previous step committed. decodes/op is the payload decodes per
// delivery: one (TestOneDecodePerDelivery holds the whole path, announcements included,
// to it).
//
//	go test ./internal/processing -run '^$' -bench Plan -benchmem
func BenchmarkPlan(b *testing.B) {
	s := embeddedStores(b)
	ctx := context.Background()
	engine := &jobs.Engine{Store: s.Jobs, Pools: []jobs.Pool{{Name: "k8s", Labels: []string{"k8s", "linux"}, MaxRunners: 3}}, Step: time.Minute}
	if err := s.Jobs.Commit(ctx, &jobs.Change{Runners: []*jobs.Runner{{Name: "spare", Pool: "k8s", State: jobs.RunnerIdle}}}); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	labels := []string{"self-hosted", "k8s"}
	steps := []struct {
		name    string
		payload []byte
	}{
		{"workflow_job.queued", testenv.JobPayload(b, testenv.Job{ID: 77, Labels: labels, Status: string(jobs.StatusQueued), Runner: "", Conclusion: "", Created: now, At: now})},
		{"workflow_job.in_progress", testenv.JobPayload(b, testenv.Job{ID: 77, Labels: labels, Status: string(jobs.StatusInProgress), Runner: "spare", Conclusion: "", Created: now, At: now})},
		{"workflow_job.completed", testenv.JobPayload(b, testenv.Job{ID: 77, Labels: labels, Status: string(jobs.StatusCompleted), Runner: "spare", Conclusion: "success", Created: now, At: now})},
	}
	for i, step := range steps {
		rec := &delivery.Record{Key: delivery.Key{HookID: "1", DeliveryID: step.name}, Event: "workflow_job",
			ReceivedAt: now, Payload: step.payload, State: delivery.Received}
		if _, err := s.Deliveries.Create(ctx, rec); err != nil {
			b.Fatal(err)
		}
		b.Run(step.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(step.payload)))
			decodes := jobs.PayloadDecodes()
			for b.Loop() {
				if _, err := engine.Plan(ctx, rec); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(jobs.PayloadDecodes()-decodes)/float64(b.N), "decodes/op")
		})
		plan, err := engine.Plan(ctx, rec)
		if err != nil {
			b.Fatal(err)
		}
		plan.Change.Finish = &jobs.Finish{Key: rec.Key, Event: rec.Event, State: plan.State, Outcome: plan.Outcome.Text(), At: now, ReceivedAt: now}
		if err := s.Jobs.Commit(ctx, &plan.Change); err != nil {
			b.Fatalf("step %d: %v", i, err)
		}
	}
}
