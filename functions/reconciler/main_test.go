package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
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
	tokenParam = "/runnerhub/github-token"
	pools      = `[{"name": "linux", "labels": ["linux"], "maxRunners": 3}]`
)

// scheduled is what EventBridge sends on the schedule.
var scheduled = []byte(`{"version":"0","id":"53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa","detail-type":"Scheduled Event","source":"aws.events",` +
	`"account":"123456789012","time":"2026-12-01T10:00:00Z","region":"us-east-1","resources":["arn:aws:events:us-east-1:123456789012:rule/Reconcile"],"detail":{}}`)

// harness is one set of the template's resources in moto, a fake GitHub whose hook
// delivers to the webhook handler on those resources, and the processor on them.
type harness struct {
	t      *testing.T
	env    *testenv.AWS
	fake   *fakegithub.Server
	store  *awsstore.Store
	engine *jobs.Engine
	proc   *processing.Processor
	queue  *sqs.Client
}

func newHarness(t *testing.T) *harness {
	env := testenv.SharedAWS(t)
	fake := fakegithub.Start(t)
	fake.AddInstallation("octo")
	fake.Token = "github_pat_aws_test"
	params := ssm.NewFromConfig(env.Config)
	for name, value := range map[string]string{keyParam: string(fake.PrivateKeyPEM), tokenParam: fake.Token} {
		if _, err := params.PutParameter(t.Context(), &ssm.PutParameterInput{
			Name: aws.String(name), Type: ssmtypes.ParameterTypeSecureString, Value: aws.String(value), Overwrite: aws.Bool(true),
		}); err != nil {
			t.Fatal(err)
		}
	}
	queue := sqs.NewFromConfig(env.Config)
	store := awsstore.NewStore(dynamodb.NewFromConfig(env.Config), s3.NewFromConfig(env.Config, func(o *s3.Options) { o.UsePathStyle = true }),
		env.EventsTable, env.PayloadBucket, 24*time.Hour)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// GitHub's deliveries reach the same handler the WebhookFunction serves.
	ing := httptest.NewServer(&ingest.Handler{Parser: &webhook.Parser{Verifier: webhook.NewVerifier(secret, "")},
		Store: store, Queue: awsstore.NewQueue(queue, env.EventsQueueURL), MaxBodyBytes: 25 << 20, Log: log, Now: time.Now})
	t.Cleanup(ing.Close)
	fake.AddHook(hook, 12, secret, fakegithub.HTTPTarget(ing.URL))
	p, err := jobs.ParsePools([]byte(pools))
	if err != nil {
		t.Fatal(err)
	}
	engine := &jobs.Engine{Store: store, Pools: p}
	return &harness{t: t, env: env, fake: fake, store: store, engine: engine, queue: queue,
		proc: &processing.Processor{Deliveries: store, Counters: store, Engine: engine,
			Signals: awsstore.NewSignals(queue, env.DemandQueueURL), Log: log, Now: time.Now}}
}

// drain processes what waits on the events queue, as the ProcessorFunction would, and
// returns the keys it found.
func (h *harness) drain() map[delivery.Key]bool {
	h.t.Helper()
	got := map[delivery.Key]bool{}
	for {
		out, err := h.queue.ReceiveMessage(h.t.Context(), &sqs.ReceiveMessageInput{QueueUrl: &h.env.EventsQueueURL, MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}})
		if err != nil {
			h.t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return got
		}
		var batch events.SQSEvent
		for _, m := range out.Messages {
			batch.Records = append(batch.Records, events.SQSMessage{MessageId: aws.ToString(m.MessageId), Body: aws.ToString(m.Body)})
			var msg delivery.Message
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &msg); err != nil {
				h.t.Fatal(err)
			}
			got[msg.Key] = true
		}
		if resp, err := h.proc.HandleSQS(h.t.Context(), batch); err != nil || len(resp.BatchItemFailures) > 0 {
			h.t.Fatalf("processing: %v %+v", err, resp)
		}
	}
}

// job delivers one workflow_job event of job id through the hook and processes it.
func (h *harness) job(id int64, status, runner string, created time.Time) {
	h.t.Helper()
	h.fake.Deliver(hook, "workflow_job", testenv.JobPayload(h.t, testenv.Job{ID: id, Labels: []string{"linux"}, Status: status,
		Runner: runner, Repository: "octo/app", Created: created, At: created}), fakegithub.Delivered)
	h.drain()
}

func (h *harness) register(name string) {
	h.t.Helper()
	if _, _, err := h.engine.RegisterRunner(h.t.Context(), jobs.RunnerSpec{Name: name, Pool: "linux"}, time.Now().Add(-time.Minute)); err != nil {
		h.t.Fatal(err)
	}
}

