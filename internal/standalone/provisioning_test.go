package standalone

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/provider"
	"github.com/runnerhub/webhooks/internal/testenv"
	"github.com/runnerhub/webhooks/internal/testenv/fakegithub"
)

// execProvider writes an exec provider script that appends, for each call, the time in
// nanoseconds and the stdin to <dir>/<action>.log, one line per call, and answers as the
// contract says; it returns its path.
func execProvider(t testing.TB, dir string) string {
	t.Helper()
	script := filepath.Join(dir, "provider")
	// Builtins only, so that a call costs one process: the burst's creates share two
	// cores with the stack they measure.
	body := `#!/bin/bash
at=${EPOCHREALTIME/./}
IFS= read -r -d '' input
printf '%s000 %s\n' "$at" "${input%$'\n'}" >> "` + dir + `/$1.log"
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

// call is one call the script got: when it started, and its stdin.
type call struct {
	At time.Time
	In map[string]any
}

// calls reads the calls of action the script got.
func calls(t testing.TB, dir, action string) []call {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, action+".log"))
	if err != nil {
		return nil
	}
	var out []call
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		at, in, ok := strings.Cut(sc.Text(), " ")
		ns, err := strconv.ParseInt(at, 10, 64)
		var c call
		if err == nil && ok {
			err = json.Unmarshal([]byte(in), &c.In)
		}
		if err != nil || !ok {
			t.Fatalf("%s call %q: %v", action, sc.Text(), err)
		}
		c.At = time.Unix(0, ns)
		out = append(out, c)
	}
	return out
}

// countCalls counts the calls of action the script got.
func countCalls(dir, action string) int {
	b, _ := os.ReadFile(filepath.Join(dir, action+".log"))
	return bytes.Count(b, []byte("\n"))
}

// startProvisioning starts a local stack whose pool linux (of maxRunners runners) names
// the exec provider script, and returns it and the script's directory.
func startProvisioning(t testing.TB, maxRunners int, prepare ...func(*Stack)) (*ghStack, string) {
	t.Helper()
	dir := t.TempDir()
	pools := `[{"name": "linux", "labels": ["linux"], "maxRunners": ` + strconv.Itoa(maxRunners) + `,
		"provider": {"type": "exec", "command": ["` + execProvider(t, dir) + `"], "timeout": "10s"}}]`
	// Passes are the tests' business: the loop runs one at start only.
	g := startGHStack(t, map[string]string{"RUNNERHUB_POOLS": pools, "RUNNERHUB_GITHUB_RUNNER_SCOPE": "org/octo",
		"RUNNERHUB_PROVISIONER_INTERVAL": "1h"}, prepare...)
	return g, dir
}

func TestQueuedJobStartsARunnerThroughItsPoolsProvider(t *testing.T) {
	g, dir := startProvisioning(t, 2)
	g.fake.Deliver(testHook, "workflow_job", queued(t, 501), fakegithub.Delivered)

	created := poll(t, "the provider's create", func() ([]call, bool) {
		c := calls(t, dir, "create")
		return c, len(c) > 0
	})
	c := created[0].In
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
	g, dir := startProvisioning(t, 2)
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

// BenchmarkTimeToProviderCall measures RunnerHub's share of starting a runner: from the
// receipt of a queued delivery to its runner's create, under a burst of burstSize queued
// deliveries of distinct jobs sent at once (16 senders), on the local stack with the fake
// GitHub minting the JIT configurations. It reports the p50, p99 and maximum, the p99 of
// receipt to processed (the processor's part), and the p50 and p99 of processed to create
// (the provisioner's). With provider=exec the runners are created by the exec provider's
// script, which times its own start: the figure includes the start of its process, and
// the burst's 200 processes share the two cores with the stack. With provider=in-process
// a provider in the test's process records the call and starts nothing, so that the
// figure is RunnerHub's share alone.
//
//	go test ./internal/standalone -run '^$' -bench TimeToProviderCall -benchtime 1x
func BenchmarkTimeToProviderCall(b *testing.B) {
	const burstSize = 200
	b.Run("provider=exec", func(b *testing.B) {
		g, dir := startProvisioning(b, burstSize*b.N)
		timeToProviderCall(b, g, burstSize, func() int { return countCalls(dir, "create") }, func() map[int64]time.Time {
			createdAt := map[int64]time.Time{}
			for _, c := range calls(b, dir, "create") {
				id, _ := c.In["jobId"].(float64)
				createdAt[int64(id)] = c.At
			}
			return createdAt
		})
	})
	b.Run("provider=in-process", func(b *testing.B) {
		rec := &recordingProviders{at: map[int64]time.Time{}}
		g, _ := startProvisioning(b, burstSize*b.N, func(s *Stack) { s.provisioning.Provisioner.Providers = rec })
		timeToProviderCall(b, g, burstSize, func() int { return len(rec.createdAt()) }, rec.createdAt)
	})
}

// timeToProviderCall sends b.N bursts of burstSize queued deliveries through g, waits
// for count to reach each burst's creates, and reports the figures from createdAt (the
// start of each job's create).
func timeToProviderCall(b *testing.B, g *ghStack, burstSize int, count func() int, createdAt func() map[int64]time.Time) {
	const senders = 16
	var all, processed, provisioned []time.Duration
	for i := range b.N {
		// The payloads are built before the burst, so that only sending them shares the
		// cores with the stack.
		bodies := make([][]byte, burstSize)
		for n := range bodies {
			id := int64(10_000 + i*burstSize + n)
			bodies[n] = testenv.JobPayload(b, testenv.Job{ID: id, Labels: []string{"linux"}, Status: "queued", Repository: "octo/app", Created: time.Now()})
		}
		guids := make([]string, burstSize)
		work := make(chan int)
		var wg sync.WaitGroup
		for range senders {
			wg.Go(func() {
				for n := range work {
					guids[n] = g.fake.Deliver(testHook, "workflow_job", bodies[n], fakegithub.Delivered)
				}
			})
		}
		for n := range burstSize {
			work <- n
		}
		close(work)
		wg.Wait()
		// Waiting counts creates only, so that it takes next to nothing from the burst.
		deadline := time.Now().Add(2 * time.Minute)
		for n := 0; n < (i+1)*burstSize; n = count() {
			if time.Now().After(deadline) {
				b.Fatalf("%d creates after two minutes, want %d", n, (i+1)*burstSize)
			}
			time.Sleep(20 * time.Millisecond)
		}
		created := createdAt()
		for n, guid := range guids {
			rec, err := g.db.Store().Get(b.Context(), delivery.Key{HookID: strconv.Itoa(testHookID), DeliveryID: guid})
			if err != nil {
				b.Fatal(err)
			}
			at, ok := created[int64(10_000+i*burstSize+n)]
			if !ok {
				b.Fatalf("no create for delivery %s", guid)
			}
			all = append(all, at.Sub(rec.ReceivedAt))
			processed = append(processed, rec.ProcessedAt.Sub(rec.ReceivedAt))
			provisioned = append(provisioned, at.Sub(rec.ProcessedAt))
		}
	}
	// Its share after the delivery is processed (its demand sent) is the provisioner's.
	quantile := func(d []time.Duration, q float64) float64 {
		slices.Sort(d)
		return float64(d[int(q*float64(len(d)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(quantile(all, 0.5), "p50-ms")
	b.ReportMetric(quantile(all, 0.99), "p99-ms")
	b.ReportMetric(quantile(all, 1), "max-ms")
	b.ReportMetric(quantile(processed, 0.99), "processed-p99-ms")
	b.ReportMetric(quantile(provisioned, 0.5), "provisioner-p50-ms")
	b.ReportMetric(quantile(provisioned, 0.99), "provisioner-p99-ms")
}

// recordingProviders is an in-process provider for every pool: its create records when
// it was called for a job's runner and starts nothing.
type recordingProviders struct {
	mu sync.Mutex
	at map[int64]time.Time
}

var _ provider.Provider = (*recordingProviders)(nil)

func (r *recordingProviders) For(context.Context, provider.Config) (provider.Provider, error) {
	return r, nil
}

func (r *recordingProviders) Create(_ context.Context, req provider.CreateRequest) (string, error) {
	at := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.at[req.JobID] = at
	return "local-" + req.Name, nil
}

func (r *recordingProviders) Delete(context.Context, string, string) error { return nil }

func (r *recordingProviders) List(context.Context, string) ([]provider.Instance, error) {
	return nil, nil
}

// createdAt returns a copy of the creates' call times, by job.
func (r *recordingProviders) createdAt() map[int64]time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.at)
}
