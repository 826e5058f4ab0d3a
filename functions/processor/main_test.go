package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/live"
	"github.com/runnerhub/webhooks/internal/storage/awsstore"
	"github.com/runnerhub/webhooks/internal/testenv"
)

// wantState is the state a processed delivery of each event in events/ ends in.
var wantState = map[string]string{
	"ping":         "processed",
	"workflow_job": "processed",
	"workflow_run": "processed",
	"push":         "processed",
	"pull_request": "processed",
}

// queued is a message on the events queue.
type queued = testenv.Queued

// TestProcessorFunction runs the built bootstraps under aws-lambda-rie against moto: the
// webhook function records and queues every webhook event in events/, then the processor
// gets events/processor-sqs.json, which must be the batch Lambda's SQS event source would
// make of those very messages, plus one malformed record.
func TestProcessorFunction(t *testing.T) {
	env, webhookFn, processorFn := startFunctions(t)
	db := dynamodb.NewFromConfig(env.Config)
	queue := sqs.NewFromConfig(env.Config)
	root := testenv.RepoRoot(t)

	webhookEvents, err := filepath.Glob(filepath.Join(root, "events", "webhook-*.json"))
	if err != nil || len(webhookEvents) == 0 {
		t.Fatalf("no webhook events in events/ (%v)", err)
	}
	for _, file := range webhookEvents {
		status := webhookFn.InvokeHTTP(t, testenv.ReadEvent(t, filepath.Base(file))).StatusCode
		if status != http.StatusAccepted && status != http.StatusUnauthorized {
			t.Fatalf("%s: webhook answered %d", filepath.Base(file), status)
		}
	}

	batchEvent := testenv.ReadEvent(t, "processor-sqs.json")
	var batch events.SQSEvent
	if err := json.Unmarshal(batchEvent, &batch); err != nil {
		t.Fatal(err)
	}
	deliveries, wantFailures := matchQueue(t, batch, testenv.ReceiveAll(t, queue, env.EventsQueueURL))
	if len(wantFailures) != 1 {
		t.Fatalf("records %v are no message the webhook sent; want exactly the malformed one", wantFailures)
	}

	// Twice: SQS delivers at least once, so the same batch may come again; nothing may
	// change the second time.
	var first map[queued]map[string]ddbtypes.AttributeValue
	for _, round := range []string{"first", "again"} {
		t.Run(round, func(t *testing.T) {
			failed := processorFn.InvokeSQS(t, batchEvent)
			if !slices.Equal(failed, wantFailures) {
				t.Errorf("batchItemFailures %v, want exactly the malformed record %v", failed, wantFailures)
			}
			items := map[queued]map[string]ddbtypes.AttributeValue{}
			for _, d := range deliveries {
				item := getDelivery(t, db, env.EventsTable, d)
				items[d] = item
				want, ok := wantState[d.Event]
				if !ok {
					t.Fatalf("no expected state for %s deliveries: add it to wantState", d.Event)
				}
				if got := testenv.StringAttr(item, "state"); got != want {
					t.Errorf("%s delivery %s: state %q (outcome %q), want %q", d.Event, d.DeliveryID, got, testenv.StringAttr(item, "outcome"), want)
				}
				if testenv.StringAttr(item, "outcome") == "" || testenv.StringAttr(item, "processedAt") == "" {
					t.Errorf("%s delivery %s: outcome %q, processedAt %q; want both set", d.Event, d.DeliveryID,
						testenv.StringAttr(item, "outcome"), testenv.StringAttr(item, "processedAt"))
				}
				if first != nil {
					for _, name := range []string{"state", "outcome", "processedAt"} {
						if testenv.StringAttr(item, name) != testenv.StringAttr(first[d], name) {
							t.Errorf("%s delivery %s: %s changed from %q to %q on a repeated batch", d.Event, d.DeliveryID,
								name, testenv.StringAttr(first[d], name), testenv.StringAttr(item, name))
						}
					}
				}
			}
			first = items
		})
	}

	// Each delivery's live updates went to FanoutQueue once, as one announcement: the
	// repeated batch committed nothing, so it announced nothing.
	announced := map[string]int{}
	for _, m := range testenv.ReceiveAll(t, queue, env.FanoutQueueURL) {
		var a live.Announcement
		if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &a); err != nil || len(a.Frames) == 0 {
			t.Fatalf("FanoutQueue message %s: not an announcement with messages (%v)", aws.ToString(m.Body), err)
		}
		announced[a.DeliveryID]++
	}
	for _, d := range deliveries {
		if announced[d.DeliveryID] != 1 {
			t.Errorf("%s delivery %s announced %d times, want once", d.Event, d.DeliveryID, announced[d.DeliveryID])
		}
	}
	if len(announced) != len(deliveries) {
		t.Errorf("%d deliveries announced, want %d", len(announced), len(deliveries))
	}

	// The form-encoded delivery's job (labels self-hosted, k8s; action queued, status still
	// waiting) waits in the k8s pool: its demand went out once, however often the batch came.
	const formJob = 12877621891
	demands := receiveDemands(t, queue, env.DemandQueueURL)
	if len(demands) != 1 || demands[0].JobID != formJob || demands[0].Pool != "k8s" || demands[0].Resent {
		t.Fatalf("demands after the batches: %+v, want one for job %d in pool k8s", demands, formJob)
	}

	t.Run("resend demands", func(t *testing.T) {
		// A job that has waited in the k8s pool for an hour, its first demand long gone.
		const waitingJob = 4242
		store := awsstore.NewStore(env.DynamoDB(), env.S3(),
			env.EventsTable, env.PayloadBucket, time.Hour)
		queuedAt := time.Now().UTC().Add(-time.Hour)
		err := store.Commit(t.Context(), &jobs.Change{Jobs: []*jobs.Job{{ID: waitingJob, Repository: "octo/repo",
			Labels: []string{"self-hosted", "k8s"}, Status: jobs.StatusQueued, Pool: "k8s",
			Allocation: jobs.AllocationPending, QueuedAt: queuedAt,
			QueueKey: jobs.RankKey(jobs.Rank(queuedAt, 0, jobs.DefaultPriorityStep), waitingJob)}}})
		if err != nil {
			t.Fatal(err)
		}
		var result struct {
			Task string `json:"task"`
			Sent int    `json:"sent"`
		}
		answer := processorFn.Invoke(t, testenv.ReadEvent(t, "processor-resend-demands.json"))
		if err := json.Unmarshal(answer, &result); err != nil || result.Task != "resend-demands" || result.Sent != 2 {
			t.Fatalf("answer %s, want the task and sent 2", answer)
		}
		resent := map[int64]bool{}
		for _, d := range receiveDemands(t, queue, env.DemandQueueURL) {
			resent[d.JobID] = d.Pool == "k8s" && d.Resent
		}
		if len(resent) != 2 || !resent[waitingJob] || !resent[formJob] {
			t.Fatalf("demands resent (job: in k8s and marked resent): %v, want jobs %d and %d", resent, waitingJob, formJob)
		}
	})

	t.Run("redelivered after processing", func(t *testing.T) {
		resp := webhookFn.InvokeHTTP(t, testenv.ReadEvent(t, "webhook-ping.json"))
		var body struct {
			Success   bool `json:"success"`
			Duplicate bool `json:"duplicate"`
		}
		if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || !body.Success || !body.Duplicate {
			t.Errorf("answer %d %s, want 200 with duplicate true", resp.StatusCode, resp.Body)
		}
		if got := testenv.ReceiveAll(t, queue, env.EventsQueueURL); len(got) != 0 {
			t.Errorf("a processed delivery was queued again: %v", got)
		}
	})
}

