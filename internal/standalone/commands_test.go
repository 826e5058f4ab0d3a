package standalone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/ingest"
)

// apiGet reads one management API answer's data into v.
func apiGet(t *testing.T, base, token, path string, v any) {
	t.Helper()
	code, body := apiCall(t, base, token, http.MethodGet, path, "")
	var env struct {
		Success bool
		Data    json.RawMessage
	}
	if err := json.Unmarshal([]byte(body), &env); err != nil || !env.Success {
		t.Fatalf("GET %s: %d %+v %v", path, code, env, err)
	}
	if err := json.Unmarshal(env.Data, v); err != nil {
		t.Fatal(err)
	}
}

// The send command's flags edit the payload and the headers, and it says which ids the
// API knows the delivery and the job by.
func TestSendCommand(t *testing.T) {
	const token = "rh_send-command-token-0123456789"
	s, base := startStack(t, map[string]string{"RUNNERHUB_API_TOKENS": token})
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The command's own configuration points elsewhere: the flags must win.
	elsewhere := testConfig(t, t.TempDir(), map[string]string{"GITHUB_WEBHOOK_SECRET": "", "PORT": "1"})
	var out, errOut bytes.Buffer
	err := SendCommand(context.Background(), elsewhere, []string{
		"-url", base + ingest.Path, "-secret-file", secretFile, "-hook-id", "77", "-delivery", "send-1",
		"-job-id", "4242", "-run-id", "99", "-runner", "big-runner", "-labels", "self-hosted,linux,big",
		"-repository", "acme/send", filepath.Join("..", "..", "testdata", "workflow_job.in_progress.json"),
	}, &out, &errOut)
	if err != nil {
		t.Fatalf("send: %v\n%s%s", err, out.String(), errOut.String())
	}
	for _, want := range []string{"202 ", "workflow_job delivery 77:send-1", "GET /api/webhooks/events/77:send-1", "in_progress job 4242 of run 99", "GET /api/jobs/4242"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output %q lacks %q", out.String(), want)
		}
	}
	rec := waitState(t, s, delivery.Key{HookID: "77", DeliveryID: "send-1"}, delivery.Processed)
	if rec.Repository != "acme/send" {
		t.Errorf("recorded for %q, want acme/send", rec.Repository)
	}
	var job struct {
		ID         int64
		RunID      int64
		Repository string
		Labels     []string
		RunnerName string
	}
	apiGet(t, base, token, "/api/jobs/4242", &job)
	if job.RunID != 99 || job.Repository != "acme/send" || job.RunnerName != "big-runner" || !slices.Equal(job.Labels, []string{"self-hosted", "linux", "big"}) {
		t.Errorf("job %+v", job)
	}

	// -h is help, not a failure; a missing file argument is.
	for _, tc := range []struct {
		args []string
		help bool
	}{{[]string{"-h"}, true}, {nil, false}} {
		errOut.Reset()
		err := SendCommand(context.Background(), elsewhere, tc.args, &out, &errOut)
		if errors.Is(err, flag.ErrHelp) != tc.help || err == nil || !strings.Contains(errOut.String(), "-job-id") {
			t.Errorf("send %v: %v, usage %q", tc.args, err, errOut.String())
		}
	}
}

// The demo plays its lifecycle against a running stack: at the end both jobs are
// completed on the demo runner, which is idle, and the output says what to look at.
func TestDemoCommand(t *testing.T) {
	const token = "rh_demo-command-token-0123456789"
	_, base := startStack(t, map[string]string{"RUNNERHUB_API_TOKENS": token})
	cfg := testConfig(t, t.TempDir(), map[string]string{"RUNNERHUB_API_TOKENS": token})
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for run := range 2 { // a second run starts over with the runner it left
		out.Reset()
		if err := DemoCommand(ctx, cfg, []string{"-api", base, "-pace", "10ms"}, &out, &out); err != nil {
			t.Fatalf("demo run %d: %v\n%s", run, err, out.String())
		}
	}
	for _, want := range []string{"Open the dashboard: " + base + "/#token=" + token, "Pool \"demo\" created", "Runner demo-runner-1 registered", "Jobs: pending", "runner is idle again"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	ids := regexp.MustCompile(`Job (\d+) queued`).FindAllStringSubmatch(out.String(), -1)
	if len(ids) != 2 {
		t.Fatalf("output names %d queued jobs, want 2:\n%s", len(ids), out.String())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var runner struct{ State string }
		apiGet(t, base, token, "/api/runners/demo-runner-1", &runner)
		done := runner.State == "idle"
		for _, m := range ids {
			id, _ := strconv.ParseInt(m[1], 10, 64)
			var job struct{ Status, RunnerName string }
			apiGet(t, base, token, "/api/jobs/"+strconv.FormatInt(id, 10), &job)
			done = done && job.Status == "completed" && job.RunnerName == "demo-runner-1"
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("runner %q; the demo's jobs did not all complete on demo-runner-1", runner.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A start on a busy port fails before it creates the data directory, the database or
// a secret.
func TestRunCommandOnABusyPortCreatesNothing(t *testing.T) {
	busy, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := filepath.Join(t.TempDir(), "data")
	// No secret configured: a start that went on would generate one in dir.
	cfg := testConfig(t, dir, map[string]string{"GITHUB_WEBHOOK_SECRET": "", "PORT": strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)})
	var out, errOut bytes.Buffer
	err = RunCommand(t.Context(), cfg, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "cannot listen on port") {
		t.Errorf("run: %v, want a failure naming the port", err)
	}
	if out.Len() > 0 {
		t.Errorf("a start that failed printed the banner:\n%s", &out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the data directory was created: %v", err)
	}
}
