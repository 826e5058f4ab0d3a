package deliveries_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/runnerhub/webhooks/internal/api/apitest"
	"github.com/runnerhub/webhooks/internal/api/deliveries"
	"github.com/runnerhub/webhooks/internal/auth"
	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/httpapi"
	"github.com/runnerhub/webhooks/internal/ingest"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/storage/awsstore"
	"github.com/runnerhub/webhooks/internal/testenv"
	"github.com/runnerhub/webhooks/internal/webhook"
)

const (
	token     = "deliveries-test-token-0123456789"
	secret    = "deliveries-test-webhook-secret"
	retention = 30 * 24 * time.Hour
)

// store is what a test sees of an adapter set: the ports the endpoints use, and the
// means to look behind them.
type store interface {
	delivery.Store
	delivery.Lister
	delivery.Counters
	jobs.Store
	jobs.Counters
}

// env is the API on one set of adapters, with a fixed "now".
type env struct {
	store   store
	deps    deliveries.Deps
	handler http.Handler
	now     time.Time
	// drain returns (and removes) what waits on the events queue.
	drain func(t *testing.T) []delivery.Message
	// deadLetter puts a message on the dead-letter queue, as repeated failures would.
	deadLetter func(t *testing.T, msg delivery.Message)
	// requests counts DynamoDB requests by operation; nil for the embedded store, as is
	// aws.
	requests *apitest.RequestCounter
	aws      *testenv.AWS
}

// forEachStore runs f against the embedded adapters and against DynamoDB, SQS and S3 on
// moto, each in a fresh store, in parallel with the other tests: they wait on moto, not
// on the CPU.
func forEachStore(t *testing.T, f func(t *testing.T, e *env)) {
	t.Parallel()
	apitest.ForEachStore(t, newEmbedded, newAWS, f)
}

