package provisioning

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/runnerhub/webhooks/internal/github"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/provider"
)

// Report is what one Pass did.
type Report struct {
	// Started counts the runners started for waiting jobs and warm pools.
	Started int `json:"started"`
	// Online counts the runners GitHub lists online that were recorded as seen.
	Online            int      `json:"online"`
	BootTimeouts      int      `json:"bootTimeouts"`
	IdleTimeouts      int      `json:"idleTimeouts"`
	OrphansReaped     int      `json:"orphansReaped"`
	ProviderIDsFilled int      `json:"providerIdsFilled"`
	Errors            []string `json:"errors,omitempty"`
}

// Pass brings every pool with a provider in line with its settings, at now:
//   - a machine the provider lists whose runner has no ProviderID (a crash or a failed
//     write after Create) gets it recorded;
//   - a runner GitHub lists online is recorded as seen (a starting one becomes idle);
//   - a runner still starting after bootTimeout is removed (its Retire deletes the
//     machine and the registration) and its job's demand is sent again;
//   - idle runners above minIdle, idle past idleTimeout, are removed, the longest idle
//     first, except those GitHub lists busy;
//   - waiting jobs get runners while there is room (their demand found none, or was
//     lost), then the warm pool is filled up to minIdle runners idle or starting
//     without a job;
//   - machines and GitHub runners (named rh-<pool>-…) with no RunnerHub runner are
//     deleted once they have been orphans for OrphanGrace.
//
// A failure in one pool or step is reported, and the others still run.
func (p *Provisioner) Pass(ctx context.Context, now time.Time) Report {
	now = now.UTC()
	var rep Report
	pools, err := p.Engine.AllPools(ctx)
	if err != nil {
		rep.Errors = append(rep.Errors, err.Error())
		return rep
	}
	managed := slices.DeleteFunc(pools, func(pl jobs.Pool) bool { return pl.Provider == nil })
	listed := p.listGitHub(ctx, managed, &rep)
	seen := map[string]bool{}
	for _, pool := range managed {
		scope, _ := pool.RegistrationScope(p.Scopes)
		if err := p.passPool(ctx, pool, now, listed[scope], scope, seen, &rep); err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("pool %s: %v", pool.Name, err))
		}
	}
	p.forgetOrphans(seen)
	level := slog.LevelDebug
	switch {
	case len(rep.Errors) > 0:
		level = slog.LevelWarn
	case rep.Started+rep.BootTimeouts+rep.IdleTimeouts+rep.OrphansReaped+rep.ProviderIDsFilled > 0:
		level = slog.LevelInfo
	}
	p.log().Log(ctx, level, "provisioning pass", slog.Int("pools", len(managed)), slog.Int("started", rep.Started),
		slog.Int("online", rep.Online), slog.Int("boot_timeouts", rep.BootTimeouts), slog.Int("idle_timeouts", rep.IdleTimeouts),
		slog.Int("orphans_reaped", rep.OrphansReaped), slog.Int("provider_ids_filled", rep.ProviderIDsFilled), slog.Any("errors", rep.Errors))
	return rep
}

// listGitHub lists GitHub's runners once per scope of the managed pools, by name. A
// scope that cannot be listed is left out: nothing is decided on a partial view.
func (p *Provisioner) listGitHub(ctx context.Context, pools []jobs.Pool, rep *Report) map[github.Scope][]github.Runner {
	out := map[github.Scope][]github.Runner{}
	failed := map[github.Scope]bool{}
	for _, pool := range pools {
		scope, err := pool.RegistrationScope(p.Scopes)
		if err != nil || failed[scope] || out[scope] != nil {
			continue
		}
		// The listing can wait for the next rate-limit window; JIT configurations cannot,
		// so it leaves them the budget's last tenth, as the reconciler does.
		list, err := p.GitHub.ListRunners(github.Background(ctx), scope)
		if err != nil {
			failed[scope] = true
			rep.Errors = append(rep.Errors, err.Error())
			continue
		}
		if list == nil {
			list = []github.Runner{} // listed, and empty: not unknown
		}
		out[scope] = list
	}
	return out
}

