package main

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/runnerhub/webhooks/internal/testenv"
)

// The contract's answers to a new delivery.
const (
	acceptedMessage = "Webhook received and queued for processing"
	pongMessage     = "pong"
)

// webhookCase is what the function must make of one event in events/.
type webhookCase struct {
	file   string
	status int
	// For accepted deliveries: the answer's message and the recorded item.
	message, event, action, repository string
	// For refused ones: the error code; nothing may be written.
	errorCode string
}

var webhookCases = []webhookCase{
	{file: "webhook-workflow-job-queued.json", status: http.StatusAccepted, message: acceptedMessage,
		event: "workflow_job", action: "queued", repository: "Codertocat/Hello-World"},
	{file: "webhook-workflow-job-in-progress.json", status: http.StatusAccepted, message: acceptedMessage,
		event: "workflow_job", action: "in_progress", repository: "octo-org/example-workflow"},
	{file: "webhook-workflow-job-completed.json", status: http.StatusAccepted, message: acceptedMessage,
		event: "workflow_job", action: "completed", repository: "Codertocat/Hello-World"},
	{file: "webhook-workflow-job-waiting.json", status: http.StatusAccepted, message: acceptedMessage,
		event: "workflow_job", action: "waiting", repository: "lineville/elastic-machines-testing"},
	{file: "webhook-workflow-run-requested.json", status: http.StatusAccepted, message: acceptedMessage,
		event: "workflow_run", action: "requested", repository: "octo-org/octo-repo"},
	{file: "webhook-push.json", status: http.StatusAccepted, message: acceptedMessage,
		event: "push", repository: "Codertocat/Hello-World"},
	{file: "webhook-pull-request-opened.json", status: http.StatusAccepted, message: acceptedMessage,
		event: "pull_request", action: "opened", repository: "Codertocat/Hello-World"},
	{file: "webhook-ping.json", status: http.StatusAccepted, message: pongMessage,
		event: "ping", repository: "Octocoders/Hello-World"},
	{file: "webhook-form-encoded.json", status: http.StatusAccepted, message: acceptedMessage,
		event: "workflow_job", action: "queued", repository: "lineville/elastic-machines-testing"},
	{file: "webhook-bad-signature.json", status: http.StatusUnauthorized, errorCode: "bad_signature"},
}

// answer is the JSON body of every answer, success or failure.
type answer struct {
	Success    bool   `json:"success"`
	Message    string `json:"message"`
	DeliveryID string `json:"deliveryId"`
	Duplicate  bool   `json:"duplicate"`
	Error      struct {
		Code string `json:"code"`
	} `json:"error"`
}

// queued is a message on the events queue.
type queued = testenv.Queued

// TestWebhookFunction runs the built bootstrap under aws-lambda-rie against moto, as
// Lambda would behind API Gateway, with every webhook event in events/, twice: the first
// time each delivery is recorded and queued, the redelivery is queued again (it was never
// processed) without a second record.
func TestWebhookFunction(t *testing.T) {
	env := testenv.StartAWS(t)
	fn := testenv.StartFunction(t, "WebhookFunction", append(env.Env(), "GITHUB_WEBHOOK_SECRET="+testenv.EventsSecret))
	db := dynamodb.NewFromConfig(env.Config)
	queue := sqs.NewFromConfig(env.Config)

	var files []string
	for _, c := range webhookCases {
		files = append(files, c.file)
	}
	testenv.RequireEventsCovered(t, "webhook-*.json", files)
	var want []queued
	for _, c := range webhookCases {
		if c.errorCode == "" {
			want = append(want, c.queuedMessage(t))
		}
	}

	for _, c := range webhookCases {
		t.Run(c.file, func(t *testing.T) {
			payload, headers := readEvent(t, c.file)
			got := invoke(t, fn, payload, c.status)
			if c.errorCode != "" {
				if got.Success || got.Error.Code != c.errorCode {
					t.Errorf("answer %+v, want error %s", got, c.errorCode)
				}
				if item := getDelivery(t, db, env.EventsTable, headers); item != nil {
					t.Errorf("a refused delivery was recorded: %v", item)
				}
				return
			}
			if !got.Success || got.Message != c.message || got.DeliveryID != headers["x-github-delivery"] || got.Duplicate {
				t.Errorf("answer %+v, want success, message %q, deliveryId %s", got, c.message, headers["x-github-delivery"])
			}
			item := getDelivery(t, db, env.EventsTable, headers)
			if item == nil {
				t.Fatal("no item recorded")
			}
			wantItem := map[string]string{
				"hookId":                 headers["x-github-hook-id"],
				"deliveryId":             headers["x-github-delivery"],
				"event":                  c.event,
				"action":                 c.action,
				"repository":             c.repository,
				"installationTargetType": headers["x-github-hook-installation-target-type"],
				"installationTargetId":   headers["x-github-hook-installation-target-id"],
				"state":                  "received",
			}
			for name, want := range wantItem {
				if got := testenv.StringAttr(item, name); got != want {
					t.Errorf("item %s = %q, want %q", name, got, want)
				}
			}
		})
	}
	if got := drainQueue(t, queue, env.EventsQueueURL); !sameMessages(got, want) {
		t.Errorf("queued after the first deliveries:\n%v\nwant one message per accepted delivery:\n%v", got, want)
	}

	t.Run("redelivery", func(t *testing.T) {
		for _, c := range webhookCases {
			payload, headers := readEvent(t, c.file)
			got := invoke(t, fn, payload, c.status)
			switch {
			case c.errorCode != "":
				if got.Error.Code != c.errorCode {
					t.Errorf("%s: answer %+v, want error %s", c.file, got, c.errorCode)
				}
			case !got.Success || got.Duplicate || got.DeliveryID != headers["x-github-delivery"] || got.Message == c.message:
				t.Errorf("%s: answer %+v, want it queued again (not processed yet), not accepted anew", c.file, got)
			}
		}
		if n := countDeliveries(t, db, env.EventsTable); n != len(want) {
			t.Errorf("%d delivery items after redelivering everything, want %d: one per delivery", n, len(want))
		}
		if got := drainQueue(t, queue, env.EventsQueueURL); !sameMessages(got, want) {
			t.Errorf("queued after the redeliveries:\n%v\nwant each unprocessed delivery queued again:\n%v", got, want)
		}
	})
}

