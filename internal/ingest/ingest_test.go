package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/ingest"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/storage/embedded"
	"github.com/runnerhub/webhooks/internal/testenv"
	"github.com/runnerhub/webhooks/internal/webhook"
)

const secret = "ingest-test-secret"

// recorder wraps the real embedded adapters, counting writes and injecting failures.
type recorder struct {
	delivery.Store
	queue    *embedded.Queue
	mu       sync.Mutex
	creates  int
	enqueued []delivery.Message
	storeErr error
	queueErr error
}

func (r *recorder) Create(ctx context.Context, rec *delivery.Record) (*delivery.Record, error) {
	r.mu.Lock()
	r.creates++
	err := r.storeErr
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return r.Store.Create(ctx, rec)
}

func (r *recorder) Enqueue(ctx context.Context, m delivery.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.queueErr != nil {
		return r.queueErr
	}
	r.enqueued = append(r.enqueued, m)
	return r.queue.Enqueue(ctx, m)
}

type counter struct {
	mu       sync.Mutex
	outcomes map[string]int
	reasons  map[string]int
}

func (c *counter) Observe(event, outcome, reason string, _ time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.outcomes[outcome]++
	if reason != "" {
		c.reasons[reason]++
	}
}

type fixture struct {
	handler *ingest.Handler
	rec     *recorder
	metrics *counter
	logs    *bytes.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := testenv.Embedded(t)
	rec := &recorder{Store: db.Store(), queue: db.Queue(5)}
	logs := &bytes.Buffer{}
	m := &counter{outcomes: map[string]int{}, reasons: map[string]int{}}
	h := &ingest.Handler{
		Parser:       &webhook.Parser{Verifier: webhook.NewVerifier(secret, "previous-"+secret)},
		Store:        rec,
		Queue:        rec,
		MaxBodyBytes: 64 << 10,
		Log:          slog.New(slog.NewJSONHandler(logs, nil)),
		Metrics:      m,
		Now:          func() time.Time { return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC) },
	}
	return &fixture{handler: h, rec: rec, metrics: m, logs: logs}
}

func fixtureBody(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type delivered struct {
	status int
	body   map[string]any
}

func (f *fixture) post(t *testing.T, body []byte, headers map[string]string) delivered {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, ingest.Path, bytes.NewReader(body))
	for k, v := range headers {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, req)
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("response is not JSON: %q", w.Body.String())
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q", ct)
	}
	return delivered{status: w.Code, body: out}
}

func signed(body []byte, event, id string) map[string]string {
	return map[string]string{
		"X-GitHub-Event": event, "X-GitHub-Delivery": id, "X-GitHub-Hook-ID": "4242",
		"X-GitHub-Hook-Installation-Target-Type": "repository", "X-GitHub-Hook-Installation-Target-ID": "186853002",
		"X-Hub-Signature-256": webhook.Sign(secret, body), "Content-Type": "application/json",
		"User-Agent": "GitHub-Hookshot/abc",
	}
}

func TestAcceptsAndRecords(t *testing.T) {
	f := newFixture(t)
	body := fixtureBody(t, "workflow_job.queued.json")
	got := f.post(t, body, signed(body, "workflow_job", "d-1"))
	if got.status != http.StatusAccepted || got.body["success"] != true || got.body["deliveryId"] != "d-1" {
		t.Fatalf("got %d %v", got.status, got.body)
	}
	rec, err := f.rec.Store.Get(context.Background(), delivery.Key{HookID: "4242", DeliveryID: "d-1"})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Event != "workflow_job" || rec.Action != "queued" || rec.Repository == "" ||
		rec.InstallationTargetType != "repository" || rec.InstallationTargetID != "186853002" ||
		rec.State != delivery.Received || !bytes.Equal(rec.Payload, body) {
		t.Fatalf("record %+v", rec)
	}
	if len(f.rec.enqueued) != 1 || f.rec.enqueued[0].DeliveryID != "d-1" {
		t.Fatalf("enqueued %v", f.rec.enqueued)
	}
}

