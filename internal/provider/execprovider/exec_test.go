package execprovider_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/provider"
	"github.com/runnerhub/webhooks/internal/provider/execprovider"
	"github.com/runnerhub/webhooks/internal/provider/providertest"
)

var fake struct {
	once sync.Once
	path string
	err  error
}

// fakeProvider builds testdata/fakeprovider once per test binary.
func fakeProvider(t *testing.T) string {
	t.Helper()
	fake.once.Do(func() {
		dir, err := os.MkdirTemp("", "fakeprovider")
		if err != nil {
			fake.err = err
			return
		}
		fake.path = filepath.Join(dir, "fakeprovider")
		out, err := exec.Command("go", "build", "-o", fake.path, "./testdata/fakeprovider").CombinedOutput()
		if err != nil {
			fake.err = err
			fake.path = string(out)
		}
	})
	if fake.err != nil {
		t.Fatalf("building the fake provider: %v\n%s", fake.err, fake.path)
	}
	return fake.path
}

type env struct {
	state string
	log   *bytes.Buffer
}

// newProvider returns an exec provider running the fake with a fresh state directory
// and the extra flags, and where its log goes.
func newProvider(t *testing.T, timeout time.Duration, flags ...string) (*execprovider.Provider, env) {
	t.Helper()
	e := env{state: t.TempDir(), log: &bytes.Buffer{}}
	cmd := append([]string{fakeProvider(t), "--state", e.state}, flags...)
	log := slog.New(slog.NewJSONHandler(e.log, nil))
	return execprovider.New(provider.ExecConfig{Command: cmd, Timeout: timeout}, log), e
}

