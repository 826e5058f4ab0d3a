// Package provisioning starts and reaps the runners of the pools that name a provider.
//
// For each demand (a job waiting in a pool) it checks, in this order, that the job still
// waits (in the store, and with GitHub once it has waited a while), that the pool has
// room (starting runners count against maxRunners), mints a just-in-time configuration,
// records the runner as starting in one commit, and only then asks the pool's provider to
// create it. A periodic Pass keeps the warm pools, replaces runners that never came
// online, retires idle ones above minIdle, starts runners for waiting jobs whose demand
// was lost or refused for lack of room, and deletes orphans: machines and GitHub runners
// with no RunnerHub runner behind them. Every change of a runner is one of the engine's
// fleet operations: committed, announced to its subscribers and counted.
//
// The Provisioner knows nothing of its host: the local stack runs it in a Loop fed by
// the engine's signals; the provisioner function calls Demand, Prewarm or Retire for
// each SQS record and Pass on a schedule.
package provisioning

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v88/github"

	"github.com/runnerhub/webhooks/internal/github"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/provider"
)

// GitHub is what the provisioner asks GitHub; *github.Client implements it.
type GitHub interface {
	GenerateJITConfig(ctx context.Context, scope github.Scope, req github.JITRequest) (*github.JITConfig, error)
	// DeleteRunner succeeds for a runner already gone.
	DeleteRunner(ctx context.Context, scope github.Scope, id int64) error
	ListRunners(ctx context.Context, scope github.Scope) ([]github.Runner, error)
	Job(ctx context.Context, owner, repo string, id int64) (*gh.WorkflowJob, error)
}

var _ GitHub = (*github.Client)(nil)

// Providers builds the provider a pool's configuration names; *providers.Factory
// implements it.
type Providers interface {
	For(ctx context.Context, cfg provider.Config) (provider.Provider, error)
}

// Metrics count what the provisioner did, by pool; metrics.Provisioner implements it,
// on Prometheus (Metrics.Provisioner) and on EMF (EMF.Provisioner).
type Metrics interface {
	RunnerCreated(pool string)
	CreateFailed(pool string)
	RunnerRetired(pool, reason string)
	BootTimedOut(pool string)
	IdleTimedOut(pool string)
	OrphanReaped(pool, where string) // where: provider or github
	JITFailed(pool, cause string)
}

// Defaults of the Provisioner's tunables.
const (
	// DefaultGitHubCheckAfter is how long a job may have been queued before a demand for
	// it asks GitHub whether it still waits: a fresh demand is for a job GitHub has just
	// queued, an old one (sent again, retried, found by a pass) may be for a job another
	// runner took while RunnerHub missed the event.
	DefaultGitHubCheckAfter = 60 * time.Second
	// DefaultOrphanGrace is how long a machine or a GitHub runner may go without a
	// RunnerHub runner before it is deleted. It covers the moments when one exists without
	// the other by design: a JIT runner is minted just before its record is committed,
	// and a removed runner's machine is deleted just after.
	DefaultOrphanGrace = 2 * time.Minute
)

// ErrCreateFailed wraps a provider's failure to create a runner: its record was removed
// (releasing the capacity), and the demand is worth retrying.
var ErrCreateFailed = errors.New("provider could not create the runner")

// RunnerPrefix starts the name of every runner the provisioner starts:
// rh-<pool>-<8 hex digits>.
const RunnerPrefix = "rh-"

// Provisioner starts and reaps runners. Its methods are safe for concurrent use.
type Provisioner struct {
	Engine    *jobs.Engine
	GitHub    GitHub
	Providers Providers
	// Scopes are RUNNERHUB_GITHUB_RUNNER_SCOPE, where the runners of a pool without
	// "runnerScope" register when it names one (jobs.Pool.RegistrationScope).
	Scopes  []github.Scope
	Metrics Metrics
	Log     *slog.Logger     // discarded when nil
	Now     func() time.Time // time.Now when nil
	// GitHubCheckAfter and OrphanGrace default to DefaultGitHubCheckAfter and
	// DefaultOrphanGrace.
	GitHubCheckAfter time.Duration
	OrphanGrace      time.Duration

	mu sync.Mutex
	// failing is the last JIT failure of each pool, until a JIT configuration is minted
	// for it again.
	failing map[string]JITError
	// orphans remembers when each orphan was first seen. It lives in memory only: a
	// restart (or, on AWS, a new execution environment) starts its grace again, which
	// delays reaping but never reaps early.
	orphans map[string]time.Time
	// saved is what SaveJITErrors last stored.
	saved []byte
	// starting holds the start line of each pool (see startRunner).
	starting map[string]*startLine
}

