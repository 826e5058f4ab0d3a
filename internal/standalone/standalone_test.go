package standalone

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/config"
	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/ingest"
	"github.com/runnerhub/webhooks/internal/testenv"
	"github.com/runnerhub/webhooks/internal/webhook"
)

const testSecret = "local-stack-secret"

// testConfig is the local stack's configuration for a test: the test secret, data in
// dir, and the variables in extra.
func testConfig(t testing.TB, dir string, extra map[string]string) config.Config {
	env := map[string]string{"GITHUB_WEBHOOK_SECRET": testSecret, "RUNNERHUB_DATA_DIR": dir}
	maps.Copy(env, extra)
	cfg, err := config.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startFleetStack starts a local stack (startStack) with token as its admin API token and
// one pool, ubuntu, of up to two ubuntu-latest runners: the pool of the job of
// testdata/workflow_job.queued.json.
func startFleetStack(t testing.TB, token string) (*Stack, string) {
	t.Helper()
	return startStack(t, map[string]string{
		"RUNNERHUB_API_TOKENS": token,
		"RUNNERHUB_POOLS":      `[{"name": "ubuntu", "labels": ["ubuntu-latest"], "maxRunners": 2}]`,
	})
}

// startStack opens a local stack configured with extra in a fresh data directory, hands
// it to each prepare (to swap a part before anything runs), and serves it until the test
// ends; it returns the stack and its base URL.
func startStack(t testing.TB, extra map[string]string, prepare ...func(*Stack)) (*Stack, string) {
	t.Helper()
	s, err := Open(testConfig(t, t.TempDir(), extra), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range prepare {
		p(s)
	}
	t.Cleanup(func() { s.Close() }) // registered first, so it runs after serving stops
	return s, serve(t, s)
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// serve runs an opened stack on a loopback port until the test ends and returns its URL.
func serve(t testing.TB, s *Stack) string {
	t.Helper()
	base, stop := testenv.Serve(t, "127.0.0.1:0", s.Serve)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return base
}

// apiCall sends a management API request with token and returns the status and body.
func apiCall(t testing.TB, base, token, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func fixture(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func waitState(t *testing.T, s *Stack, key delivery.Key, want delivery.State) *delivery.Record {
	t.Helper()
	return poll(t, fmt.Sprintf("delivery %s in state %s", key.DeliveryID, want), func() (*delivery.Record, bool) {
		rec, err := s.db.Store().Get(context.Background(), key)
		return rec, err == nil && rec.State == want
	})
}

// poll calls get every 10 ms until it reports done, for up to 5 seconds, and returns its
// last value.
func poll[T any](t *testing.T, what string, get func() (T, bool)) T {
	t.Helper()
	var v T
	testenv.WaitUntil(t, 5*time.Second, 10*time.Millisecond, what, func() (string, bool) {
		var done bool
		v, done = get()
		return fmt.Sprintf("last %+v", v), done
	})
	return v
}

func TestEndToEndOverHTTP(t *testing.T) {
	s, base := startStack(t, nil)
	url := base + ingest.Path
	ctx := context.Background()

	status, body, err := Send(ctx, url, testSecret, "ping", "e2e-ping", fixture(t, "ping.json"))
	if err != nil || status != http.StatusAccepted || !strings.Contains(string(body), `"pong"`) {
		t.Fatalf("ping: %d %s %v", status, body, err)
	}
	status, _, err = Send(ctx, url, testSecret, "workflow_job", "e2e-job", fixture(t, "workflow_job.queued.json"))
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("job: %d %v", status, err)
	}
	waitState(t, s, delivery.Key{HookID: "1", DeliveryID: "e2e-ping"}, delivery.Processed)
	rec := waitState(t, s, delivery.Key{HookID: "1", DeliveryID: "e2e-job"}, delivery.Processed)
	if !strings.Contains(rec.Outcome, "queued") {
		t.Fatalf("outcome %q", rec.Outcome)
	}
	// A redelivery of a processed delivery changes nothing and says so.
	status, body, _ = Send(ctx, url, testSecret, "ping", "e2e-ping", fixture(t, "ping.json"))
	if status != http.StatusOK || !strings.Contains(string(body), `"duplicate":true`) {
		t.Fatalf("redelivery: %d %s", status, body)
	}
	// A wrong secret is refused.
	if status, _, _ = Send(ctx, url, "not-the-secret", "ping", "e2e-bad", fixture(t, "ping.json")); status != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %d", status)
	}
	// Unknown paths answer JSON.
	resp, err := http.Get(strings.TrimSuffix(url, ingest.Path) + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	var nf map[string]any
	json.NewDecoder(resp.Body).Decode(&nf)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || nf["success"] != false {
		t.Fatalf("unknown path: %d %v", resp.StatusCode, nf)
	}
}

// A delivery acknowledged just before the process died is processed after the next start.
func TestUnprocessedDeliveriesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, nil)
	s, err := Open(cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	body := fixture(t, "ping.json")
	req := httptest.NewRequest(http.MethodPost, ingest.Path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "ping")
	req.Header.Set("X-GitHub-Delivery", "before-crash")
	req.Header.Set("X-Hub-Signature-256", signature(body))
	w := httptest.NewRecorder()
	s.Handler.ServeHTTP(w, req) // accepted, but no consumer is running
	if w.Code != http.StatusAccepted {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	s.Close()

	s, err = Open(cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	serve(t, s)
	waitState(t, s, delivery.Key{HookID: delivery.NoHook, DeliveryID: "before-crash"}, delivery.Processed)
}

func TestGeneratedSecretIsKeptAcrossStarts(t *testing.T) {
	dir := t.TempDir()
	cfg, _ := config.FromEnv(func(k string) string { return map[string]string{"RUNNERHUB_DATA_DIR": dir}[k] })
	s, err := Open(cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	first := Secret(cfg)
	if len(first) != 64 || !strings.Contains(s.SecretSource, "generated") {
		t.Fatalf("secret %q from %q", first, s.SecretSource)
	}
	info, err := os.Stat(filepath.Join(dir, SecretFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v %v", info, err)
	}
	s, err = Open(cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if Secret(cfg) != first {
		t.Fatal("secret changed across starts")
	}
}

func signature(body []byte) string {
	return webhook.Sign(testSecret, body)
}

// A job left waiting gets its scale-up demand again while it waits (the local stack's
// demands are log lines).
func TestWaitingJobsDemandAgain(t *testing.T) {
	var logs testenv.SyncBuffer
	s, err := Open(testConfig(t, t.TempDir(), map[string]string{
		"RUNNERHUB_POOLS": `[{"name":"k8s","labels":["k8s"],"maxRunners":1}]`,
	}), slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.resendEvery, s.resendAfter = 20*time.Millisecond, 0
	url := serve(t, s) + ingest.Path

	// No runner: the job waits in pool k8s.
	now := time.Now()
	body := testenv.JobPayload(t, testenv.Job{ID: 77, Labels: []string{"self-hosted", "k8s"}, Status: "queued", Created: now, At: now})
	if status, _, err := Send(context.Background(), url, testSecret, "workflow_job", "resend-1", body); err != nil || status != http.StatusAccepted {
		t.Fatalf("delivery: %d %v", status, err)
	}
	waitState(t, s, delivery.Key{HookID: "1", DeliveryID: "resend-1"}, delivery.Processed)
	deadline := time.Now().Add(10 * time.Second)
	for demands := 0; demands < 3; demands = strings.Count(logs.String(), `"msg":"scale-up demand","pool":"k8s","job_id":77,`) {
		if time.Now().After(deadline) {
			t.Fatalf("%d demands for the waiting job within 10s, want its first and then more; log:\n%s", demands, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
