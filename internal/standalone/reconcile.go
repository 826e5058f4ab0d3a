package standalone

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/runnerhub/webhooks/internal/api/diagnosis"
	"github.com/runnerhub/webhooks/internal/config"
	"github.com/runnerhub/webhooks/internal/github"
	"github.com/runnerhub/webhooks/internal/httpapi"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/metrics"
	"github.com/runnerhub/webhooks/internal/reconcile"
	"github.com/runnerhub/webhooks/internal/storage/embedded"
)

// newGitHub builds the GitHub client from cfg.GitHub, shared by the reconciler and the
// provisioner (so that a rate limit one meets pauses the other), or returns nil, after
// saying so once, when no GitHub credentials are configured.
func newGitHub(cfg config.Config, log *slog.Logger, rm *metrics.Reconciler) (*github.Client, error) {
	gc := cfg.GitHub
	if !gc.Enabled() {
		log.Info("GitHub: no credentials configured (RUNNERHUB_GITHUB_TOKEN or RUNNERHUB_GITHUB_APP_ID): redelivery, reconciliation and starting runners are off")
		if slices.ContainsFunc(cfg.Pools, func(p jobs.Pool) bool { return p.Provider != nil }) {
			log.Warn("pools name a provider, but without GitHub credentials no runner can be started: their demands are only logged")
		}
		return nil, nil
	}
	return github.New(gc, github.Options{Observer: rm, Log: log})
}

// newReconciler builds the reconciler on client (nil: no credentials, no reconciler).
func newReconciler(cfg config.Config, log *slog.Logger, client *github.Client, store *embedded.Store, queue *embedded.Queue,
	engine *jobs.Engine, rm *metrics.Reconciler) *reconcile.Reconciler {
	if client == nil {
		return nil
	}
	gc := cfg.GitHub
	log.Info("GitHub: reconciling", "api", gc.APIURL, "app", gc.App(), "hooks", len(gc.Hooks),
		"runner_scopes", len(gc.RunnerScopes), "import_runners", gc.ImportRunners, "interval", gc.Interval.String(), "after", gc.After.String())
	r := &reconcile.Reconciler{
		GitHub: client, Hooks: gc.Hooks, Deliveries: store, Queue: queue, Jobs: store, Checkpoints: store,
		Metrics: rm, Limits: reconcile.DefaultLimits, Interval: gc.Interval, After: gc.After, Log: log, Now: time.Now,
	}
	if len(gc.RunnerScopes) > 0 {
		r.Runners = &reconcile.RunnerReconciler{GitHub: client, Engine: engine, Scopes: gc.RunnerScopes,
			Import: gc.ImportRunners, Grace: gc.After, Log: log, Now: time.Now}
	}
	return r
}

// diagnosisRoutes serves GET /api/jobs/{id}/diagnosis, with GitHub's view when the
// reconciler has credentials.
func diagnosisRoutes(cfg config.Config, log *slog.Logger, store *embedded.Store, engine *jobs.Engine, r *reconcile.Reconciler) []httpapi.Route {
	d := diagnosis.Deps{Engine: engine, Lister: store, OfflineAfter: cfg.RunnerOfflineAfter, Log: log}
	if r != nil {
		d.GitHub, d.Hooks = r.GitHub, r.Hooks
	}
	return diagnosis.Routes(d)
}

// every runs f every d until ctx ends.
func every(ctx context.Context, d time.Duration, f func(ctx context.Context)) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		f(ctx)
	}
}