// calls reads the fake's calls.log.
func (e env) calls(t *testing.T) []struct {
	Args   []string
	Action string
	Stdin  json.RawMessage
} {
	t.Helper()
	f, err := os.Open(filepath.Join(e.state, "calls.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []struct {
		Args   []string
		Action string
		Stdin  json.RawMessage
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var c struct {
			Args   []string
			Action string
			Stdin  json.RawMessage
		}
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func TestConformance(t *testing.T) {
	providertest.Run(t, func(t *testing.T) providertest.Harness {
		p, e := newProvider(t, 10*time.Second)
		return providertest.Harness{Provider: p, HandedJITConfig: func(t *testing.T, id string) string {
			b, err := os.ReadFile(filepath.Join(e.state, id+".machine"))
			if err != nil {
				t.Fatalf("machine %s: %v", id, err)
			}
			var m struct{ JITConfig string }
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			return m.JITConfig
		}}
	})
}

// TestContract checks the command line and the stdin of each action, field by field, as
// the README documents them for provider authors.
func TestContract(t *testing.T) {
	p, e := newProvider(t, 10*time.Second, "--zone", "eu-1")
	ctx := context.Background()
	job := provider.CreateRequest{Name: "r-1", Pool: "linux", Labels: []string{"linux", "x64"},
		JITConfig: "ZW5jb2RlZA==", Ephemeral: true, Repository: "octo/hello", JobID: 123}
	warm := provider.CreateRequest{Name: "r-2", Pool: "linux", JITConfig: "d2FybQ=="}
	for _, req := range []provider.CreateRequest{job, warm} {
		if _, err := p.Create(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Delete(ctx, "r-1", "fake-r-1"); err != nil {
		t.Fatal(err)
	}
	got, err := p.List(ctx, "linux")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != (provider.Instance{Name: "r-2", ProviderID: "fake-r-2"}) {
		t.Fatalf("List = %v, want r-2 alone", got)
	}

	want := []struct{ action, stdin string }{
		{"create", `{"name":"r-1","pool":"linux","labels":["linux","x64"],"jitConfig":"ZW5jb2RlZA==","ephemeral":true,"repository":"octo/hello","jobId":123}`},
		{"create", `{"name":"r-2","pool":"linux","labels":[],"jitConfig":"d2FybQ==","ephemeral":false,"repository":null,"jobId":null}`},
		{"delete", `{"name":"r-1","providerId":"fake-r-1"}`},
		{"list", `{"pool":"linux"}`},
	}
	calls := e.calls(t)
	if len(calls) != len(want) {
		t.Fatalf("%d calls, want %d", len(calls), len(want))
	}
	for i, w := range want {
		c := calls[i]
		wantArgs := []string{"--state", e.state, "--zone", "eu-1", w.action}
		if strings.Join(c.Args, " ") != strings.Join(wantArgs, " ") {
			t.Errorf("call %d args = %q, want %q", i, c.Args, wantArgs)
		}
		if string(c.Stdin) != w.stdin {
			t.Errorf("call %d stdin = %s\nwant %s", i, c.Stdin, w.stdin)
		}
	}
}

// TestFailures checks that each way a command can fail fails the call, with stderr in
// the log and never the JIT configuration.
func TestFailures(t *testing.T) {
	const secret = "c2VjcmV0LWppdC1jb25maWctdGhhdC1tdXN0LW5vdC1sZWFr"
	cases := []struct {
		misbehave, action string
		wantErr           string // in the error
		wantLog           string // in the log
	}{
		{"exit3", "create", "exit status 3 (stderr: cloud says no)", "progress line\\ncloud says no"},
		{"badjson", "create", "stdout is not a JSON object", "exec provider failed"},
		{"twojson", "create", "more than one JSON value", "exec provider failed"},
		{"noid", "create", "no providerId", ""},
		{"noid", "list", "no runners list", ""},
		{"spam", "create", "stdout exceeds 1048576 bytes", "exec provider failed"},
		{"echosecret", "create", "exit status 1 (stderr: failed)", "starting runner with --jitconfig [jit config removed]"},
		{"exit3", "delete", "exit status 3", "cloud says no"},
	}
	for _, c := range cases {
		t.Run(c.misbehave+"/"+c.action, func(t *testing.T) {
			p, e := newProvider(t, 10*time.Second, "--misbehave", c.misbehave)
			ctx := context.Background()
			var err error
			switch c.action {
			case "create":
				_, err = p.Create(ctx, provider.CreateRequest{Name: "r-1", Pool: "linux", JITConfig: secret})
			case "delete":
				err = p.Delete(ctx, "r-1", "fake-r-1")
			case "list":
				_, err = p.List(ctx, "linux")
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, c.wantErr)
			}
			log := e.log.String()
			if !strings.Contains(log, c.wantLog) {
				t.Errorf("log %s\nlacks %q", log, c.wantLog)
			}
			for what, s := range map[string]string{"error": err.Error(), "log": log} {
				if strings.Contains(s, secret) || strings.Contains(s, secret[:12]) {
					t.Errorf("the %s holds the JIT config: %s", what, s)
				}
			}
		})
	}
}

// TestTimeoutEndsProcessGroup checks that a command past its timeout fails the call
// promptly, and that what it started is ended with it.
func TestTimeoutEndsProcessGroup(t *testing.T) {
	p, e := newProvider(t, time.Second, "--misbehave", "hang")
	start := time.Now()
	_, err := p.Create(context.Background(), provider.CreateRequest{Name: "r-1", Pool: "linux"})
	if err == nil || !strings.Contains(err.Error(), "no answer within 1s") {
		t.Fatalf("error = %v, want a timeout", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the call took %v with a 1s timeout", took)
	}
	pid := childPID(t, e)
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the command's child %d outlived the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDetachedChildKeepsNoCallOpen checks that a create whose runner inherits stdout
// still succeeds, shortly after the command itself exits, and leaves the runner running.
func TestDetachedChildKeepsNoCallOpen(t *testing.T) {
	p, e := newProvider(t, 20*time.Second, "--misbehave", "detach")
	start := time.Now()
	id, err := p.Create(context.Background(), provider.CreateRequest{Name: "r-1", Pool: "linux"})
	if err != nil || id != "fake-r-1" {
		t.Fatalf("Create = %q, %v; want fake-r-1", id, err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the call took %v: it waited for the runner", took)
	}
	pid := childPID(t, e)
	if !alive(pid) {
		t.Errorf("the detached runner %d was ended", pid)
	}
	if proc, err := os.FindProcess(pid); err == nil {
		proc.Kill()
	}
}

func childPID(t *testing.T, e env) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.state, "child.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// alive says whether pid runs; a zombie (no init reaps it in some containers) is not.
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}
