package standalone

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Pools from RUNNERHUB_POOLS_FILE: a PUT names every problem of its body, the 409 for
// deleting a configured pool names the file's variable, and a configured pool that an
// API pool overrides is warned about at the next start.
func TestPoolMessages(t *testing.T) {
	const token = "rh_pool-messages-token-0123456789"
	dir := t.TempDir()
	file := filepath.Join(t.TempDir(), "pools.json")
	if err := os.WriteFile(file, []byte(`[{"name": "linux", "labels": ["linux"], "maxRunners": 2}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, dir, map[string]string{"RUNNERHUB_API_TOKENS": token, "RUNNERHUB_POOLS_FILE": file})
	s, err := Open(cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Run("API", func(t *testing.T) { poolMessages(t, serve(t, s), token, file) }) // served until it ends
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	s, err = Open(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "pool=linux") || !strings.Contains(logs.String(), "configured_in=\"RUNNERHUB_POOLS_FILE "+file+"\"") {
		t.Errorf("start-up log lacks the override warning:\n%s", logs.String())
	}
}

func poolMessages(t *testing.T, base, token, file string) {
	call := func(method, path, body string) (int, string) {
		t.Helper()
		return apiCall(t, base, token, method, path, body)
	}
	// Messages are not HTML-escaped: <token>, not \u003ctoken\u003e.
	resp, err := http.Get(base + "/api/pools")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "Authorization: Bearer <token>") {
		t.Errorf("401 body %s, want the message unescaped", b)
	}
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		want                     []string
	}{
		{"every problem", "PUT", "/api/pools/x", `{"labels": [""], "minIdle": -1, "maxRunners": 0}`, http.StatusBadRequest,
			[]string{"label 0 must be 1-100 characters", "minIdle must not be negative", "maxRunners must be at least 1"}},
		{"runner without name and pool", "POST", "/api/runners", `{}`, http.StatusBadRequest, []string{"name is required", "pool is required"}},
		{"not json", "PUT", "/api/pools/x", `not json`, http.StatusBadRequest, []string{"expected a JSON object", "not JSON"}},
		{"configured", "DELETE", "/api/pools/linux", ``, http.StatusConflict, []string{"configured (RUNNERHUB_POOLS_FILE " + file + ")"}},
		{"override", "PUT", "/api/pools/linux", `{"labels": ["linux", "big"], "maxRunners": 3}`, http.StatusCreated, nil},
	} {
		status, body := call(tc.method, tc.path, tc.body)
		if status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, status, body, tc.status)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: %s lacks %q", tc.name, body, w)
			}
		}
	}
}

// Every time in an answer has the stores' precision, milliseconds: a runner just
// registered and health's checkedAt too, not Go's nanoseconds.
func TestTimesAreMilliseconds(t *testing.T) {
	const token = "rh_times-token-0123456789"
	_, base := startStack(t, map[string]string{
		"RUNNERHUB_API_TOKENS": token,
		"RUNNERHUB_POOLS":      `[{"name": "linux", "labels": ["linux"], "maxRunners": 2}]`,
	})
	finer := regexp.MustCompile(`"(\w+)":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{4,}`)
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/api/runners", `{"name": "r1", "pool": "linux"}`},
		{"POST", "/api/runners/r1/heartbeat", ``},
		{"GET", "/api/webhooks/health", ``},
	} {
		code, b := apiCall(t, base, token, tc.method, tc.path, tc.body)
		if code >= 300 || !strings.Contains(b, `Z"`) {
			t.Fatalf("%s %s: %d %s", tc.method, tc.path, code, b)
		}
		if m := finer.FindStringSubmatch(b); m != nil {
			t.Errorf("%s %s: %s is finer than milliseconds: %s", tc.method, tc.path, m[1], b)
		}
	}
}