func TestPingAnswersPong(t *testing.T) {
	f := newFixture(t)
	body := fixtureBody(t, "ping.json")
	got := f.post(t, body, signed(body, "ping", "p-1"))
	if got.status != http.StatusAccepted || got.body["message"] != "pong" {
		t.Fatalf("got %d %v", got.status, got.body)
	}
}

func TestAcceptsFormEncodedAndPreviousSecret(t *testing.T) {
	f := newFixture(t)
	payload := fixtureBody(t, "push.json")
	body := []byte("payload=" + url.QueryEscape(string(payload)))
	h := signed(body, "push", "f-1")
	h["Content-Type"] = "application/x-www-form-urlencoded"
	h["X-Hub-Signature-256"] = webhook.Sign("previous-"+secret, body)
	if got := f.post(t, body, h); got.status != http.StatusAccepted {
		t.Fatalf("got %d %v", got.status, got.body)
	}
	rec, err := f.rec.Store.Get(context.Background(), delivery.Key{HookID: "4242", DeliveryID: "f-1"})
	if err != nil || !bytes.Equal(rec.Payload, payload) {
		t.Fatalf("form payload not stored as the JSON document: %v", err)
	}
}

func TestRejectionsWriteNothing(t *testing.T) {
	body := fixtureBody(t, "workflow_job.queued.json")
	big := append([]byte(`{"pad":"`), bytes.Repeat([]byte("x"), 70<<10)...)
	big = append(big, `"}`...)
	cases := []struct {
		name   string
		body   []byte
		edit   func(h map[string]string)
		status int
		reason string
	}{
		{"missing event", body, func(h map[string]string) { delete(h, "X-GitHub-Event") }, 400, "missing_event"},
		{"missing delivery", body, func(h map[string]string) { delete(h, "X-GitHub-Delivery") }, 400, "missing_delivery"},
		{"bad delivery id", body, func(h map[string]string) { h["X-GitHub-Delivery"] = "a b" }, 400, "bad_delivery"},
		{"missing signature", body, func(h map[string]string) { delete(h, "X-Hub-Signature-256") }, 401, "missing_signature"},
		{"bad signature", body, func(h map[string]string) { h["X-Hub-Signature-256"] = webhook.Sign("nope", body) }, 401, "bad_signature"},
		{"tampered body", append(bytes.Clone(body), ' '), nil, 401, "bad_signature"},
		{"malformed json", []byte(`{"action":"queued"`), nil, 400, "malformed_json"},
		{"text/plain", body, func(h map[string]string) { h["Content-Type"] = "text/plain" }, 415, "unsupported_content_type"},
		{"too large", big, nil, 413, "body_too_large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			h := signed(body, "workflow_job", "r-1")
			if c.name != "tampered body" {
				h["X-Hub-Signature-256"] = webhook.Sign(secret, c.body)
			}
			if c.edit != nil {
				c.edit(h)
			}
			got := f.post(t, c.body, h)
			errBody, _ := got.body["error"].(map[string]any)
			if got.status != c.status || got.body["success"] != false || errBody["code"] != c.reason || errBody["message"] == "" {
				t.Fatalf("got %d %v, want %d %s", got.status, got.body, c.status, c.reason)
			}
			if f.rec.creates != 0 || len(f.rec.enqueued) != 0 {
				t.Fatalf("a rejected delivery wrote: %d creates, %d enqueued", f.rec.creates, len(f.rec.enqueued))
			}
			if f.metrics.reasons[c.reason] != 1 || f.metrics.outcomes[ingest.OutcomeRejected] != 1 {
				t.Fatalf("rejection not counted: %v %v", f.metrics.reasons, f.metrics.outcomes)
			}
			if !strings.Contains(f.logs.String(), `"reason":"`+c.reason+`"`) {
				t.Fatalf("rejection not logged: %s", f.logs.String())
			}
		})
	}
}

