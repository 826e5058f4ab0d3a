package standalone

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/testenv/fakegithub"
)

// execProvider writes an exec provider script that appends each call's stdin to
// <dir>/<action>.log and answers as the contract says, and returns its path.
func execProvider(t *testing.T, dir string) string {
	t.Helper()
	script := filepath.Join(dir, "provider")
	body := `#!/bin/sh
{ cat; echo; } >> "` + dir + `/$1.log"
case "$1" in
create) echo '{"providerId": "local-1"}' ;;
delete) echo '{}' ;;
list) echo '{"runners": []}' ;;
esac
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

// calls reads the stdin of every call of action the script got.
func calls(t *testing.T, dir, action string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, action+".log"))
	if err != nil {
		return nil
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s stdin %q: %v", action, sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// startProvisioning starts a local stack whose pool linux names the exec provider
// script, and returns it and the script's directory.
func startProvisioning(t *testing.T) (*ghStack, string) {
	t.Helper()
	dir := t.TempDir()
	pools := `[{"name": "linux", "labels": ["linux"], "maxRunners": 2,
		"provider": {"type": "exec", "command": ["` + execProvider(t, dir) + `"], "timeout": "10s"}}]`
	// Passes are the tests' business: the loop runs one at start only.
	g := startGHStack(t, map[string]string{"RUNNERHUB_POOLS": pools, "RUNNERHUB_GITHUB_RUNNER_SCOPE": "org/octo",
		"RUNNERHUB_PROVISIONER_INTERVAL": "1h"})
	return g, dir
}

func TestQueuedJobStartsARunnerThroughItsPoolsProvider(t *testing.T) {
	g, dir := startProvisioning(t)
	g.fake.Deliver(testHook, "workflow_job", queued(t, 501), fakegithub.Delivered)

	created := poll(t, "the provider's create", func() ([]map[string]any, bool) {
		c := calls(t, dir, "create")
		return c, len(c) > 0
	})
	c := created[0]
	name, _ := c["name"].(string)
	if len(created) != 1 || !strings.HasPrefix(name, "rh-linux-") || c["pool"] != "linux" || c["jobId"] != 501.0 ||
		c["repository"] != "octo/app" || c["jitConfig"] == "" || c["ephemeral"] != true {
		t.Fatalf("create calls %v", created)
	}
	r := poll(t, "the runner's provider id recorded", func() (*jobs.Runner, bool) {
		r, err := g.db.Store().Runner(t.Context(), name)
		return r, err == nil && r.ProviderID == "local-1"
	})
	if r.State != jobs.RunnerStarting || r.JobID != 501 || r.GitHubID == 0 {
		t.Fatalf("runner %+v, want starting for job 501", r)
	}
	// A JIT runner minted for a concurrent demand of the same job (the first pass's) is
	// removed again once it loses the race.
	poll(t, "GitHub to keep only "+name, func() ([]string, bool) {
		names := g.fake.RunnerNames("org/octo")
		return names, len(names) == 1 && names[0] == name
	})
	if got := g.metric(t, `runnerhub_provisioner_runners_created_total{pool="linux"}`); got != "1" {
		t.Fatalf("runners created metric %q, want 1", got)
	}
}

func TestJITFailuresShowInHealth(t *testing.T) {
	g, dir := startProvisioning(t)
	// The credentials may not register runners: every call is refused.
	g.fake.FailNext(100, http.StatusForbidden)
	g.fake.Deliver(testHook, "workflow_job", queued(t, 502), fakegithub.Delivered)
	body := poll(t, "health to show the JIT failure", func() (string, bool) {
		_, body := g.health(t)
		return body, strings.Contains(body, "runners cannot start in pool linux")
	})
	if !strings.Contains(body, `"status":"degraded"`) || !strings.Contains(body, "(forbidden)") || strings.Contains(body, "octo") {
		t.Fatalf("health %s, want degraded for pool linux's forbidden JIT configurations, naming no owner", body)
	}
	if c := calls(t, dir, "create"); len(c) != 0 {
		t.Fatalf("create called %d times without a JIT configuration", len(c))
	}
}
