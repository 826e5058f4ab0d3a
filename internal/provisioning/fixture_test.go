package provisioning_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/github"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/jobs/jobstest"
	"github.com/runnerhub/webhooks/internal/provider"
	"github.com/runnerhub/webhooks/internal/provisioning"
	"github.com/runnerhub/webhooks/internal/testenv"
	"github.com/runnerhub/webhooks/internal/testenv/fakegithub"
)

const (
	testScope = "org/octo"
	testRepo  = "octo/app"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// linuxPool is an ephemeral pool with a provider; tests adjust a copy.
func linuxPool() jobs.Pool {
	return jobs.Pool{Name: "linux", Labels: []string{"linux"}, MaxRunners: 2,
		Provider:    &provider.Config{Type: provider.TypeExec, Exec: &provider.ExecConfig{Command: []string{"unused"}, Timeout: time.Minute}},
		BootTimeout: 5 * time.Minute, IdleTimeout: 15 * time.Minute, Ephemeral: true, RunnerGroupID: 1}
}

// fixture is a provisioner on the embedded store, a fake GitHub (through go-github) and
// a fake provider, with a clock the test moves.
type fixture struct {
	engine   *jobs.Engine
	gh       *fakegithub.Server
	github   *hookedGitHub
	machines *machines
	metrics  *counts
	signals  *jobstest.Signals
	p        *provisioning.Provisioner
	log      *testenv.SyncBuffer
	now      time.Time
	mu       sync.Mutex
}

func newFixture(t *testing.T, pools ...jobs.Pool) *fixture {
	t.Helper()
	fake := fakegithub.Start(t)
	fake.Token = "github_pat_provisioning"
	client, err := github.New(github.Config{APIURL: fake.URL, Token: fake.Token}, github.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{gh: fake, machines: &machines{byName: map[string]provider.Instance{}, pools: map[string]string{}}, metrics: &counts{n: map[string]int{}},
		signals: &jobstest.Signals{}, log: &testenv.SyncBuffer{}, now: t0}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("provisioner's log:\n%s", f.log.String())
		}
	})
	f.engine = &jobs.Engine{Store: testenv.Embedded(t).Store(), Pools: pools, Step: time.Minute}
	f.engine.Subscribe(&jobs.SignalSender{Signals: f.signals, Log: slog.New(slog.DiscardHandler)})
	scope, _ := github.ParseScope(testScope)
	f.github = &hookedGitHub{GitHub: client}
	f.p = &provisioning.Provisioner{Engine: f.engine, GitHub: f.github, Providers: f.machines, Scopes: []github.Scope{scope},
		Metrics: f.metrics, Log: slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now: f.clock, OrphanGrace: time.Minute}
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	return f.now
}

// pending stores job id waiting in pool, queued at `at`, and tells the fake GitHub it is
// queued there too.
func (f *fixture) pending(t *testing.T, id int64, pool string, at time.Time) jobs.Demand {
	t.Helper()
	j := &jobs.Job{ID: id, Repository: testRepo, Labels: []string{"linux"}, Status: jobs.StatusQueued, Pool: pool,
		Allocation: jobs.AllocationPending, QueuedAt: at, QueueKey: jobs.RankKey(jobs.Rank(at, 0, f.engine.Step), id)}
	if err := f.engine.Store.Commit(t.Context(), &jobs.Change{Jobs: []*jobs.Job{j}}); err != nil {
		t.Fatal(err)
	}
	f.gh.PutJob(testRepo, fakegithub.Job{ID: id, Status: "queued", Labels: j.Labels, CreatedAt: at})
	return jobs.Demand{Pool: pool, JobID: id, Repository: testRepo, Labels: j.Labels, At: at}
}

// pendingJobs queues n jobs (ids 100 on) in pool at t0 and returns their demands.
func (f *fixture) pendingJobs(t *testing.T, n int, pool string) []jobs.Demand {
	t.Helper()
	var demands []jobs.Demand
	for id := range int64(n) {
		demands = append(demands, f.pending(t, 100+id, pool, t0))
	}
	return demands
}

// demandAtOnce hands every demand to the provisioner at once, each on its own goroutine,
// and waits for them all.
func (f *fixture) demandAtOnce(t *testing.T, demands []jobs.Demand) {
	var wg sync.WaitGroup
	for _, d := range demands {
		wg.Go(func() {
			if err := f.p.Demand(t.Context(), d); err != nil {
				t.Errorf("Demand %d: %v", d.JobID, err)
			}
		})
	}
	wg.Wait()
}