// passPool runs the pass for one pool. theirs is GitHub's list of the pool's scope, nil
// when it is unknown.
func (p *Provisioner) passPool(ctx context.Context, pool jobs.Pool, now time.Time, theirs []github.Runner, scope github.Scope,
	seen map[string]bool, rep *Report) error {
	prov, err := p.Providers.For(ctx, *pool.Provider)
	if err != nil {
		return err
	}
	ours, err := p.runners(ctx, pool.Name)
	if err != nil {
		return err
	}
	var errs []error
	machines, listErr := prov.List(ctx, pool.Name)
	if listErr != nil {
		errs = append(errs, fmt.Errorf("provider list: %w", listErr))
	} else {
		errs = append(errs, p.fillProviderIDs(ctx, ours, machines, now, rep))
	}
	registered := map[string]github.Runner{}
	for _, g := range theirs {
		registered[g.Name] = g
	}
	errs = append(errs, p.markOnline(ctx, ours, registered, now, rep))
	ours, err = p.bootTimeouts(ctx, pool, ours, now, rep)
	errs = append(errs, err)
	ours, err = p.idleTimeouts(ctx, pool, ours, registered, now, rep)
	errs = append(errs, err)
	n, err := p.backlog(ctx, pool, now)
	rep.Started += n
	errs = append(errs, err)
	n, err = p.warm(ctx, pool, pool.MinIdle, ours, now)
	rep.Started += n
	errs = append(errs, err)

	// Orphans are judged against the runners read before the provider's listing: a
	// machine listed for a runner started in between looks like an orphan for one pass,
	// which the grace covers, as it covers a machine whose runner was removed a moment ago.
	byName := map[string]*jobs.Runner{}
	for _, r := range ours {
		byName[r.Name] = r
	}
	if listErr == nil {
		errs = append(errs, p.reapMachines(ctx, pool, prov, machines, byName, now, seen, rep))
	}
	if theirs != nil {
		errs = append(errs, p.reapRegistrations(ctx, pool, scope, theirs, byName, now, seen, rep))
	}
	return errors.Join(errs...)
}

// fillProviderIDs records the ProviderID of runners whose machine the provider lists.
func (p *Provisioner) fillProviderIDs(ctx context.Context, ours []*jobs.Runner, machines []provider.Instance, now time.Time, rep *Report) error {
	byName := map[string]*jobs.Runner{}
	for _, r := range ours {
		byName[r.Name] = r
	}
	var errs []error
	for _, m := range machines {
		r := byName[m.Name]
		if r == nil || r.ProviderID != "" {
			continue
		}
		_, _, err := p.Engine.RunnerCreated(ctx, r.Name, m.ProviderID, now)
		if err != nil && !errors.Is(err, jobs.ErrNotFound) {
			errs = append(errs, err)
			continue
		}
		r.ProviderID = m.ProviderID
		rep.ProviderIDsFilled++
	}
	return errors.Join(errs...)
}

// markOnline records as seen the runners GitHub lists online or busy: every starting
// one (which then becomes idle, and is matched with a waiting job), and the others once
// half of the engine's OfflineAfter has passed since they were last seen, so a warm
// runner never counts as offline between reconciliations.
func (p *Provisioner) markOnline(ctx context.Context, ours []*jobs.Runner, registered map[string]github.Runner, now time.Time, rep *Report) error {
	var errs []error
	for i, r := range ours {
		g, ok := registered[r.Name]
		if !ok || (g.Status != "online" && !g.Busy) {
			continue
		}
		stale := p.Engine.OfflineAfter > 0 && now.Sub(r.LastSeen) > p.Engine.OfflineAfter/2
		if r.State != jobs.RunnerStarting && !stale {
			continue
		}
		seen, _, err := p.Engine.Heartbeat(ctx, r.Name, now)
		if err != nil {
			if !errors.Is(err, jobs.ErrNotFound) {
				errs = append(errs, err)
			}
			continue
		}
		ours[i] = seen
		rep.Online++
	}
	return errors.Join(errs...)
}

// bootTimeouts removes the runners starting for longer than the pool's bootTimeout and
// sends the demands of their jobs again. It returns the runners left.
func (p *Provisioner) bootTimeouts(ctx context.Context, pool jobs.Pool, ours []*jobs.Runner, now time.Time, rep *Report) ([]*jobs.Runner, error) {
	var errs []error
	left := ours[:0:0]
	var waiting []int64
	for _, r := range ours {
		if r.State != jobs.RunnerStarting || now.Sub(r.UpdatedAt) <= pool.BootTimeout {
			left = append(left, r)
			continue
		}
		if _, _, err := p.Engine.RemoveRunner(ctx, r.Name, now); err != nil && !errors.Is(err, jobs.ErrNotFound) {
			errs = append(errs, err)
			left = append(left, r)
			continue
		}
		rep.BootTimeouts++
		p.Metrics.BootTimedOut(pool.Name)
		p.log().WarnContext(ctx, "runner did not come online within the pool's bootTimeout: replaced", "pool", pool.Name,
			"runner", r.Name, "provider_id", r.ProviderID, "boot_timeout", pool.BootTimeout.String(), "job_id", r.JobID)
		if r.JobID != 0 {
			waiting = append(waiting, r.JobID)
		}
	}
	for _, id := range waiting {
		j, err := p.Engine.Store.Job(ctx, id)
		if errors.Is(err, jobs.ErrNotFound) {
			continue
		}
		if err == nil {
			var o outcome
			o, err = p.demand(ctx, jobs.Demand{Pool: pool.Name, JobID: j.ID, Repository: j.Repository, Labels: j.Labels, Priority: j.Priority, At: now, Resent: true})
			if o == started {
				rep.Started++
			}
		}
		errs = append(errs, err)
	}
	return left, errors.Join(errs...)
}

