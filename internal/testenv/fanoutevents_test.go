package testenv

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/live"
)

// The FanoutFunction's event in events/: a batch of FanoutQueue, as the processor's and
// the ApiFunction's announcements arrive there.
const (
	fanoutEvent    = "fanout-sqs.json"
	fanoutQueueARN = "arn:aws:sqs:us-east-1:" + accountID + ":runnerhub-FanoutQueue-EXAMPLE"
)

// fanoutAt is when the first announced commit was made: after every webhook event.
var fanoutAt = firstDelivery.Add(3 * time.Hour)

// generateFanoutEvents returns the batch: the announcement of the queued workflow_job of
// testdata/workflow_job.queued.json (into FanoutPool's queue), a record cut short (which
// the function drops), the announcement of testdata/push.json, and that of FanoutPool's
// settings changed through the API. The announcements are made by live.Announce, as the
// functions make them.
func generateFanoutEvents(t *testing.T) map[string][]byte {
	root := RepoRoot(t)
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(root, "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var queued struct {
		WorkflowJob struct {
			ID     int64    `json:"id"`
			RunID  int64    `json:"run_id"`
			Name   string   `json:"name"`
			Labels []string `json:"labels"`
		} `json:"workflow_job"`
		Repository struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
	}
	if err := json.Unmarshal(read("workflow_job.queued.json"), &queued); err != nil {
		t.Fatal(err)
	}
	repo := queued.Repository.FullName
	job := &jobs.Job{ID: queued.WorkflowJob.ID, RunID: queued.WorkflowJob.RunID, Repository: repo, Name: queued.WorkflowJob.Name,
		Labels: queued.WorkflowJob.Labels, Status: jobs.StatusQueued, Allocation: jobs.AllocationPending, Pool: FanoutPool,
		QueuedAt: fanoutAt.Add(-time.Second), CreatedAt: fanoutAt.Add(-time.Second)}
	record := func(event, action string, payload []byte, at time.Time) *delivery.Record {
		return &delivery.Record{Key: delivery.Key{HookID: hookID, DeliveryID: uuidFor("fanout " + event)}, Event: event, Action: action,
			Repository: repo, ReceivedAt: at.Add(-time.Second), Payload: payload, State: delivery.Processed}
	}
	announce := func(c *jobs.Commit) live.Announcement {
		a, err := live.Announce(c)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	anns := []live.Announcement{
		announce(&jobs.Commit{
			Plan: &jobs.Plan{State: delivery.Processed, Job: job, Change: jobs.Change{Jobs: []*jobs.Job{job}},
				Outcome: jobs.Outcome{Code: jobs.OutcomeJobPending, Job: job.ID, Pool: FanoutPool}},
			Operation: jobs.OpDelivery, Delivery: record("workflow_job", "queued", read("workflow_job.queued.json"), fanoutAt), At: fanoutAt,
			Transitions: []jobs.Transition{{Job: job, From: jobs.StatusQueued, Own: true, Applied: true}}, Pools: []string{FanoutPool},
		}),
		announce(&jobs.Commit{Plan: &jobs.Plan{State: delivery.Processed}, Operation: jobs.OpDelivery,
			Delivery: record("push", "", read("push.json"), fanoutAt.Add(time.Second)), At: fanoutAt.Add(time.Second)}),
		{At: fanoutAt.Add(2 * time.Second), Pools: []string{FanoutPool}},
	}
	var records []sqsRecord
	for i, a := range anns {
		body, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		records = append(records, fanoutRecord("announcement "+strconv.Itoa(i), string(body), a.At))
	}
	records = slices.Insert(records, 1, fanoutRecord("malformed", `{"at":"2024-05-01T15:00:00Z","frames":[`, fanoutAt))
	return map[string][]byte{fanoutEvent: encodeEvent(t, sqsEvent{Records: records})}
}

// fanoutRecord is the record Lambda's SQS event source hands the FanoutFunction for a
// message the processor sent at sent.
func fanoutRecord(seed, body string, sent time.Time) sqsRecord {
	seed = "fanout " + seed
	return queueRecord(fanoutQueueARN, seed, seed, body, sqsAttributes(sent.Add(50*time.Millisecond), processorSenderID), nil)
}