// take marks job id as taken by a runner RunnerHub does not manage, as an in_progress
// naming a hosted runner would.
func (f *fixture) take(t *testing.T, id int64) {
	t.Helper()
	j, err := f.engine.Store.Job(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	j.Status, j.Allocation, j.QueueKey, j.RunnerName = jobs.StatusInProgress, jobs.AllocationAssigned, "", "elsewhere"
	if err := f.engine.Store.Commit(t.Context(), &jobs.Change{Jobs: []*jobs.Job{j}}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) runners(t *testing.T, pool string) []*jobs.Runner {
	t.Helper()
	page, _, err := f.engine.Store.ListRunners(t.Context(), pool, "", jobs.MaxListLimit)
	if err != nil {
		t.Fatal(err)
	}
	return page
}

func (f *fixture) job(t *testing.T, id int64) *jobs.Job {
	t.Helper()
	j, err := f.engine.Store.Job(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// retire hands the Retire signals sent so far to the provisioner, as a host does.
func (f *fixture) retire(t *testing.T) []jobs.Retire {
	t.Helper()
	sent := f.signals.TakeRetires()
	for _, r := range sent {
		if err := f.p.Retire(t.Context(), r); err != nil {
			t.Fatalf("Retire %s: %v", r.Runner, err)
		}
	}
	return sent
}

// online makes a runner come online, as the reconciler's heartbeat does.
func (f *fixture) online(t *testing.T, name string, at time.Time) {
	t.Helper()
	if _, _, err := f.engine.Heartbeat(t.Context(), name, at); err != nil {
		t.Fatalf("heartbeat %s: %v", name, err)
	}
}

func (f *fixture) registered() []string { return f.gh.RunnerNames(testScope) }

func (f *fixture) logged(msg string) int { return strings.Count(f.log.String(), msg) }

// hookedGitHub is the real client, with a hook after each JIT configuration minted: a
// moment for a test to change the world in.
type hookedGitHub struct {
	provisioning.GitHub
	afterJIT func()
}

func (h *hookedGitHub) GenerateJITConfig(ctx context.Context, scope github.Scope, req github.JITRequest) (*github.JITConfig, error) {
	cfg, err := h.GitHub.GenerateJITConfig(ctx, scope, req)
	if err == nil && h.afterJIT != nil {
		h.afterJIT()
	}
	return cfg, err
}

// machines is a fake provider: one Instance per created runner.
type machines struct {
	mu         sync.Mutex
	byName     map[string]provider.Instance
	pools      map[string]string // machine name → pool
	requests   []provider.CreateRequest
	deletes    []string
	failCreate int          // the next creates that fail
	onCreate   func() error // called before each create when set
}

var _ provider.Provider = (*machines)(nil)

func (m *machines) For(context.Context, provider.Config) (provider.Provider, error) { return m, nil }

func (m *machines) Create(_ context.Context, req provider.CreateRequest) (string, error) {
	m.mu.Lock()
	hook := m.onCreate
	m.requests = append(m.requests, req)
	fail := m.failCreate > 0
	if fail {
		m.failCreate--
	}
	m.mu.Unlock()
	if hook != nil {
		if err := hook(); err != nil {
			return "", err
		}
	}
	if fail {
		return "", errors.New("cloud says no")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	id := "m-" + req.Name
	m.byName[req.Name] = provider.Instance{Name: req.Name, ProviderID: id}
	m.pools[req.Name] = req.Pool
	return id, nil
}

func (m *machines) Delete(_ context.Context, name, providerID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deletes = append(m.deletes, providerID)
	if i, ok := m.byName[name]; ok && i.ProviderID == providerID {
		delete(m.byName, name)
	}
	return nil
}

func (m *machines) List(_ context.Context, pool string) ([]provider.Instance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []provider.Instance
	for name, i := range m.byName {
		if m.pools[name] == pool {
			out = append(out, i)
		}
	}
	return out, nil
}

// add puts a machine there that RunnerHub did not start (or forgot).
func (m *machines) add(pool, name, id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.byName[name] = provider.Instance{Name: name, ProviderID: id}
	m.pools[name] = pool
}

func (m *machines) names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for n := range m.byName {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func (m *machines) created() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.requests)
}

// counts is a fake provisioning.Metrics.
type counts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counts) add(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[key]++
}

func (c *counts) get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

func (c *counts) RunnerCreated(pool string)         { c.add("created/" + pool) }
func (c *counts) CreateFailed(pool string)          { c.add("create_failed/" + pool) }
func (c *counts) RunnerRetired(pool, reason string) { c.add("retired/" + pool + "/" + reason) }
func (c *counts) BootTimedOut(pool string)          { c.add("boot_timeout/" + pool) }
func (c *counts) IdleTimedOut(pool string)          { c.add("idle_timeout/" + pool) }
func (c *counts) OrphanReaped(pool, where string)   { c.add("orphan/" + pool + "/" + where) }
func (c *counts) JITFailed(pool, cause string)      { c.add("jit/" + pool + "/" + cause) }

func names(rs []*jobs.Runner) string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s(%s job %d)", r.Name, r.State, r.JobID))
	}
	return strings.Join(out, ", ")
}
