// Command provisioner is the ProvisionerFunction: the demand queue's signals (SQS) start
// and retire runners through the pools' providers, and its schedule runs the warm-pool
// and reaping pass.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/runnerhub/webhooks/internal/awsapp"
	"github.com/runnerhub/webhooks/internal/awsapp/awsprovision"
)

func main() {
	ctx := context.Background()
	app := awsapp.Must(awsapp.New(ctx, "RUNNERHUB_EVENTS_TABLE", "RUNNERHUB_DEMAND_QUEUE_URL"))
	h, err := awsprovision.New(ctx, app)
	awsapp.Must(app, err)
	lambda.Start(h.Handle)
}