// matchQueue pairs the batch's records with the messages the webhook function sent: each
// record must carry a sent message exactly as SQS would hand it over (body and checksums),
// and each sent message must be in the batch. It returns the deliveries the batch
// refers to, and the ids of the records that match no message.
func matchQueue(t *testing.T, batch events.SQSEvent, sent []sqstypes.Message) (deliveries []queued, unmatched []string) {
	t.Helper()
	byBody := map[string]sqstypes.Message{}
	for _, m := range sent {
		byBody[aws.ToString(m.Body)] = m
	}
	for _, r := range batch.Records {
		m, ok := byBody[r.Body]
		if !ok {
			unmatched = append(unmatched, r.MessageId)
			continue
		}
		delete(byBody, r.Body)
		if r.Md5OfBody != aws.ToString(m.MD5OfBody) || r.Md5OfMessageAttributes != aws.ToString(m.MD5OfMessageAttributes) {
			t.Errorf("record %s: md5OfBody %s, md5OfMessageAttributes %s; SQS computed %s, %s", r.MessageId,
				r.Md5OfBody, r.Md5OfMessageAttributes, aws.ToString(m.MD5OfBody), aws.ToString(m.MD5OfMessageAttributes))
		}
		if got, want := aws.ToString(r.MessageAttributes["event"].StringValue), aws.ToString(m.MessageAttributes["event"].StringValue); got != want {
			t.Errorf("record %s: event attribute %q, sent %q", r.MessageId, got, want)
		}
		var d queued
		if err := json.Unmarshal([]byte(r.Body), &d); err != nil {
			t.Fatalf("record %s: %v", r.MessageId, err)
		}
		deliveries = append(deliveries, d)
	}
	for body := range byBody {
		t.Errorf("the webhook function queued %s, which the batch lacks", body)
	}
	return deliveries, unmatched
}

// startFunctions starts moto and the built webhook and processor bootstraps under
// aws-lambda-rie, the processor with a pool k8s without runners (for the form-encoded
// delivery's job).
func startFunctions(t *testing.T) (*testenv.AWS, *testenv.Lambda, *testenv.Lambda) {
	t.Helper()
	env := testenv.StartAWS(t)
	fnEnv := append(env.Env(), "GITHUB_WEBHOOK_SECRET="+testenv.EventsSecret)
	webhookFn := testenv.StartFunction(t, "WebhookFunction", fnEnv)
	processorFn := testenv.StartFunction(t, "ProcessorFunction",
		append(fnEnv, `RUNNERHUB_POOLS=[{"name":"k8s","labels":["k8s"],"maxRunners":2}]`))
	return env, webhookFn, processorFn
}

// demand is a scale-up demand on the demand queue (README "Jobs, pools and runners").
type demand struct {
	Pool   string `json:"pool"`
	JobID  int64  `json:"jobId"`
	Resent bool   `json:"resent"`
}

// receiveDemands drains the demand queue and returns its demands; other signals
// (pre-warm) are skipped.
func receiveDemands(t *testing.T, queue *sqs.Client, url string) []demand {
	t.Helper()
	var out []demand
	for _, m := range testenv.ReceiveAll(t, queue, url) {
		if attr, ok := m.MessageAttributes["type"]; !ok || aws.ToString(attr.StringValue) != "demand" {
			continue
		}
		var d demand
		if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &d); err != nil {
			t.Fatalf("demand %q: %v", aws.ToString(m.Body), err)
		}
		out = append(out, d)
	}
	return out
}

func getDelivery(t *testing.T, db *dynamodb.Client, table string, d queued) map[string]ddbtypes.AttributeValue {
	t.Helper()
	item := testenv.GetItem(t, db, table, d.DeliveryKey(), "DELIVERY")
	if item == nil {
		t.Fatalf("%s delivery %s was not recorded", d.Event, d.DeliveryID)
	}
	return item
}