func TestTooLargeWithoutContentLength(t *testing.T) {
	f := newFixture(t)
	big := bytes.Repeat([]byte("x"), 80<<10)
	req := httptest.NewRequest(http.MethodPost, ingest.Path, io.MultiReader(bytes.NewReader(big)))
	req.ContentLength = -1
	for k, v := range signed(big, "push", "big-1") {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, req)
	if w.Code != http.StatusRequestEntityTooLarge || f.rec.creates != 0 {
		t.Fatalf("got %d, %d creates", w.Code, f.rec.creates)
	}
}

func TestLargeBodyUnderLimitIsKept(t *testing.T) {
	f := newFixture(t)
	body := []byte(`{"action":"completed","blob":"` + strings.Repeat("0123456789", 6000) + `"}`)
	if got := f.post(t, body, signed(body, "workflow_run", "l-1")); got.status != http.StatusAccepted {
		t.Fatalf("got %d %v", got.status, got.body)
	}
	rec, err := f.rec.Store.Get(context.Background(), delivery.Key{HookID: "4242", DeliveryID: "l-1"})
	if err != nil || !bytes.Equal(rec.Payload, body) {
		t.Fatalf("large payload not kept intact: %v", err)
	}
}

func TestDeduplication(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	body := fixtureBody(t, "workflow_job.completed.json")
	h := signed(body, "workflow_job", "dup-1")
	if got := f.post(t, body, h); got.status != http.StatusAccepted {
		t.Fatalf("first: %d %v", got.status, got.body)
	}
	// Redelivered before processing: queued again so it does get processed.
	got := f.post(t, body, h)
	if got.status != http.StatusAccepted || len(f.rec.enqueued) != 2 {
		t.Fatalf("unprocessed redelivery: %d %v, %d enqueued", got.status, got.body, len(f.rec.enqueued))
	}
	key := delivery.Key{HookID: "4242", DeliveryID: "dup-1"}
	processed := &jobs.Change{Finish: &jobs.Finish{Key: key, State: delivery.Processed, Outcome: "done", At: time.Now()}}
	if err := f.rec.Store.(jobs.Store).Commit(ctx, processed); err != nil {
		t.Fatal(err)
	}
	got = f.post(t, body, h)
	if got.status != http.StatusOK || got.body["duplicate"] != true || len(f.rec.enqueued) != 2 {
		t.Fatalf("processed redelivery: %d %v, %d enqueued", got.status, got.body, len(f.rec.enqueued))
	}
	// The same delivery id sent to another hook is another delivery.
	h["X-GitHub-Hook-ID"] = "9999"
	if got := f.post(t, body, h); got.status != http.StatusAccepted || len(f.rec.enqueued) != 3 {
		t.Fatalf("other hook: %d %v", got.status, got.body)
	}
}

func TestStoreOrQueueFailureIsNeverAcknowledged(t *testing.T) {
	body := fixtureBody(t, "workflow_job.queued.json")
	for _, c := range []struct {
		name   string
		breakf func(r *recorder)
		reason string
	}{
		{"store down", func(r *recorder) { r.storeErr = errors.New("ProvisionedThroughputExceeded") }, "store_unavailable"},
		{"queue down", func(r *recorder) { r.queueErr = errors.New("AWS.SimpleQueueService.NonExistentQueue") }, "queue_unavailable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			c.breakf(f.rec)
			got := f.post(t, body, signed(body, "workflow_job", "fail-1"))
			if got.status != http.StatusServiceUnavailable || got.body["success"] != false {
				t.Fatalf("got %d %v", got.status, got.body)
			}
			// GitHub's redelivery, once the outage is over, must get the delivery through.
			f.rec.storeErr, f.rec.queueErr = nil, nil
			got = f.post(t, body, signed(body, "workflow_job", "fail-1"))
			if got.status != http.StatusAccepted || len(f.rec.enqueued) != 1 {
				t.Fatalf("redelivery after outage: %d %v, %d enqueued", got.status, got.body, len(f.rec.enqueued))
			}
		})
	}
}