func newEmbedded(t *testing.T) *env {
	db := testenv.Embedded(t)
	s, q := db.Store(), db.Queue(1)
	e := &env{store: s}
	e.drain = func(t *testing.T) []delivery.Message { return testenv.DrainEmbedded(t.Context(), q) }
	e.deadLetter = func(t *testing.T, msg delivery.Message) {
		e.drain(t) // the next message received is msg
		if err := q.Enqueue(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
		items, err := q.Receive(context.Background(), 1)
		if err != nil || len(items) != 1 {
			t.Fatalf("receive: %v %v", items, err)
		}
		if err := q.Nack(items[0].ID, errors.New("poison")); err != nil { // one attempt is all Queue(1) allows
			t.Fatal(err)
		}
	}
	e.build(t, q, q)
	return e
}

func newAWS(t *testing.T) *env { return newAWSOn(t, testenv.SharedAWS(t)) }

// newAWSOn is the API on a's resources.
func newAWSOn(t *testing.T, a *testenv.AWS) *env {
	s, counter := apitest.AWSStore(a, retention)
	sqsc := sqs.NewFromConfig(a.Config)
	q := awsstore.NewQueue(sqsc, a.EventsQueueURL)
	e := &env{store: s, requests: counter, aws: a}
	e.drain = func(t *testing.T) []delivery.Message {
		var out []delivery.Message
		for {
			resp, err := sqsc.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: &a.EventsQueueURL, MaxNumberOfMessages: 10})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Messages) == 0 {
				return out
			}
			for _, m := range resp.Messages {
				var msg delivery.Message
				if err := json.Unmarshal([]byte(*m.Body), &msg); err != nil {
					t.Fatal(err)
				}
				out = append(out, msg)
				if _, err := sqsc.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: &a.EventsQueueURL, ReceiptHandle: m.ReceiptHandle}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	dlq := awsstore.NewQueue(sqsc, a.EventsDLQURL)
	e.deadLetter = func(t *testing.T, msg delivery.Message) {
		if err := dlq.Enqueue(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	e.build(t, q, q.DeadLetters(a.EventsDLQURL))
	return e
}

// build wires the endpoints as the local stack and the API function do, with the real
// ingest handler for POST /api/webhooks/test.
func (e *env) build(t *testing.T, q delivery.Queue, dl delivery.DeadLetters) {
	e.now = time.Now().UTC()
	log := slog.New(slog.DiscardHandler)
	ing := &ingest.Handler{
		Parser:       &webhook.Parser{Verifier: webhook.NewVerifier(secret)},
		Store:        e.store,
		Queue:        q,
		MaxBodyBytes: 1 << 20,
		Log:          log,
		Now:          time.Now,
	}
	e.deps = deliveries.Deps{
		Store: e.store, Lister: e.store, Counters: e.store, JobCounters: e.store, Queue: q, DeadLetters: dl,
		Ingest: ing, Secret: secret, Retention: retention, Log: log,
		Now: func() time.Time { return e.now },
	}
	e.rebuild(t)
}

// rebuild serves e.deps again after a test changed them.
func (e *env) rebuild(t *testing.T) {
	tokens, err := auth.Parse(token)
	if err != nil {
		t.Fatal(err)
	}
	e.handler = httpapi.New(tokens, deliveries.Routes(e.deps))
}

// answer is a decoded response: the envelope, the raw data and the raw body.
type answer struct {
	status int
	Body   string
	apitest.Envelope
}

// call sends a request with the API token.
func (e *env) call(t *testing.T, method, target, body string) answer {
	t.Helper()
	return e.send(t, method, target, body, true)
}

func (e *env) send(t *testing.T, method, target, body string, authenticated bool) answer {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if authenticated {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, req)
	a := answer{status: w.Code, Body: w.Body.String()}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q, want application/json: %s", method, target, ct, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
		t.Fatalf("%s %s: body is not JSON: %v: %s", method, target, err, w.Body)
	}
	if a.Success != (w.Code < 300) {
		t.Fatalf("%s %s: status %d with success %v", method, target, w.Code, a.Success)
	}
	return a
}

// ok checks for a success with the given status and decodes its data into v.
func (a answer) ok(t *testing.T, status int, v any) {
	t.Helper()
	if a.status != status || !a.Success {
		t.Fatalf("status %d, want %d: %s", a.status, status, a.Body)
	}
	if v != nil {
		if err := json.Unmarshal(a.Data, v); err != nil {
			t.Fatalf("data: %v: %s", err, a.Data)
		}
	}
}

// failed checks for a failure with the given status and code, and a message containing
// every one of words.
func (a answer) failed(t *testing.T, status int, code string, words ...string) {
	t.Helper()
	if a.status != status || a.Success || a.Error.Code != code {
		t.Fatalf("status %d code %q, want %d %q: %s", a.status, a.Error.Code, status, code, a.Body)
	}
	for _, w := range words {
		if !strings.Contains(a.Error.Message, w) {
			t.Errorf("message %q does not mention %q", a.Error.Message, w)
		}
	}
}

// seedKind is one kind of delivery the seeds cycle through.
type seedKind struct{ repository, event, action string }

var seedKinds = []seedKind{
	{"octo-org/alpha", "workflow_job", "queued"},
	{"octo-org/beta", "workflow_job", "completed"},
	{"octo-org/alpha", "push", ""},
	{"Codertocat/Hello-World", "pull_request", "opened"},
	{"octo-org/beta", "workflow_run", "requested"},
	{"octo-org/alpha", "workflow_job", "in_progress"},
	{"octo-org/gamma", "ping", ""},
}

// seed records n deliveries, the ith received step×i before newest, cycling through
// seedKinds; every third is processed. It returns them newest first.
func seed(t *testing.T, s delivery.Store, n int, newest time.Time, step time.Duration) []*delivery.Record {
	t.Helper()
	recs := make([]*delivery.Record, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range recs {
		k := seedKinds[i%len(seedKinds)]
		rec := &delivery.Record{
			Key:        delivery.Key{HookID: "109948940", DeliveryID: newID(i)},
			Event:      k.event,
			Action:     k.action,
			Repository: k.repository,
			ReceivedAt: newest.Add(-time.Duration(i) * step).UTC().Truncate(time.Millisecond),
			Payload:    fmt.Appendf(nil, `{"seed":%d,"repository":{"full_name":%q}}`, i, k.repository),
			State:      delivery.Received,
		}
		recs[i] = rec
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if i%3 == 0 { // recorded finished, as the processor would have left it
				rec.State, rec.Outcome, rec.ProcessedAt = delivery.Processed, "processed: seeded", rec.ReceivedAt.Add(time.Second)
			}
			if _, err := s.Create(context.Background(), rec); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return recs
}

// newID is a delivery id unique to the test run and index.
func newID(i int) string { return fmt.Sprintf("seed-%x-%d", seedRun, i) }

var seedRun = time.Now().UnixNano() % (1 << 32)