// queuedMessage is the queue message the function must send for c's delivery.
func (c webhookCase) queuedMessage(t *testing.T) queued {
	_, headers := readEvent(t, c.file)
	return queued{HookID: headers["x-github-hook-id"], DeliveryID: headers["x-github-delivery"], Event: c.event}
}

// readEvent returns an event file and the delivery headers it carries.
func readEvent(t *testing.T, file string) ([]byte, map[string]string) {
	t.Helper()
	payload := testenv.ReadEvent(t, file)
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return payload, ev.Headers
}

// invoke sends an API Gateway event and decodes the function's HTTP answer.
func invoke(t testing.TB, fn *testenv.Lambda, payload []byte, wantStatus int) answer {
	t.Helper()
	resp := fn.InvokeHTTP(t, payload)
	if resp.StatusCode != wantStatus || resp.Headers["Content-Type"] != "application/json" || resp.IsBase64Encoded {
		t.Errorf("status %d, Content-Type %q, base64 %v; want %d, application/json, false: %s",
			resp.StatusCode, resp.Headers["Content-Type"], resp.IsBase64Encoded, wantStatus, resp.Body)
	}
	var a answer
	if err := json.Unmarshal([]byte(resp.Body), &a); err != nil {
		t.Fatalf("body %q: %v", resp.Body, err)
	}
	return a
}

// getDelivery reads the delivery's item, nil when there is none.
func getDelivery(t *testing.T, db *dynamodb.Client, table string, headers map[string]string) map[string]ddbtypes.AttributeValue {
	t.Helper()
	d := queued{HookID: headers["x-github-hook-id"], DeliveryID: headers["x-github-delivery"]}
	return testenv.GetItem(t, db, table, d.DeliveryKey(), "DELIVERY")
}

// countDeliveries counts delivery items; the table also holds counters and other entities.
// A test may scan; the function never does.
func countDeliveries(t *testing.T, db *dynamodb.Client, table string) int {
	t.Helper()
	n := 0
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{
		TableName:                 &table,
		FilterExpression:          aws.String("sk = :sk"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":sk": &ddbtypes.AttributeValueMemberS{Value: "DELIVERY"}},
		ConsistentRead:            aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n += int(page.Count)
	}
	return n
}

// drainQueue receives every message visible on the queue. Received messages stay
// invisible for the queue's visibility timeout (minutes), longer than the test.
func drainQueue(t *testing.T, queue *sqs.Client, url string) []queued {
	t.Helper()
	var got []queued
	for _, m := range testenv.ReceiveAll(t, queue, url) {
		var q queued
		if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &q); err != nil {
			t.Fatalf("message %q: %v", aws.ToString(m.Body), err)
		}
		// Consumers route on the attribute without decoding the body.
		if attr := aws.ToString(m.MessageAttributes["event"].StringValue); attr != q.Event {
			t.Errorf("message %+v has event attribute %q", q, attr)
		}
		got = append(got, q)
	}
	return got
}

func sameMessages(a, b []queued) bool {
	key := func(q queued) string { return q.HookID + "/" + q.DeliveryID + "/" + q.Event }
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i, q := range a {
		ka[i] = key(q)
	}
	for i, q := range b {
		kb[i] = key(q)
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}
