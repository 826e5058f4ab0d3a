// Command reconciler is the ReconcilerFunction: on its schedule it asks GitHub what
// RunnerHub missed (failed deliveries, stranded jobs, runners GitHub no longer has) and
// applies the answers through the events queue, as deliveries.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/runnerhub/webhooks/internal/awsapp"
	"github.com/runnerhub/webhooks/internal/awsapp/awsreconcile"
)

func main() {
	ctx := context.Background()
	app := awsapp.Must(awsapp.New(ctx,
		"RUNNERHUB_EVENTS_TABLE", "RUNNERHUB_PAYLOAD_BUCKET", "RUNNERHUB_EVENTS_QUEUE_URL", "RUNNERHUB_DEMAND_QUEUE_URL"))
	r, err := awsreconcile.New(ctx, app)
	awsapp.Must(app, err)
	lambda.Start(r.Handle)
}
