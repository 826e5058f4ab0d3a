package standalone

import (
	"context"
	"log/slog"

	"github.com/runnerhub/webhooks/internal/jobs"
)

// logSignals is the local stack's jobs.Signals: there is no demand queue on one machine,
// so scale-up demand and pre-warm signals become log lines for whatever watches them.
type logSignals struct{ log *slog.Logger }

var _ jobs.Signals = logSignals{}

func (s logSignals) Demand(ctx context.Context, d jobs.Demand) error {
	s.log.InfoContext(ctx, "scale-up demand", "pool", d.Pool, "job_id", d.JobID,
		"repository", d.Repository, "labels", d.Labels, "priority", d.Priority, "resent", d.Resent)
	return nil
}

func (s logSignals) Prewarm(ctx context.Context, p jobs.Prewarm) error {
	s.log.InfoContext(ctx, "pre-warm", "repository", p.Repository, "pools", p.Pools, "reason", p.Reason)
	return nil
}

func (s logSignals) Retire(ctx context.Context, r jobs.Retire) error {
	s.log.InfoContext(ctx, "retire", "runner", r.Runner, "pool", r.Pool, "provider_id", r.ProviderID,
		"github_id", r.GitHubID, "reason", r.Reason)
	return nil
}