func TestLogLineHasNoSecretsOrRawHeaders(t *testing.T) {
	f := newFixture(t)
	body := fixtureBody(t, "workflow_job.queued.json")
	h := signed(body, "workflow_job", "log-1")
	f.post(t, body, h)
	h["X-Hub-Signature-256"] = "sha256=" + strings.Repeat("ab", 32)
	f.post(t, body, h)
	logs := f.logs.String()
	for _, secretish := range []string{secret, webhook.Sign(secret, body), strings.Repeat("ab", 32), "GitHub-Hookshot"} {
		if strings.Contains(logs, secretish) {
			t.Fatalf("log contains %q:\n%s", secretish, logs)
		}
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(logs, "\n", 2)[0]), &line); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"delivery_id", "event", "action", "repository", "outcome", "duration"} {
		if _, ok := line[k]; !ok {
			t.Errorf("log line lacks %s: %v", k, line)
		}
	}
}

// Sixteen concurrent posts of four deliveries: every post is answered 202 (a redelivery of
// an unprocessed delivery is queued again) and four deliveries wait for processing.
func TestConcurrentDuplicates(t *testing.T) {
	f := newFixture(t)
	body := fixtureBody(t, "workflow_job.in_progress.json")
	var wg sync.WaitGroup
	statuses := make([]int, 16)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = f.post(t, body, signed(body, "workflow_job", "c-"+strconv.Itoa(i%4))).status
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusAccepted {
			t.Fatalf("request %d: %d", i, s)
		}
	}
	pending, _, err := f.rec.queue.Depth()
	if err != nil || pending != 4 || len(f.rec.enqueued) != 16 {
		t.Fatalf("pending %d (%v), enqueued %d", pending, err, len(f.rec.enqueued))
	}
}

// A rejected delivery's log line says what its headers said, so it can be matched with
// GitHub's "Recent deliveries": delivery id, hook id and event, made safe (truncated,
// unexpected bytes replaced) since nothing vouches for them. The hook id of a delivery
// without one is "-", as the API and the processor's log spell it.
func TestRejectedDeliveryLogsItsHeaders(t *testing.T) {
	body := fixtureBody(t, "workflow_job.queued.json")
	long := strings.Repeat("d", 300)
	cases := []struct {
		name                  string
		edit                  func(h map[string]string)
		delivery, hook, event string
	}{
		{"bad signature", func(h map[string]string) { h["X-Hub-Signature-256"] = webhook.Sign("nope", body) }, "log-r1", "4242", "workflow_job"},
		{"bad event", func(h map[string]string) { h["X-GitHub-Event"] = "Evil\"}{\x7fevent" }, "log-r1", "4242", "Evil????event"},
		{"long delivery id", func(h map[string]string) { h["X-GitHub-Delivery"] = long }, strings.Repeat("d", 128) + "...", "4242", "workflow_job"},
		{"no hook id", func(h map[string]string) { delete(h, "X-GitHub-Hook-ID"); h["Content-Type"] = "text/plain" }, "log-r1", "-", "workflow_job"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			h := signed(body, "workflow_job", "log-r1")
			c.edit(h)
			if got := f.post(t, body, h); got.status < 400 {
				t.Fatalf("got %d, want a rejection", got.status)
			}
			var line map[string]any
			if err := json.Unmarshal(f.logs.Bytes(), &line); err != nil {
				t.Fatalf("%v: %s", err, f.logs)
			}
			if line["outcome"] != ingest.OutcomeRejected || line["delivery_id"] != c.delivery || line["hook_id"] != c.hook ||
				line["event"] != c.event {
				t.Fatalf("log line %v, want delivery_id %q hook_id %q event %q", line, c.delivery, c.hook, c.event)
			}
		})
	}

	f := newFixture(t)
	h := signed(body, "workflow_job", "log-a1")
	delete(h, "X-GitHub-Hook-ID")
	if got := f.post(t, body, h); got.status != http.StatusAccepted {
		t.Fatalf("got %d", got.status)
	}
	if !strings.Contains(f.logs.String(), `"hook_id":"-"`) {
		t.Fatalf("accepted without a hook id: %s, want hook_id \"-\"", f.logs)
	}
}
