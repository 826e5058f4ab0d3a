// Command fanout is the FanoutFunction: FanoutQueue's batches of live-update
// announcements (one per commit, from the processor and the ApiFunction) → one post per
// WebSocket connection per batch, through the WebSocket API's management endpoint.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/runnerhub/webhooks/internal/awsapp"
	"github.com/runnerhub/webhooks/internal/live"
	"github.com/runnerhub/webhooks/internal/live/awslive"
)

func main() {
	app := awsapp.Must(awsapp.New(context.Background(), "RUNNERHUB_EVENTS_TABLE", "RUNNERHUB_WS_ENDPOINT"))
	// The store gives pool-status messages their counts.
	hub, err := awslive.New(app.AWS, app.Config.EventsTable, app.Config.WSEndpoint, live.Hub{Pools: app.Store, Log: app.Log})
	awsapp.Must(app, err)
	lambda.Start((&awslive.FanoutHandler{Hub: hub, Log: app.Log}).Handle)
}
