package standalone

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/runnerhub/webhooks/internal/config"
	"github.com/runnerhub/webhooks/internal/github"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/metrics"
	"github.com/runnerhub/webhooks/internal/provider/providers"
	"github.com/runnerhub/webhooks/internal/provisioning"
)

// newProvisioner builds the provisioner on client and engine.
func newProvisioner(cfg config.Config, log *slog.Logger, client *github.Client, engine *jobs.Engine, m *metrics.Metrics) *provisioning.Provisioner {
	log.Info("provisioner: starting the runners of pools with a provider", "runner_scopes", len(cfg.GitHub.RunnerScopes),
		"interval", cfg.ProvisionerInterval.String())
	return &provisioning.Provisioner{
		Engine: engine, GitHub: client, Scopes: cfg.GitHub.RunnerScopes, Metrics: m.Provisioner(), Log: log, Now: time.Now,
		// An ec2 pool loads the AWS configuration (region, credentials) when first used:
		// the local stack needs none otherwise.
		Providers: &providers.Factory{AWS: func(ctx context.Context) (aws.Config, error) { return awsconfig.LoadDefaultConfig(ctx) }, Log: log},
	}
}
