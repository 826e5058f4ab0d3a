package processing_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/testenv"
)

// requestCounter counts DynamoDB requests by operation.
type requestCounter struct {
	mu  sync.Mutex
	ops []string
}

func (c *requestCounter) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops := c.ops
	c.ops = nil
	return ops
}

func fixtureRecord(t testing.TB, file, id string) *delivery.Record {
	body, err := os.ReadFile(filepath.Join("..", "..", "testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	event, rest, _ := strings.Cut(file, ".")
	action, _, _ := strings.Cut(rest, ".")
	if action == "json" {
		action = ""
	}
	return &delivery.Record{Key: delivery.Key{HookID: "1", DeliveryID: id}, Event: event, Action: action,
		Repository: "Codertocat/Hello-World", ReceivedAt: time.Now().UTC(), Payload: body, State: delivery.Received}
}

// TestRequestsPerEventType pins what processing one delivery of each kind costs on
// DynamoDB, counted with an SDK middleware: every read is a GetItem or a Query, and
// each kind costs exactly the requests the README's Performance table states (a change
// to either must change both).
func TestRequestsPerEventType(t *testing.T) {
	env := testenv.SharedAWS(t)
	counter := &requestCounter{}
	db := env.DynamoDB(testenv.AroundEachAttempt("count", func(ctx context.Context, send func() error) error {
		counter.mu.Lock()
		counter.ops = append(counter.ops, awsmiddleware.GetOperationName(ctx))
		counter.mu.Unlock()
		return send()
	}))
	store := awsStore(env, db)
	s := Stores{Deliveries: store, Counters: store, Jobs: store}
	p, _ := newProcessor(t, s)
	p.Engine.Pools = []jobs.Pool{{Name: "k8s", Labels: []string{"k8s", "linux"}, MinIdle: 0, MaxRunners: 3}}
	ctx := context.Background()
	if err := store.Commit(ctx, &jobs.Change{Runners: []*jobs.Runner{{Name: "spare", Pool: "k8s", State: jobs.RunnerIdle}}}); err != nil {
		t.Fatal(err)
	}

	// One job's life on the idle runner "spare" (queued reserves it, in_progress makes it
	// busy, completed frees it), then the other events.
	now := time.Now().UTC()
	labels := []string{"self-hosted", "k8s"}
	job := func(status jobs.Status, runner, conclusion string) []byte {
		return testenv.JobPayload(t, testenv.Job{ID: 77, Labels: labels, Status: string(status), Runner: runner, Conclusion: conclusion, Created: now, At: now})
	}
	steps := []struct {
		file    string
		payload []byte
		want    int
	}{
		{"workflow_job.queued.json", job(jobs.StatusQueued, "", ""), 7},
		{"workflow_job.in_progress.json", job(jobs.StatusInProgress, "spare", ""), 6},
		{"workflow_job.completed.json", job(jobs.StatusCompleted, "spare", "success"), 7},
		{"workflow_run.requested.json", nil, 3},
		{"push.json", nil, 3},
		{"pull_request.opened.json", nil, 3},
		{"ping.json", nil, 2},
	}
	var report []string
	for i, step := range steps {
		rec := fixtureRecord(t, step.file, fmt.Sprintf("req-%d", i))
		if step.payload != nil {
			rec.Payload = step.payload
		}
		if _, err := store.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		counter.take()
		if err := p.Process(ctx, delivery.Message{Key: rec.Key, Event: rec.Event}); err != nil {
			t.Fatal(err)
		}
		ops := counter.take()
		for _, op := range ops {
			if op == "Scan" {
				t.Fatalf("%s: processing scanned the table", step.file)
			}
		}
		sort.Strings(ops)
		got, _ := store.Get(ctx, rec.Key)
		report = append(report, fmt.Sprintf("%-30s %d  %v  %s", rec.Event+"."+rec.Action, len(ops), ops, got.Outcome))
		if len(ops) != step.want {
			t.Errorf("%s cost %d requests (%v), want %d", step.file, len(ops), ops, step.want)
		}
	}
	t.Logf("DynamoDB requests per delivery:\n%s", strings.Join(report, "\n"))
}