func (p *Provisioner) now() time.Time {
	if p.Now != nil {
		return p.Now().UTC()
	}
	return time.Now().UTC()
}

func (p *Provisioner) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

// outcome is what one attempt to start a runner came to.
type outcome int

const (
	nothing outcome = iota // nothing to start: the job no longer waits, or has a runner starting
	started
	full // the pool has maxRunners runners
)

// refused reads the engine's answers that mean "start nothing" rather than failure.
func refused(err error) (outcome, bool) {
	switch {
	case errors.Is(err, jobs.ErrPoolFull):
		return full, true
	case errors.Is(err, jobs.ErrNotWaiting), errors.Is(err, jobs.ErrAlreadyStarting), errors.Is(err, jobs.ErrUnknownPool),
		errors.Is(err, jobs.ErrNoProvider):
		return nothing, true
	}
	return nothing, false
}

// Demand starts a runner for d's job, unless the job no longer waits, a runner is
// already starting for it, the pool is full (a Pass or a retired runner's Retire starts
// it once there is room) or the pool has no provider (its demands stay signals). An
// error is worth retrying: errors.Is(err, ErrCreateFailed) when the provider failed, a
// JIT failure otherwise.
func (p *Provisioner) Demand(ctx context.Context, d jobs.Demand) error {
	_, err := p.demand(ctx, d)
	return err
}

func (p *Provisioner) demand(ctx context.Context, d jobs.Demand) (outcome, error) {
	now := p.now()
	pool, job, err := p.Engine.CheckStart(ctx, d.Pool, d.JobID, now)
	if o, ok := refused(err); ok {
		return o, nil
	}
	if err != nil {
		return nothing, err
	}
	if job != nil && !p.waitingOnGitHub(ctx, job, now) {
		return nothing, nil
	}
	return p.start(ctx, pool, d.JobID, d.Repository, now)
}

// waitingOnGitHub asks GitHub whether j, a job waiting in the store, still waits for a
// runner once it has been queued longer than GitHubCheckAfter. When GitHub cannot say
// (unreachable, rate limited), the store's view stands: a runner too many is reaped, a
// runner too few is a stuck job.
func (p *Provisioner) waitingOnGitHub(ctx context.Context, j *jobs.Job, now time.Time) bool {
	after := p.GitHubCheckAfter
	if after <= 0 {
		after = DefaultGitHubCheckAfter
	}
	if j.QueuedAt.IsZero() || now.Sub(j.QueuedAt) < after {
		return true
	}
	owner, repo, ok := strings.Cut(j.Repository, "/")
	if !ok {
		return true
	}
	g, err := p.GitHub.Job(ctx, owner, repo, j.ID)
	switch {
	case errors.Is(err, github.ErrNotFound):
		p.log().InfoContext(ctx, "no runner started: GitHub no longer has the job", "pool", j.Pool, "job_id", j.ID)
		return false
	case err != nil:
		p.log().DebugContext(ctx, "GitHub could not say whether the job still waits: starting its runner", "job_id", j.ID, "error", err)
		return true
	}
	switch status := g.GetStatus(); status {
	case "in_progress", "completed":
		p.log().InfoContext(ctx, "no runner started: GitHub says the job no longer waits", "pool", j.Pool, "job_id", j.ID, "github_status", status)
		return false
	}
	return true
}

