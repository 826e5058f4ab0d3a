package standalone

import (
	"context"
	"log/slog"

	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/provisioning"
)

// localSignals is the local stack's jobs.Signals: there is no demand queue on one machine, so
// each signal is a log line, and goes to the provisioner's loop when there is one
// (GitHub credentials are configured). A pool without a provider gets no runner from
// it: its demands remain log lines for whatever watches them.
type localSignals struct {
	log         *slog.Logger
	provisioner *provisioning.Loop // nil without GitHub credentials
}

var _ jobs.Signals = localSignals{}

func (s localSignals) Demand(ctx context.Context, d jobs.Demand) error {
	s.log.InfoContext(ctx, "scale-up demand", "pool", d.Pool, "job_id", d.JobID,
		"repository", d.Repository, "labels", d.Labels, "priority", d.Priority, "resent", d.Resent)
	if s.provisioner == nil {
		return nil
	}
	return s.provisioner.Demand(ctx, d)
}

func (s localSignals) Prewarm(ctx context.Context, p jobs.Prewarm) error {
	s.log.InfoContext(ctx, "pre-warm", "repository", p.Repository, "pools", p.Pools, "reason", p.Reason)
	if s.provisioner == nil {
		return nil
	}
	return s.provisioner.Prewarm(ctx, p)
}

func (s localSignals) Retire(ctx context.Context, r jobs.Retire) error {
	s.log.InfoContext(ctx, "runner to retire", "pool", r.Pool, "runner", r.Runner, "provider_id", r.ProviderID,
		"github_id", r.GitHubID, "job_id", r.JobID, "reason", r.Reason)
	if s.provisioner == nil {
		return nil
	}
	return s.provisioner.Retire(ctx, r)
}
