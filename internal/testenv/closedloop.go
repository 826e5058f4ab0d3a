package testenv

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/provisioning"
	"github.com/runnerhub/webhooks/internal/testenv/fakegithub"
)

// The closed-loop tests (the local stack's and the AWS host's) play the same loop:
// bursts of jobs queued on the fake GitHub, runners started for them and retired, and
// the same checks that RunnerHub, GitHub and the provider agree at the end. What they
// share is here; how each starts runners stays with the test.

// LoopPool is one pool of a closed loop: ephemeral runners with labels [Name].
type LoopPool struct {
	Name                string
	MinIdle, MaxRunners int
}

// LoopStore is what the closed-loop checks read of RunnerHub's store.
type LoopStore interface {
	Job(ctx context.Context, id int64) (*jobs.Job, error)
	ListRunners(ctx context.Context, pool, cursor string, limit int) ([]*jobs.Runner, string, error)
}

// QueueJobBursts queues bursts of perBurst jobs on repo of fake, pause apart, and
// returns their ids: in each five jobs of a burst three are for pools[0], two for
// pools[1].
func QueueJobBursts(fake *fakegithub.Server, repo string, pools []LoopPool, bursts, perBurst int, pause time.Duration) []int64 {
	var ids []int64
	for b := range bursts {
		for i := range perBurst {
			id := int64(3000 + b*perBurst + i)
			pool := pools[0].Name
			if i%5 >= 3 {
				pool = pools[1].Name
			}
			fake.QueueJob(repo, fakegithub.Job{ID: id, RunID: 7000 + int64(b), Name: fmt.Sprintf("job-%d", id), Labels: []string{"self-hosted", pool}})
			ids = append(ids, id)
		}
		time.Sleep(pause)
	}
	return ids
}

// JobsNotCompleted counts the jobs of ids RunnerHub does not have completed and
// describes the first of them.
func JobsNotCompleted(ctx context.Context, store LoopStore, ids []int64) (waiting int, first string) {
	for _, id := range ids {
		if j, err := store.Job(ctx, id); err != nil || j.Status != jobs.StatusCompleted {
			waiting++
			if first == "" {
				first = fmt.Sprintf("job %d: %+v %v", id, j, err)
			}
		}
	}
	return waiting, first
}

// CheckJobsRanOnGitHub fails t for each job of ids GitHub does not have completed on a
// runner.
func CheckJobsRanOnGitHub(t testing.TB, fake *fakegithub.Server, repo string, ids []int64) {
	t.Helper()
	for _, id := range ids {
		if j, _ := fake.JobState(repo, id); j.Status != "completed" || j.RunnerName == "" {
			t.Errorf("GitHub's job %d: %+v", id, j)
		}
	}
}

// PoolRunners are the runners of pool registered with fake in scope (rh-<pool>-…).
func PoolRunners(fake *fakegithub.Server, scope, pool string) []fakegithub.RunnerInfo {
	return slices.DeleteFunc(fake.Runners(scope), func(r fakegithub.RunnerInfo) bool {
		return !strings.HasPrefix(r.Name, provisioning.RunnerPrefix+pool+"-")
	})
}

// PoolSettled says whether, in pool p, RunnerHub, GitHub (in scope) and the provider
// (its machines, named after their runners) agree on exactly minIdle idle runners and
// nothing else (no busy, starting, retired or orphaned runner anywhere); the reason
// when not.
func PoolSettled(ctx context.Context, p LoopPool, store LoopStore, fake *fakegithub.Server, scope, provider string, machines []string) (string, bool) {
	held, _, err := store.ListRunners(ctx, p.Name, "", jobs.MaxListLimit)
	if err != nil {
		return err.Error(), false
	}
	var ours []string
	for _, r := range held {
		if r.State != jobs.RunnerIdle {
			return fmt.Sprintf("pool %s: runner %s is %s", p.Name, r.Name, r.State), false
		}
		ours = append(ours, r.Name)
	}
	if len(ours) != p.MinIdle {
		return fmt.Sprintf("pool %s: %d idle runners %v, want minIdle %d", p.Name, len(ours), ours, p.MinIdle), false
	}
	var theirs []string
	for _, r := range PoolRunners(fake, scope, p.Name) {
		if r.Status != "online" || r.Busy {
			return fmt.Sprintf("pool %s: GitHub has runner %s %s (busy %v)", p.Name, r.Name, r.Status, r.Busy), false
		}
		theirs = append(theirs, r.Name)
	}
	machines = slices.Sorted(slices.Values(machines))
	slices.Sort(ours)
	slices.Sort(theirs)
	if !slices.Equal(ours, theirs) || !slices.Equal(ours, machines) {
		return fmt.Sprintf("pool %s: RunnerHub has %v, GitHub %v, %s %v", p.Name, ours, theirs, provider, machines), false
	}
	return "", true
}

// FleetSampler records, every interval, the most runners RunnerHub held in each pool
// (starting ones included) and the most of each pool's runners GitHub had busy, for
// Finish to check against the pools' maxRunners.
type FleetSampler struct {
	store    LoopStore
	fake     *fakegithub.Server
	scope    string
	pools    []LoopPool
	onError  func(error)
	stop     chan struct{}
	stopOnce sync.Once
	done     sync.WaitGroup
	samples  int
	// held and busy are the maxima seen, by pool; readErr a failure to read the store.
	held, busy map[string]int
	readErr    error
}

// SampleFleet starts sampling until Finish, or t's end. A failure to read the store
// stops it, and Finish fails the test, unless onError takes the failure: then sampling
// goes on.
func SampleFleet(t testing.TB, store LoopStore, fake *fakegithub.Server, scope string, pools []LoopPool, interval time.Duration, onError func(error)) *FleetSampler {
	f := &FleetSampler{store: store, fake: fake, scope: scope, pools: pools, onError: onError,
		stop: make(chan struct{}), held: map[string]int{}, busy: map[string]int{}}
	f.done.Go(func() {
		tick := time.NewTicker(interval)
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
	t.Cleanup(f.halt)
	return f
}

// halt stops sampling, once, and waits for it to end.
func (f *FleetSampler) halt() {
	f.stopOnce.Do(func() { close(f.stop) })
	f.done.Wait()
}

func (f *FleetSampler) sample() {
	f.samples++
	for _, p := range f.pools {
		held, _, err := f.store.ListRunners(context.Background(), p.Name, "", jobs.MaxListLimit)
		if err != nil && f.onError == nil {
			f.readErr = err
			return
		}
		if err != nil {
			f.onError(err)
		}
		busy := 0
		for _, r := range PoolRunners(f.fake, f.scope, p.Name) {
			if r.Busy {
				busy++
			}
		}
		f.held[p.Name] = max(f.held[p.Name], len(held))
		f.busy[p.Name] = max(f.busy[p.Name], busy)
	}
}

// Finish stops sampling and fails t if a pool ever went over its maxRunners.
func (f *FleetSampler) Finish(t testing.TB) {
	t.Helper()
	f.halt()
	if f.readErr != nil {
		t.Fatalf("sampling the fleet: %v", f.readErr)
	}
	for _, p := range f.pools {
		t.Logf("pool %s: at most %d runners held and %d busy on GitHub (maxRunners %d, %d samples)", p.Name, f.held[p.Name], f.busy[p.Name], p.MaxRunners, f.samples)
		if f.held[p.Name] > p.MaxRunners || f.busy[p.Name] > p.MaxRunners {
			t.Errorf("pool %s went over maxRunners %d: %d runners held, %d busy on GitHub", p.Name, p.MaxRunners, f.held[p.Name], f.busy[p.Name])
		}
	}
}