// start mints a JIT configuration for a new runner of pool, records it as starting, and
// asks the provider to create it. jobID is the job it is for (0: a warm runner).
func (p *Provisioner) start(ctx context.Context, pool jobs.Pool, jobID int64, repository string, now time.Time) (outcome, error) {
	prov, err := p.Providers.For(ctx, *pool.Provider)
	if err != nil {
		return nothing, fmt.Errorf("pool %s: %w", pool.Name, err)
	}
	scope, err := pool.RegistrationScope(p.Scopes)
	if err != nil {
		p.jitFailed(ctx, pool.Name, "", err)
		return nothing, err
	}
	name := runnerName(pool.Name)
	jit, err := p.GitHub.GenerateJITConfig(ctx, scope, github.JITRequest{Name: name, RunnerGroupID: pool.RunnerGroupID, Labels: pool.Labels})
	if err != nil {
		p.jitFailed(ctx, pool.Name, scope.String(), err)
		return nothing, fmt.Errorf("pool %s: %w", pool.Name, err)
	}
	p.jitMinted(ctx, pool.Name)
	err = p.startRunner(ctx, jobs.StartSpec{RunnerSpec: jobs.RunnerSpec{Name: name, Pool: pool.Name, Ephemeral: pool.Ephemeral}, JobID: jobID, GitHubID: jit.Runner.ID}, now)
	if err != nil {
		// Nothing records the minted runner: remove it now rather than leave it to the
		// orphan reaping.
		if derr := p.GitHub.DeleteRunner(ctx, scope, jit.Runner.ID); derr != nil {
			p.log().WarnContext(ctx, "removing a minted runner that was not started failed: orphan reaping will", "runner", name, "error", derr)
		}
		if o, ok := refused(err); ok {
			return o, nil
		}
		return nothing, fmt.Errorf("pool %s: recording runner %s: %w", pool.Name, name, err)
	}
	id, err := prov.Create(ctx, provider.CreateRequest{Name: name, Pool: pool.Name, Labels: pool.Labels, JITConfig: jit.EncodedConfig,
		Ephemeral: pool.Ephemeral, Repository: repository, JobID: jobID})
	if err != nil {
		p.Metrics.CreateFailed(pool.Name)
		// Removing the record releases its place; the Retire that follows the removal
		// deletes its GitHub registration.
		if _, _, rerr := p.Engine.RemoveRunner(ctx, name, p.now()); rerr != nil && !errors.Is(rerr, jobs.ErrNotFound) {
			p.log().ErrorContext(ctx, "removing a runner whose create failed failed: its boot timeout will", "runner", name, "error", rerr)
		}
		return nothing, fmt.Errorf("%w: pool %s, runner %s: %w", ErrCreateFailed, pool.Name, name, err)
	}
	p.Metrics.RunnerCreated(pool.Name)
	p.log().InfoContext(ctx, "runner started", "pool", pool.Name, "runner", name, "job_id", jobID, "provider_id", id)
	_, _, err = p.Engine.RunnerCreated(ctx, name, id, p.now())
	switch {
	case errors.Is(err, jobs.ErrNotFound):
		// Removed while its machine was being created: its Retire knew no ProviderID.
		return started, p.Retire(ctx, jobs.Retire{Pool: pool.Name, Runner: name, ProviderID: id, GitHubID: jit.Runner.ID, JobID: jobID, Reason: jobs.RetireRemoved, At: now})
	case err != nil:
		// The next Pass fills the ProviderID in from the provider's list.
		p.log().WarnContext(ctx, "recording a runner's provider id failed", "runner", name, "provider_id", id, "error", err)
	}
	return started, nil
}

// startRunner records a starting runner in its pool's start line (see startLine).
func (p *Provisioner) startRunner(ctx context.Context, spec jobs.StartSpec, now time.Time) error {
	p.mu.Lock()
	if p.starting == nil {
		p.starting = map[string]*startLine{}
	}
	line, ok := p.starting[spec.Pool]
	if !ok {
		line = &startLine{}
		p.starting[spec.Pool] = line
	}
	p.mu.Unlock()
	started, err := line.start(ctx, spec, now, p.Engine)
	if err != nil {
		return err
	}
	return started.Err
}

// runnerName is a new runner's unique name, rh-<pool>-<8 random hex digits>.
func runnerName(pool string) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return RunnerPrefix + pool + "-" + hex.EncodeToString(b[:])
}

// isRunnerOf reports whether name is one the provisioner gives pool's runners.
func isRunnerOf(name, pool string) bool {
	rest, ok := strings.CutPrefix(name, RunnerPrefix+pool+"-")
	if !ok || len(rest) != 8 {
		return false
	}
	_, err := hex.DecodeString(rest)
	return err == nil && strings.ToLower(rest) == rest
}

