package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/ingest"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/processing"
	"github.com/runnerhub/webhooks/internal/reconcile"
	"github.com/runnerhub/webhooks/internal/storage/awsstore"
	"github.com/runnerhub/webhooks/internal/testenv"
	"github.com/runnerhub/webhooks/internal/testenv/fakegithub"
	"github.com/runnerhub/webhooks/internal/webhook"
)

const (
	secret     = "reconciler-test-secret"
	hook       = "repo/octo/app/12"
	keyParam   = "/runnerhub/github-app-key"
	pools      = `[{"name": "linux", "labels": ["linux"], "maxRunners": 3}]`
	strandedID = 601
)

// scheduled is what EventBridge sends on the schedule.
var scheduled = []byte(`{"version":"0","id":"53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa","detail-type":"Scheduled Event","source":"aws.events",` +
	`"account":"123456789012","time":"2026-12-01T10:00:00Z","region":"us-east-1","resources":["arn:aws:events:us-east-1:123456789012:rule/Reconcile"],"detail":{}}`)

// TestReconcilerFunction runs the built bootstrap under aws-lambda-rie against moto and
// the fake GitHub, authenticating as the GitHub App with the private key read from an
// SSM SecureString at cold start: a delivery GitHub dropped is redelivered (and recorded
// by the webhook handler on the same table and queue), and a job whose completed was
// lost is completed through the events queue, freeing its runner.
func TestReconcilerFunction(t *testing.T) {
	bootstrap := testenv.BuildFunction(t, "ReconcilerFunction")
	env := testenv.SharedAWS(t)
	ctx := context.Background()
	fake := fakegithub.Start(t)
	inst := fake.AddInstallation("octo")

	_, err := ssm.NewFromConfig(env.Config).PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String(keyParam), Type: ssmtypes.ParameterTypeSecureString, Value: aws.String(string(fake.PrivateKeyPEM)),
	})
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(env.Config)
	queue := sqs.NewFromConfig(env.Config)
	store := awsstore.NewStore(db, s3.NewFromConfig(env.Config, func(o *s3.Options) { o.UsePathStyle = true }),
		env.EventsTable, env.PayloadBucket, 24*time.Hour)
	eventsQueue := awsstore.NewQueue(queue, env.EventsQueueURL)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	// GitHub's deliveries reach the same handler the WebhookFunction serves.
	ing := httptest.NewServer(&ingest.Handler{Parser: &webhook.Parser{Verifier: webhook.NewVerifier(secret, "")},
		Store: store, Queue: eventsQueue, MaxBodyBytes: 25 << 20, Log: log, Now: time.Now})
	t.Cleanup(ing.Close)
	fake.AddHook(hook, 12, secret, fakegithub.HTTPTarget(ing.URL))

	engine := &jobs.Engine{Store: store, Pools: mustPools(t)}
	processor := &processing.Processor{Deliveries: store, Counters: store, Engine: engine,
		Signals: awsstore.NewSignals(queue, env.DemandQueueURL), Log: log, Now: time.Now}
	drain := func() []delivery.Message {
		t.Helper()
		var got []delivery.Message
		for {
			out, err := queue.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &env.EventsQueueURL, MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Messages) == 0 {
				return got
			}
			var batch events.SQSEvent
			for _, m := range out.Messages {
				batch.Records = append(batch.Records, sqsRecord(m.MessageId, m.Body))
				var msg delivery.Message
				if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &msg); err != nil {
					t.Fatal(err)
				}
				got = append(got, msg)
			}
			if resp, err := processor.HandleSQS(ctx, batch); err != nil || len(resp.BatchItemFailures) > 0 {
				t.Fatalf("processing: %v %+v", err, resp)
			}
		}
	}

	// Job 601 runs on runner linux-1; its completed is lost. GitHub has it completed.
	if _, _, err := engine.RegisterRunner(ctx, jobs.RunnerSpec{Name: "linux-1", Pool: "linux"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	created := time.Now().Add(-time.Minute)
	for _, status := range []string{"queued", "in_progress"} {
		fake.Deliver(hook, "workflow_job", testenv.JobPayload(t, testenv.Job{ID: strandedID, Labels: []string{"linux"}, Status: status,
			Runner: map[string]string{"in_progress": "linux-1"}[status], Repository: "octo/app", Created: created, At: created}), fakegithub.Delivered)
		drain()
	}
	fake.PutJob("octo/app", fakegithub.Job{ID: strandedID, RunID: 5000 + strandedID%7, Name: "job-601", Status: "completed", Conclusion: "success",
		Labels: []string{"linux"}, CreatedAt: created, StartedAt: created, CompletedAt: time.Now(), RunnerID: 7, RunnerName: "linux-1"})
	// And one queued delivery GitHub dropped.
	lost := fake.Deliver(hook, "workflow_job", testenv.JobPayload(t, testenv.Job{ID: 602, Labels: []string{"linux"}, Status: "queued",
		Repository: "octo/app", Created: created}), fakegithub.Dropped)
	time.Sleep(1100 * time.Millisecond) // RUNNERHUB_RECONCILE_AFTER=1s

	fn := testenv.StartLambda(t, bootstrap, append(env.Env(),
		"RUNNERHUB_GITHUB_API_URL="+fake.URL,
		"RUNNERHUB_GITHUB_APP_ID=424242",
		"RUNNERHUB_GITHUB_APP_PRIVATE_KEY_PARAMETER="+keyParam,
		"RUNNERHUB_GITHUB_HOOKS="+hook,
		"RUNNERHUB_RECONCILE_AFTER=1s",
		"RUNNERHUB_POOLS="+pools,
	))
	var rep reconcile.Report
	if err := json.Unmarshal(fn.Invoke(t, scheduled), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Disabled || rep.Redelivered != 1 || rep.JobsChecked != 1 || rep.JobsApplied != 1 || len(rep.Errors) > 0 {
		t.Fatalf("report %+v; want one redelivery and job %d applied", rep, strandedID)
	}
	if fake.TokensIssued() == 0 || inst == 0 {
		t.Fatal("no installation token was minted: the App's key from SSM was not used")
	}
	msgs := drain()
	keys := map[delivery.Key]bool{}
	for _, m := range msgs {
		keys[m.Key] = true
	}
	completed := delivery.Key{HookID: reconcile.Hook, DeliveryID: "reconcile-601-completed"}
	if !keys[delivery.Key{HookID: "12", DeliveryID: lost}] || !keys[completed] || len(keys) != 2 {
		t.Fatalf("queued after the cycle: %v; want the redelivery and %v", keys, completed)
	}
	job, err := store.Job(ctx, strandedID)
	if err != nil || job.Status != jobs.StatusCompleted {
		t.Fatalf("job %d: %+v %v, want completed", strandedID, job, err)
	}
	if r, err := store.Runner(ctx, "linux-1"); err != nil || r.JobID == strandedID {
		t.Fatalf("runner linux-1 still held by job %d: %+v %v", strandedID, r, err)
	}
	if j, err := store.Job(ctx, 602); err != nil || j.Status != jobs.StatusQueued {
		t.Fatalf("redelivered job 602: %+v %v", j, err)
	}

	// The next run finds nothing to do.
	var again reconcile.Report
	if err := json.Unmarshal(fn.Invoke(t, scheduled), &again); err != nil {
		t.Fatal(err)
	}
	if again.Redelivered != 0 || again.JobsApplied != 0 || len(again.Errors) > 0 {
		t.Fatalf("second run: %+v, want nothing to do", again)
	}
}

// Without credentials the function does nothing and says so.
func TestReconcilerFunctionWithoutCredentials(t *testing.T) {
	bootstrap := testenv.BuildFunction(t, "ReconcilerFunction")
	env := testenv.SharedAWS(t)
	fn := testenv.StartLambda(t, bootstrap, env.Env())
	var rep reconcile.Report
	if err := json.Unmarshal(fn.Invoke(t, scheduled), &rep); err != nil || !rep.Disabled {
		t.Fatalf("report %+v (%v), want disabled", rep, err)
	}
}

func mustPools(t *testing.T) []jobs.Pool {
	p, err := jobs.ParsePools([]byte(pools))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func sqsRecord(id, body *string) events.SQSMessage {
	return events.SQSMessage{MessageId: aws.ToString(id), Body: aws.ToString(body)}
}
