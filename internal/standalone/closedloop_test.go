package standalone

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/testenv"
	"github.com/runnerhub/webhooks/internal/testenv/fakegithub"
)

// loopScope is where the closed loop's runners register.
const loopScope = "org/octo"

// loopPool is one pool of a closed-loop test.
type loopPool struct {
	name                string
	minIdle, maxRunners int
}

// poolsWithProvider is RUNNERHUB_POOLS for pools whose runners the exec provider command
// starts: ephemeral, with labels [name].
func poolsWithProvider(t *testing.T, pools []loopPool, command []string, bootTimeout time.Duration) string {
	t.Helper()
	var out []map[string]any
	for _, p := range pools {
		out = append(out, map[string]any{
			"name": p.name, "labels": []string{p.name}, "minIdle": p.minIdle, "maxRunners": p.maxRunners,
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

// fleetSampler records, every few milliseconds, the most runners RunnerHub held in each
// pool (starting ones included) and the most of each pool's runners GitHub had busy.
type fleetSampler struct {
	g       *ghStack
	pools   []loopPool
	stop    chan struct{}
	done    sync.WaitGroup
	samples int
	// held and busy are the maxima seen, by pool; readErr a failure to read the store.
	held, busy map[string]int
	readErr    error
}

func sampleFleet(g *ghStack, pools []loopPool) *fleetSampler {
	f := &fleetSampler{g: g, pools: pools, stop: make(chan struct{}), held: map[string]int{}, busy: map[string]int{}}
	f.done.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for f.readErr == nil {
			select {
			case <-f.stop:
				return
			case <-tick.C:
			}
			f.sample()
		}
	})
	return f
}

func (f *fleetSampler) sample() {
	f.samples++
	for _, p := range f.pools {
		held, _, err := f.g.db.Store().ListRunners(context.Background(), p.name, "", jobs.MaxListLimit)
		if err != nil {
			f.readErr = err
			return
		}
		busy := 0
		for _, r := range githubRunners(f.g.fake, p.name) {
			if r.Busy {
				busy++
			}
		}
		f.held[p.name] = max(f.held[p.name], len(held))
		f.busy[p.name] = max(f.busy[p.name], busy)
	}
}

// finish stops sampling and fails t if a pool ever went over its maxRunners.
func (f *fleetSampler) finish(t *testing.T) {
	t.Helper()
	close(f.stop)
	f.done.Wait()
	if f.readErr != nil {
		t.Fatalf("sampling the fleet: %v", f.readErr)
	}
	for _, p := range f.pools {
		t.Logf("pool %s: at most %d runners held and %d busy on GitHub (maxRunners %d, %d samples)", p.name, f.held[p.name], f.busy[p.name], p.maxRunners, f.samples)
		if f.held[p.name] > p.maxRunners || f.busy[p.name] > p.maxRunners {
			t.Errorf("pool %s went over maxRunners %d: %d runners held, %d busy on GitHub", p.name, p.maxRunners, f.held[p.name], f.busy[p.name])
		}
	}
}

// githubRunners are the runners of pool registered with the fake GitHub (rh-<pool>-…).
func githubRunners(fake *fakegithub.Server, pool string) []fakegithub.RunnerInfo {
	return slices.DeleteFunc(fake.Runners(loopScope), func(r fakegithub.RunnerInfo) bool { return !strings.HasPrefix(r.Name, "rh-"+pool+"-") })
}

// settled says, for each pool, whether RunnerHub, GitHub and the provider agree on
// exactly minIdle idle runners and nothing else (no busy, starting, retired or orphaned
// runner anywhere); the reason when not.
func settled(ctx context.Context, g *ghStack, prog *fakegithub.RunnerProgram, pools []loopPool) (bool, string) {
	machines := map[string][]string{}
	for _, m := range prog.Machines() {
		machines[m.Pool] = append(machines[m.Pool], m.Name)
	}
	for _, p := range pools {
		held, _, err := g.db.Store().ListRunners(ctx, p.name, "", jobs.MaxListLimit)
		if err != nil {
			return false, err.Error()
		}
		var ours []string
		for _, r := range held {
			if r.State != jobs.RunnerIdle {
				return false, fmt.Sprintf("pool %s: runner %s is %s", p.name, r.Name, r.State)
			}
			ours = append(ours, r.Name)
		}
		if len(ours) != p.minIdle {
			return false, fmt.Sprintf("pool %s: %d idle runners, want minIdle %d", p.name, len(ours), p.minIdle)
		}
		var theirs []string
		for _, r := range githubRunners(g.fake, p.name) {
			if r.Status != "online" || r.Busy {
				return false, fmt.Sprintf("pool %s: GitHub has runner %s %s (busy %v)", p.name, r.Name, r.Status, r.Busy)
			}
			theirs = append(theirs, r.Name)
		}
		sort.Strings(ours)
		sort.Strings(theirs)
		sort.Strings(machines[p.name])
		if !slices.Equal(ours, theirs) || !slices.Equal(ours, machines[p.name]) {
			return false, fmt.Sprintf("pool %s: RunnerHub has %v, GitHub %v, the provider %v", p.name, ours, theirs, machines[p.name])
		}
	}
	return true, ""
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
	pools := []loopPool{{"linux", 1, 4}, {"gpu", 1, 3}}
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
	sampler := sampleFleet(g, pools)

	const bursts, perBurst = 5, 10
	var ids []int64
	for b := range bursts {
		for i := range perBurst {
			id := int64(3000 + b*perBurst + i)
			pool := pools[0].name
			if i%5 >= 3 {
				pool = pools[1].name
			}
			g.fake.QueueJob("octo/app", fakegithub.Job{ID: id, RunID: 7000 + int64(b), Name: fmt.Sprintf("job-%d", id), Labels: []string{"self-hosted", pool}})
			ids = append(ids, id)
		}
		time.Sleep(700 * time.Millisecond)
	}

	ctx := t.Context()
	waitLong(t, 40*time.Second, "every job completed in RunnerHub", func() (string, bool) {
		for _, id := range ids {
			if j, err := g.db.Store().Job(ctx, id); err != nil || j.Status != jobs.StatusCompleted {
				return fmt.Sprintf("job %d: %+v %v", id, j, err), false
			}
		}
		return "", true
	})
	waitLong(t, 20*time.Second, "each pool back to minIdle idle runners, the same on GitHub and the provider", func() (string, bool) {
		ok, why := settled(ctx, g, prog, pools)
		return why, ok
	})
	sampler.finish(t)

	for _, id := range ids {
		if j, _ := g.fake.JobState("octo/app", id); j.Status != "completed" || j.RunnerName == "" {
			t.Errorf("GitHub's job %d: %+v", id, j)
		}
	}
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
		n, _ := strconv.Atoi(g.metric(t, `runnerhub_provisioner_create_failures_total{pool="`+p.name+`"}`))
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