// idleTimeouts removes the provisioned runners idle past the pool's idleTimeout while
// the pool has more than minIdle idle runners, the longest idle first, and returns the
// runners left. Ephemeral runners are no exception: one idle is one no job came for (a
// warm runner, a pre-warmed one, or one whose job another runner took), and would
// otherwise hold its place and its machine for good. A runner GitHub lists busy has a
// job RunnerHub has not heard of yet, and stays.
func (p *Provisioner) idleTimeouts(ctx context.Context, pool jobs.Pool, ours []*jobs.Runner, registered map[string]github.Runner, now time.Time,
	rep *Report) ([]*jobs.Runner, error) {
	idle := 0
	var candidates []*jobs.Runner
	for _, r := range ours {
		if r.State != jobs.RunnerIdle {
			continue
		}
		idle++
		if r.Provisioned() && now.Sub(r.UpdatedAt) > pool.IdleTimeout && !registered[r.Name].Busy {
			candidates = append(candidates, r)
		}
	}
	slices.SortFunc(candidates, func(a, b *jobs.Runner) int { return a.UpdatedAt.Compare(b.UpdatedAt) })
	removed := map[string]bool{}
	var errs []error
	for _, r := range candidates {
		if idle <= pool.MinIdle {
			break
		}
		if _, _, err := p.Engine.RemoveRunner(ctx, r.Name, now); err != nil && !errors.Is(err, jobs.ErrNotFound) {
			errs = append(errs, err)
			continue
		}
		idle--
		removed[r.Name] = true
		rep.IdleTimeouts++
		p.Metrics.IdleTimedOut(pool.Name)
		p.log().InfoContext(ctx, "idle runner above minIdle retired", "pool", pool.Name, "runner", r.Name,
			"idle_since", r.UpdatedAt, "idle_timeout", pool.IdleTimeout.String())
	}
	left := slices.DeleteFunc(slices.Clone(ours), func(r *jobs.Runner) bool { return removed[r.Name] })
	return left, errors.Join(errs...)
}

// reapMachines deletes the machines of pool with no runner (or whose runner records
// another machine) once they have been orphans for OrphanGrace.
func (p *Provisioner) reapMachines(ctx context.Context, pool jobs.Pool, prov provider.Provider, machines []provider.Instance,
	ours map[string]*jobs.Runner, now time.Time, seen map[string]bool, rep *Report) error {
	var errs []error
	for _, m := range machines {
		if r := ours[m.Name]; r != nil && (r.ProviderID == "" || r.ProviderID == m.ProviderID) {
			continue
		}
		key := "provider/" + pool.Name + "/" + m.ProviderID
		seen[key] = true
		if !p.orphanDue(key, now) {
			continue
		}
		if err := prov.Delete(ctx, m.Name, m.ProviderID); err != nil {
			errs = append(errs, fmt.Errorf("deleting orphaned machine %s: %w", m.ProviderID, err))
			continue
		}
		p.reaped(ctx, key, pool.Name, "provider", "machine with no runner deleted", "runner", m.Name, "provider_id", m.ProviderID)
		rep.OrphansReaped++
	}
	return errors.Join(errs...)
}

// reapRegistrations deletes the GitHub runners named as pool's runners (rh-<pool>-…)
// that have no runner once they have been orphans for OrphanGrace.
func (p *Provisioner) reapRegistrations(ctx context.Context, pool jobs.Pool, scope github.Scope, theirs []github.Runner,
	ours map[string]*jobs.Runner, now time.Time, seen map[string]bool, rep *Report) error {
	var errs []error
	for _, g := range theirs {
		if ours[g.Name] != nil || !isRunnerOf(g.Name, pool.Name) {
			continue
		}
		key := "github/" + scope.String() + "/" + strconv.FormatInt(g.ID, 10)
		seen[key] = true
		if !p.orphanDue(key, now) {
			continue
		}
		if err := p.GitHub.DeleteRunner(ctx, scope, g.ID); err != nil {
			errs = append(errs, fmt.Errorf("removing orphaned GitHub runner %s: %w", g.Name, err))
			continue
		}
		p.reaped(ctx, key, pool.Name, "github", "GitHub runner with no runner behind it removed", "runner", g.Name, "github_id", g.ID)
		rep.OrphansReaped++
	}
	return errors.Join(errs...)
}

// orphanDue notes an orphan seen at now and reports whether its grace is over.
func (p *Provisioner) orphanDue(key string, now time.Time) bool {
	grace := p.OrphanGrace
	if grace <= 0 {
		grace = DefaultOrphanGrace
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	first, ok := p.orphans[key]
	if !ok {
		if p.orphans == nil {
			p.orphans = map[string]time.Time{}
		}
		p.orphans[key] = now
		return false
	}
	return now.Sub(first) >= grace
}

func (p *Provisioner) reaped(ctx context.Context, key, pool, where, msg string, attrs ...any) {
	p.mu.Lock()
	delete(p.orphans, key)
	p.mu.Unlock()
	p.Metrics.OrphanReaped(pool, where)
	p.log().WarnContext(ctx, "orphan reaped: "+msg, append([]any{"pool", pool}, attrs...)...)
}

// forgetOrphans forgets the orphans a pass no longer saw: they found their runner, or
// went away by themselves.
func (p *Provisioner) forgetOrphans(seen map[string]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	maps.DeleteFunc(p.orphans, func(key string, _ time.Time) bool { return !seen[key] })
}
