package standalone

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/ingest"
)

// The fleet end to end on the local stack: a queued job waits in its pool, a runner
// registered over the API takes it, and /metrics counts all of it.
func TestFleetEndToEnd(t *testing.T) {
	const token = "local-fleet-token-0123456789"
	s, base := startFleetStack(t, token)
	call := func(method, path, body string) (int, string) {
		t.Helper()
		return apiCall(t, base, token, method, path, body)
	}

	// workflow_job.queued.json: job 289782451 of Codertocat/Hello-World, ubuntu-latest.
	status, _, err := Send(context.Background(), base+ingest.Path, testSecret, "workflow_job", "fleet-1", fixture(t, "workflow_job.queued.json"))
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("send: %d %v", status, err)
	}
	waitState(t, s, delivery.Key{HookID: "1", DeliveryID: "fleet-1"}, delivery.Processed) // Send names hook 1

	code, body := call(http.MethodGet, "/api/jobs?status=pending", "")
	if code != http.StatusOK || !strings.Contains(body, `"id":289782451`) || !strings.Contains(body, `"allocation":"pending"`) {
		t.Fatalf("pending jobs: %d %s", code, body)
	}
	code, body = call(http.MethodPost, "/api/runners", `{"name": "ubuntu-1", "pool": "ubuntu"}`)
	var registered struct {
		Data struct {
			State string `json:"state"`
			JobID int64  `json:"jobId"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &registered); err != nil || code != http.StatusCreated ||
		registered.Data.State != "reserved" || registered.Data.JobID != 289782451 {
		t.Fatalf("register: %d %s", code, body)
	}

	code, body = call(http.MethodGet, "/metrics", "")
	for _, want := range []string{
		`github_jobs_queued_total{repository="Codertocat/Hello-World"} 1`,
		`webhook_events_total{event="workflow_job",status="processed"} 1`,
		`webhook_processing_duration_seconds_count{event="workflow_job"} 1`,
		`runnerhub_pool_runners{pool="ubuntu",state="reserved"} 1`,
		`runnerhub_pool_pending_jobs{pool="ubuntu"} 0`,
		`webhook_queue_depth{queue="events"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %s", code, want)
		}
	}
}
