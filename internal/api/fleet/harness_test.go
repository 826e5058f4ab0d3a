package fleet_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/api/apitest"
	"github.com/runnerhub/webhooks/internal/api/fleet"
	"github.com/runnerhub/webhooks/internal/auth"
	"github.com/runnerhub/webhooks/internal/httpapi"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/jobs/jobstest"
	"github.com/runnerhub/webhooks/internal/testenv"
)

const token = "fleet-test-token-0123456789abcdef"

// configured are the pools the tests' configuration (RUNNERHUB_POOLS) holds, read as
// the configuration is, with defaults for the fields it leaves out.
var configured = func() []jobs.Pool {
	pools, err := jobs.ParsePools([]byte(`[
		{"name": "gpu", "labels": ["linux", "gpu"], "maxRunners": 2},
		{"name": "linux", "labels": ["linux", "x64"], "minIdle": 1, "maxRunners": 3}]`))
	if err != nil {
		panic(err)
	}
	return pools
}()

// env is the fleet API on one store, with a clock the test moves.
type env struct {
	store   jobs.Store
	handler http.Handler
	signals *jobstest.Signals
	mu      sync.Mutex
	now     time.Time
	// requests counts DynamoDB requests by operation; nil for the embedded store.
	requests *apitest.RequestCounter
}

// forEachStore runs f against the embedded store and against DynamoDB on moto, each
// fresh.
func forEachStore(t *testing.T, f func(t *testing.T, e *env)) {
	apitest.ForEachStore(t, newEmbedded, newDynamoDB, f)
}

func newEmbedded(t *testing.T) *env { return newEnv(t, testenv.Embedded(t).Store()) }

func newDynamoDB(t *testing.T) *env {
	store, counter := apitest.AWSStore(testenv.SharedAWS(t), 24*time.Hour)
	e := newEnv(t, store)
	e.requests = counter
	return e
}

func newEnv(t *testing.T, store jobs.Store) *env {
	tokens, err := auth.Parse(token)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: store, signals: &jobstest.Signals{}, now: time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)}
	e.handler = httpapi.New(tokens, fleet.Routes(fleet.Deps{
		Engine: &jobs.Engine{Store: store, Pools: configured, Step: time.Minute,
			Subscribers: []jobs.Subscriber{&jobs.SignalSender{Signals: e.signals, Log: slog.New(slog.DiscardHandler)}}},
		OfflineAfter: 5 * time.Minute,
		Now:          e.clock,
	}))
	return e
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

// response is an answer's envelope.
type response struct {
	status int
	apitest.Envelope
}

// data decodes the data of a successful answer into v.
func (r response) data(t *testing.T, v any) {
	t.Helper()
	if !r.Success {
		t.Fatalf("answer %d %s: %s, want success", r.status, r.Error.Code, r.Error.Message)
	}
	if err := json.Unmarshal(r.Data, v); err != nil {
		t.Fatalf("data %s: %v", r.Data, err)
	}
}

// request sends a request with the API token; body is JSON-encoded unless it is a
// string (sent as is, as application/json).
func (e *env) request(t *testing.T, method, path string, body any) response {
	t.Helper()
	return e.send(t, method, path, body, map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"})
}

func (e *env) send(t *testing.T, method, path string, body any, headers map[string]string) response {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req := httptest.NewRequestWithContext(t.Context(), method, path, r)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, req)
	resp := response{status: w.Code}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatalf("%s %s: answer %d is not JSON: %q", method, path, w.Code, w.Body)
	}
	return resp
}

// expect checks an answer's status and, for failures, its error code.
func expect(t *testing.T, what string, r response, status int, code string) {
	t.Helper()
	if r.status != status || r.Error.Code != code || r.Success != (code == "") {
		t.Errorf("%s: %d %q (%s), want %d %q", what, r.status, r.Error.Code, r.Error.Message, status, code)
	}
}

// commit writes jobs and runners straight to the store, as the processor would have.
func (e *env) commit(t *testing.T, c *jobs.Change) {
	t.Helper()
	if err := e.store.Commit(t.Context(), c); err != nil {
		t.Fatal(err)
	}
}