func invoke(t *testing.T, fn *testenv.Lambda) reconcile.Report {
	t.Helper()
	var rep reconcile.Report
	if err := json.Unmarshal(fn.Invoke(t, scheduled), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestReconcilerFunction runs the built bootstrap under aws-lambda-rie against moto and
// the fake GitHub, with the credentials read from SSM SecureStrings at cold start.
func TestReconcilerFunction(t *testing.T) {
	bootstrap := testenv.BuildFunction(t, "ReconcilerFunction")
	created := time.Now().Add(-time.Minute)
	appAuth := []string{"RUNNERHUB_GITHUB_APP_ID=424242", "RUNNERHUB_GITHUB_APP_PRIVATE_KEY_PARAMETER=" + keyParam}
	for _, tc := range []struct {
		name string
		env  []string
		// setup prepares GitHub and RunnerHub before the first run.
		setup func(h *harness)
		// check asserts the first run's report and its effects; a second run (after
		// pause, when set) must find nothing more to do.
		check func(t *testing.T, h *harness, first reconcile.Report)
		pause time.Duration
		// redeliveries is what GitHub must have been asked for over the runs.
		redeliveries int
	}{
		{"dropped delivery redelivered and a lost completed applied, as the App", appAuth, func(h *harness) {
			h.register("linux-1")
			h.job(601, "queued", "", created)
			h.job(601, "in_progress", "linux-1", created)
			h.fake.PutJob("octo/app", fakegithub.Job{ID: 601, RunID: 5000 + 601%7, Name: "job-601", Status: "completed", Conclusion: "success",
				Labels: []string{"linux"}, CreatedAt: created, StartedAt: created, CompletedAt: time.Now(), RunnerID: 7, RunnerName: "linux-1"})
			h.fake.Deliver(hook, "workflow_job", testenv.JobPayload(h.t, testenv.Job{ID: 602, Labels: []string{"linux"}, Status: "queued",
				Repository: "octo/app", Created: created}), fakegithub.Dropped)
		}, func(t *testing.T, h *harness, rep reconcile.Report) {
			if rep.Redelivered != 1 || rep.JobsChecked != 1 || rep.JobsApplied != 1 || len(rep.Errors) > 0 {
				t.Fatalf("report %+v; want one redelivery and job 601 applied", rep)
			}
			if h.fake.TokensIssued() == 0 {
				t.Fatal("no installation token minted: the App's key from SSM was not used")
			}
			keys := h.drain()
			if !keys[delivery.Key{HookID: reconcile.Hook, DeliveryID: "reconcile-601-completed"}] || len(keys) != 2 {
				t.Fatalf("queued after the run: %v; want the redelivery and reconcile-601-completed", keys)
			}
			if j, err := h.store.Job(t.Context(), 601); err != nil || j.Status != jobs.StatusCompleted {
				t.Fatalf("job 601: %+v %v, want completed", j, err)
			}
			// Freed by 601, linux-1 takes the redelivered job 602.
			if r, err := h.store.Runner(t.Context(), "linux-1"); err != nil || r.State != jobs.RunnerReserved || r.JobID != 602 {
				t.Fatalf("runner linux-1: %+v %v, want reserved for job 602", r, err)
			}
			if j, err := h.store.Job(t.Context(), 602); err != nil || j.Status != jobs.StatusQueued {
				t.Fatalf("redelivered job 602: %+v %v", j, err)
			}
		}, 0, 1},
		{"late acknowledgement counted, not redelivered, with a token from SSM", []string{"RUNNERHUB_GITHUB_TOKEN_PARAMETER=" + tokenParam}, func(h *harness) {
			h.fake.Deliver(hook, "workflow_job", testenv.JobPayload(h.t, testenv.Job{ID: 611, Labels: []string{"linux"}, Status: "queued",
				Repository: "octo/app", Created: time.Now()}), fakegithub.Late)
		}, func(t *testing.T, h *harness, rep reconcile.Report) {
			if rep.LateAcks != 1 || rep.Redelivered != 0 || h.fake.Redeliveries(hook) != 0 || len(rep.Errors) > 0 {
				t.Fatalf("report %+v, %d redeliveries; want one late acknowledgement and none", rep, h.fake.Redeliveries(hook))
			}
		}, 0, 0},
		{"a job GitHub no longer has is abandoned and frees its runner", appAuth, func(h *harness) {
			h.register("linux-1")
			h.job(621, "queued", "", created)
		}, func(t *testing.T, h *harness, rep reconcile.Report) {
			if rep.JobsApplied != 1 || len(rep.Errors) > 0 {
				t.Fatalf("report %+v", rep)
			}
			h.drain()
			j, err := h.store.Job(t.Context(), 621)
			if err != nil || j.Status != jobs.StatusCompleted || j.Allocation != jobs.AllocationAbandoned || j.Conclusion != reconcile.ConclusionAbandoned {
				t.Fatalf("job 621: %+v %v", j, err)
			}
			if r, err := h.store.Runner(t.Context(), "linux-1"); err != nil || r.State != jobs.RunnerIdle {
				t.Fatalf("runner linux-1: %+v %v, want idle", r, err)
			}
		}, 0, 0},
		{"runners: import and retire", append([]string{"RUNNERHUB_GITHUB_RUNNER_SCOPE=org/octo", "RUNNERHUB_GITHUB_IMPORT_RUNNERS=1"}, appAuth...), func(h *harness) {
			h.register("gone-1")
			h.fake.AddRunner("org/octo", "static-1", []string{"self-hosted", "linux"}, "online", false)
		}, func(t *testing.T, h *harness, rep reconcile.Report) {
			if rep.RunnersImported != 1 || rep.RunnersRetired != 1 || len(rep.Errors) > 0 {
				t.Fatalf("report %+v", rep)
			}
			if r, err := h.store.Runner(t.Context(), "static-1"); err != nil || r.Pool != "linux" {
				t.Fatalf("static-1: %+v %v", r, err)
			}
			if _, err := h.store.Runner(t.Context(), "gone-1"); err == nil {
				t.Fatal("gone-1 still held")
			}
		}, 0, 0},
		{"GitHub 5xx: the next run redelivers", appAuth, func(h *harness) {
			h.fake.Deliver(hook, "ping", []byte(`{"zen":"Design for failure.","hook_id":12}`), fakegithub.Dropped)
			h.fake.FailNext(1, http.StatusServiceUnavailable)
		}, func(t *testing.T, h *harness, rep reconcile.Report) {
			if rep.Redelivered != 0 || len(rep.Errors) == 0 {
				t.Fatalf("report %+v, want the 503 reported", rep)
			}
		}, 0, 1},
		{"rate limit spent: paused, then resumed", appAuth, func(h *harness) {
			h.fake.Deliver(hook, "ping", []byte(`{"zen":"Design for failure.","hook_id":12}`), fakegithub.Dropped)
			// The budget runs out within the run (installation lookup, token, listing...).
			h.fake.SetRateLimit(5000, 2, time.Now().Add(2*time.Second))
		}, func(t *testing.T, h *harness, rep reconcile.Report) {
			if rep.Redelivered != 0 || rep.PausedUntil.IsZero() {
				t.Fatalf("report %+v, want a pause", rep)
			}
		}, 2 * time.Second, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			tc.setup(h)
			time.Sleep(1100 * time.Millisecond) // RUNNERHUB_RECONCILE_AFTER=1s
			fn := testenv.StartLambda(t, bootstrap, append(append(h.env.Env(),
				"RUNNERHUB_GITHUB_API_URL="+h.fake.URL, "RUNNERHUB_GITHUB_HOOKS="+hook,
				"RUNNERHUB_RECONCILE_AFTER=1s", "RUNNERHUB_POOLS="+pools), tc.env...))
			first := invoke(t, fn)
			tc.check(t, h, first)
			time.Sleep(tc.pause)
			second := invoke(t, fn)
			if len(second.Errors) > 0 || second.JobsApplied != 0 || second.RunnersImported != 0 || second.RunnersRetired != 0 {
				t.Fatalf("second run: %+v", second)
			}
			if got := h.fake.Redeliveries(hook); first.Redelivered+second.Redelivered != got || got != tc.redeliveries {
				t.Fatalf("redeliveries reported %d+%d, GitHub got %d, want %d", first.Redelivered, second.Redelivered, got, tc.redeliveries)
			}
			if third := invoke(t, fn); third.Redelivered != 0 || third.LateAcks != 0 {
				t.Fatalf("third run: %+v, want nothing to do", third)
			}
		})
	}
}

// Without credentials the function does nothing and says so.
func TestReconcilerFunctionWithoutCredentials(t *testing.T) {
	bootstrap := testenv.BuildFunction(t, "ReconcilerFunction")
	env := testenv.SharedAWS(t)
	fn := testenv.StartLambda(t, bootstrap, env.Env())
	if rep := invoke(t, fn); !rep.Disabled {
		t.Fatalf("report %+v, want disabled", rep)
	}
}
