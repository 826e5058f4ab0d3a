package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/runnerhub/webhooks/internal/github"
	"github.com/runnerhub/webhooks/internal/jobs"
)

// RunnerReconciler holds RunnerHub's runners against GitHub's list of the scopes
// RunnerHub manages, through the fleet operations (the same as the runners API):
//   - a runner RunnerHub holds that GitHub no longer lists is retired (a job reserved
//     for it goes back to the queue);
//   - a runner GitHub lists as online or busy counts as seen (a heartbeat);
//   - with Import, a GitHub runner RunnerHub does not know joins the first pool, by name,
//     whose labels it has all of.
type RunnerReconciler struct {
	GitHub GitHub
	Engine *jobs.Engine
	Scopes []github.Scope
	Import bool
	// Grace spares runners that changed this recently: one just registered may not be
	// listed by GitHub yet.
	Grace time.Duration
	Log   *slog.Logger
	Now   func() time.Time
}

func (rr *RunnerReconciler) run(ctx context.Context, rep *Report) error {
	if len(rr.Scopes) == 0 {
		return nil
	}
	theirs := map[string]github.Runner{}
	for _, s := range rr.Scopes {
		list, err := rr.GitHub.ListRunners(ctx, s)
		if err != nil {
			// Nothing is retired on a partial view.
			return err
		}
		for _, r := range list {
			theirs[r.Name] = r
		}
	}
	ours, err := rr.ours(ctx)
	if err != nil {
		return err
	}
	now := rr.Now().UTC()
	var errs []error
	for _, r := range ours {
		g, listed := theirs[r.Name]
		delete(theirs, r.Name)
		switch {
		case !listed && now.Sub(r.UpdatedAt) > rr.Grace && now.Sub(r.LastSeen) > rr.Grace:
			_, _, err := rr.Engine.RemoveRunner(ctx, r.Name, now)
			if err != nil && !errors.Is(err, jobs.ErrNotFound) {
				errs = append(errs, err)
				continue
			}
			rep.RunnersRetired++
			rr.Log.WarnContext(ctx, "runner retired: GitHub no longer lists it", "runner", r.Name, "pool", r.Pool, "state", string(r.State))
		case listed && (g.Status == "online" || g.Busy):
			_, _, err := rr.Engine.Heartbeat(ctx, r.Name, now)
			if err != nil && !errors.Is(err, jobs.ErrNotFound) {
				errs = append(errs, err)
				continue
			}
			rep.RunnersSeen++
		}
	}
	if rr.Import {
		errs = append(errs, rr.importRunners(ctx, theirs, now, rep))
	}
	return errors.Join(errs...)
}

func (rr *RunnerReconciler) ours(ctx context.Context) ([]*jobs.Runner, error) {
	runners, err := rr.Engine.AllRunners(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("listing runners: %w", err)
	}
	return runners, nil
}

// importRunners registers GitHub's runners that RunnerHub does not know, in name order.
func (rr *RunnerReconciler) importRunners(ctx context.Context, unknown map[string]github.Runner, now time.Time, rep *Report) error {
	pools, err := rr.Engine.AllPools(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(unknown)) {
		g := unknown[name]
		i := slices.IndexFunc(pools, func(p jobs.Pool) bool { return jobs.Fits(p.Labels, g.Labels) })
		if i < 0 {
			rr.Log.DebugContext(ctx, "GitHub runner fits no pool: not imported", "runner", name, "labels", g.Labels)
			continue
		}
		pool := pools[i]
		_, plan, err := rr.Engine.RegisterRunner(ctx, jobs.RunnerSpec{Name: name, Pool: pool.Name, Labels: ownLabels(g.Labels, pool.Labels)}, now)
		switch {
		case errors.Is(err, jobs.ErrExists):
			continue
		case errors.Is(err, jobs.ErrInvalid), errors.Is(err, jobs.ErrPoolFull):
			rr.Log.WarnContext(ctx, "GitHub runner not imported", "runner", name, "pool", pool.Name, "error", err)
			continue
		case err != nil:
			errs = append(errs, err)
			continue
		}
		rep.RunnersImported++
		rr.Log.InfoContext(ctx, "GitHub runner imported", "runner", name, "pool", pool.Name, "outcome", plan.Outcome.Text())
	}
	return errors.Join(errs...)
}

// ownLabels are a runner's labels beyond its pool's and GitHub's implied self-hosted.
func ownLabels(labels, pool []string) []string {
	var out []string
	for _, l := range labels {
		if strings.EqualFold(l, "self-hosted") || slices.ContainsFunc(pool, func(p string) bool { return strings.EqualFold(p, l) }) {
			continue
		}
		out = append(out, l)
	}
	return out
}