// Prewarm starts warm runners in the pools p names that have a provider and a
// "prewarm": up to that many runners idle or starting without a job, within maxRunners.
// A repeated pre-warm for a pool already warm starts nothing.
func (p *Provisioner) Prewarm(ctx context.Context, w jobs.Prewarm) error {
	now := p.now()
	pools, err := p.Engine.AllPools(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, pool := range pools {
		if pool.Provider == nil || pool.Prewarm == 0 || !slices.Contains(w.Pools, pool.Name) {
			continue
		}
		runners, err := p.runners(ctx, pool.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := p.warm(ctx, pool, pool.Prewarm, runners, now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// warm starts warm runners until pool has target runners idle or starting without a
// job, or is full, and returns how many it started.
func (p *Provisioner) warm(ctx context.Context, pool jobs.Pool, target int, runners []*jobs.Runner, now time.Time) (int, error) {
	spare := 0
	for _, r := range runners {
		if r.State == jobs.RunnerIdle || (r.State == jobs.RunnerStarting && r.JobID == 0) {
			spare++
		}
	}
	n := 0
	for ; spare < target; spare++ {
		// Room first, so that a full pool mints nothing.
		if _, _, err := p.Engine.CheckStart(ctx, pool.Name, 0, now); err != nil {
			if _, ok := refused(err); ok {
				return n, nil
			}
			return n, err
		}
		o, err := p.start(ctx, pool, 0, "", now)
		if err != nil || o != started {
			return n, err
		}
		n++
	}
	return n, nil
}

// Retire deletes a removed runner's machine through its pool's provider and its
// registration from GitHub. It is idempotent: a machine or registration already gone is
// success. The place a completed job's runner leaves goes to the pool's waiting jobs.
func (p *Provisioner) Retire(ctx context.Context, r jobs.Retire) error {
	pool, known, err := p.Engine.Pool(ctx, r.Pool)
	if err != nil {
		return err
	}
	if !known {
		pool.Name = r.Pool
	}
	var errs []error
	if r.ProviderID != "" {
		if !known || pool.Provider == nil {
			p.log().WarnContext(ctx, "a retired runner's pool no longer names a provider: delete its machine yourself",
				"pool", r.Pool, "runner", r.Runner, "provider_id", r.ProviderID)
		} else if err := p.deleteMachine(ctx, pool, r.Runner, r.ProviderID); err != nil {
			errs = append(errs, err)
		}
	}
	if r.GitHubID != 0 {
		scope, err := pool.RegistrationScope(p.Scopes)
		if err == nil {
			err = p.GitHub.DeleteRunner(ctx, scope, r.GitHubID)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("removing runner %s from GitHub: %w", r.Runner, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	p.Metrics.RunnerRetired(r.Pool, r.Reason)
	p.log().InfoContext(ctx, "runner retired", "pool", r.Pool, "runner", r.Runner, "provider_id", r.ProviderID, "reason", r.Reason, "job_id", r.JobID)
	// The place a completed job's runner leaves goes to the next waiting job at once. A
	// removed runner's does not: its removal is a failed create (retried with backoff),
	// a boot timeout (whose pass starts the job's runner again), an idle timeout or an
	// operator's.
	if r.Reason == jobs.RetireCompleted && known && pool.Provider != nil {
		if _, err := p.backlog(ctx, pool, p.now()); err != nil {
			p.log().WarnContext(ctx, "starting runners for waiting jobs failed: the next pass will", "pool", pool.Name, "error", err)
		}
	}
	return nil
}

func (p *Provisioner) deleteMachine(ctx context.Context, pool jobs.Pool, name, providerID string) error {
	prov, err := p.Providers.For(ctx, *pool.Provider)
	if err == nil {
		err = prov.Delete(ctx, name, providerID)
	}
	if err != nil {
		return fmt.Errorf("deleting the machine %s of runner %s: %w", providerID, name, err)
	}
	return nil
}

// backlog starts runners for the pool's waiting jobs, in queue order, until the pool is
// full: the jobs whose demand found no room, or was lost. It reads at most maxRunners
// of the queue, which is enough: each job before the first it can start for has a
// runner starting, and starting runners count against maxRunners.
func (p *Provisioner) backlog(ctx context.Context, pool jobs.Pool, now time.Time) (int, error) {
	pending, err := p.Engine.Store.PendingJobs(ctx, pool.Name, "", min(pool.MaxRunners, jobs.MaxListLimit))
	if err != nil {
		return 0, fmt.Errorf("pending jobs of pool %s: %w", pool.Name, err)
	}
	n := 0
	for _, j := range pending {
		o, err := p.demand(ctx, jobs.Demand{Pool: pool.Name, JobID: j.ID, Repository: j.Repository, Labels: j.Labels, Priority: j.Priority, At: now})
		if err != nil || o == full {
			return n, err
		}
		if o == started {
			n++
		}
	}
	return n, nil
}

// runners reads every runner of pool.
func (p *Provisioner) runners(ctx context.Context, pool string) ([]*jobs.Runner, error) {
	runners, err := p.Engine.AllRunners(ctx, pool)
	if err != nil {
		return nil, fmt.Errorf("listing the runners of pool %s: %w", pool, err)
	}
	return runners, nil
}
