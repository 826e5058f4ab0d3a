package awsprovision

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/runnerhub/webhooks/internal/awsapp"
	"github.com/runnerhub/webhooks/internal/awsapp/awsreconcile"
	"github.com/runnerhub/webhooks/internal/provider/providers"
	"github.com/runnerhub/webhooks/internal/provisioning"
)

// New builds the ProvisionerFunction's handler from the app: the GitHub client from the
// credentials in SSM (awsreconcile.GitHubClient), the engine on the DynamoDB store
// (its retire signals and demands go to the demand queue, its commits are counted in
// EMF and announced live through FanoutQueue), the pools' providers on the function's AWS configuration,
// and the backoff on the demand queue. Without GitHub credentials it logs so once and
// the handler starts nothing.
func New(ctx context.Context, app *awsapp.App) (*Handler, error) {
	h := &Handler{Log: app.Log, Now: time.Now, Checkpoints: app.Store,
		Visibility: QueueVisibility{SQS: sqs.NewFromConfig(app.AWS), QueueURL: app.Config.DemandQueueURL}}
	emf := awsapp.NewEMF()
	gc, client, err := awsreconcile.GitHubClient(ctx, app, emf, "no runner can be started, signals are dropped")
	if err != nil {
		return nil, err
	}
	if client == nil {
		return h, nil
	}
	engine := app.Engine(emf)
	h.Provisioner = &provisioning.Provisioner{
		Engine: engine, GitHub: client, Scopes: gc.RunnerScopes, Metrics: emf.Provisioner(), Log: app.Log, Now: time.Now,
		Providers: &providers.Factory{AWS: func(context.Context) (aws.Config, error) { return app.AWS, nil }, Log: app.Log},
	}
	app.Log.Info("provisioner: starting the runners of pools with a provider", "runner_scopes", len(gc.RunnerScopes),
		"interval", app.Config.ProvisionerInterval.String())
	return h, nil
}
