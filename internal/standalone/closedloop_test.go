package standalone

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/testenv"
	"github.com/runnerhub/webhooks/internal/testenv/fakegithub"
)

// loopScope is where the closed loop's runners register.
const loopScope = "org/octo"

// poolsWithProvider is RUNNERHUB_POOLS for pools whose runners the exec provider command
// starts: ephemeral, with labels [name].
func poolsWithProvider(t *testing.T, pools []testenv.LoopPool, command []string, bootTimeout time.Duration) string {
	t.Helper()
	var out []map[string]any
	for _, p := range pools {
		out = append(out, map[string]any{
			"name": p.Name, "labels": []string{p.Name}, "minIdle": p.MinIdle, "maxRunners": p.MaxRunners,
			"ephemeral": true, "bootTimeout": bootTimeout.String(),
			"provider": map[string]any{"type": "exec", "command": command, "timeout": "10s"},
		})
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// settled says whether RunnerHub, GitHub and the provider (the fake runner program's
// machines) agree, in each pool, on exactly minIdle idle runners and nothing else; the
// reason when not.
func settled(ctx context.Context, g *ghStack, prog *fakegithub.RunnerProgram, pools []testenv.LoopPool) (string, bool) {
	machines := map[string][]string{}
	for _, m := range prog.Machines() {
		machines[m.Pool] = append(machines[m.Pool], m.Name)
	}
	for _, p := range pools {
		if why, ok := testenv.PoolSettled(ctx, p, g.db.Store(), g.fake, loopScope, "the provider", machines[p.Name]); !ok {
			return why, false
		}
	}
	return "", true
}

// The whole loop on one machine: bursts of jobs queued on the fake GitHub, runners
// started through the exec provider (the fake runner program), connecting to GitHub,
// running their job and retired, with faults on the way.
func TestClosedLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("the closed loop takes seconds")
	}
	began := time.Now()
	prog := fakegithub.BuildRunnerProgram(t)
	pools := []testenv.LoopPool{{Name: "linux", MinIdle: 1, MaxRunners: 4}, {Name: "gpu", MinIdle: 1, MaxRunners: 3}}
	// Faults: every fifth create fails; the runner of the third create attempt never
	// connects, so that its boot timeout replaces it.
	const failEvery, neverConnects = 5, 3
	command := prog.Command("--fail-every", fmt.Sprint(failEvery), "--never-connect", fmt.Sprint(neverConnects), "--lifetime", "2m")
	g := startGHStack(t, map[string]string{
		"RUNNERHUB_POOLS":                poolsWithProvider(t, pools, command, 3*time.Second),
		"RUNNERHUB_GITHUB_RUNNER_SCOPE":  loopScope,
		"RUNNERHUB_PROVISIONER_INTERVAL": "1s",
		"RUNNERHUB_RECONCILE_INTERVAL":   "1s",
	})
	g.fake.SendJobEvents(testHook, 300*time.Millisecond)
	// Fault: the first job's completed is lost (logged as failed): the redelivery
	// reconciler must recover it, or its runner stays busy and the pool shrinks.
	g.fake.DropNextCompleted(1, fakegithub.Dropped)
	sampler := testenv.SampleFleet(t, g.db.Store(), g.fake, loopScope, pools, 5*time.Millisecond, nil)

	ids := testenv.QueueJobBursts(g.fake, "octo/app", pools, 5, 10, 700*time.Millisecond)

	ctx := t.Context()
	waitLong(t, 40*time.Second, "every job completed in RunnerHub", func() (string, bool) {
		waiting, first := testenv.JobsNotCompleted(ctx, g.db.Store(), ids)
		return first, waiting == 0
	})
	waitLong(t, 20*time.Second, "each pool back to minIdle idle runners, the same on GitHub and the provider", func() (string, bool) {
		return settled(ctx, g, prog, pools)
	})
	sampler.Finish(t)

	testenv.CheckJobsRanOnGitHub(t, g.fake, "octo/app", ids)
	var creates []fakegithub.Call
	for _, c := range prog.Calls(t) {
		if c.Action == "create" {
			creates = append(creates, c)
		}
	}
	if len(creates) < len(ids)+2 {
		t.Errorf("%d creates for %d jobs and the warm runners", len(creates), len(ids))
	}
	// The runner that never connected was replaced: it is gone everywhere.
	silent, silentPool := prog.NeverConnected(t)
	if silent == "" {
		t.Fatal("no runner was started that never connects")
	}
	if _, err := g.db.Store().Runner(ctx, silent); err == nil {
		t.Errorf("the runner that never connected, %s, is still held", silent)
	}
	if got := g.metric(t, `runnerhub_provisioner_boot_timeouts_total{pool="`+silentPool+`"}`); got == "" || got == "0" {
		t.Errorf("boot timeouts counted: %q, want the one of %s", got, silent)
	}
	failed := 0
	for _, p := range pools {
		n, _ := strconv.Atoi(g.metric(t, `runnerhub_provisioner_create_failures_total{pool="`+p.Name+`"}`))
		failed += n
	}
	if want := len(creates) / failEvery; failed != want {
		t.Errorf("%d create failures counted, want %d (one in %d of %d)", failed, want, failEvery, len(creates))
	}
	if n := g.fake.Redeliveries(testHook); n < 1 {
		t.Errorf("the dropped completed was not redelivered (%d redeliveries)", n)
	}
	t.Logf("closed loop: %d jobs, %d creates (every %dth failing), %d redeliveries, in %v",
		len(ids), len(creates), failEvery, g.fake.Redeliveries(testHook), time.Since(began).Round(time.Millisecond))
}

// waitLong calls check every 20 ms until it reports done, for up to d.
func waitLong(t *testing.T, d time.Duration, what string, check func() (string, bool)) {
	t.Helper()
	testenv.WaitUntil(t, d, 20*time.Millisecond, what, check)
}
