// Command websocket is the WebSocketFunction: the WebSocket API's $connect (authorise
// the token or ticket in the query string, record the connection), $disconnect and
// $default (subscribe, unsubscribe, ping; replies through the management API) routes.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/runnerhub/webhooks/internal/auth"
	"github.com/runnerhub/webhooks/internal/awsapp"
	"github.com/runnerhub/webhooks/internal/live"
	"github.com/runnerhub/webhooks/internal/live/awslive"
)

func main() {
	app := awsapp.Must(awsapp.New(context.Background(), "RUNNERHUB_EVENTS_TABLE", "RUNNERHUB_WS_ENDPOINT"))
	cfg := app.Config
	tokens, err := auth.Parse(cfg.APITokens)
	awsapp.Must(app, err)
	if tokens.Empty() {
		app.Log.Error("RUNNERHUB_API_TOKENS is not set: every connection will be refused with 401")
	}
	hub, err := awslive.New(app.AWS, cfg.EventsTable, cfg.WSEndpoint, live.Hub{
		Access: live.Access{Tokens: tokens, Tickets: live.NewTickets(cfg.APITokens)},
		Log:    app.Log,
	})
	awsapp.Must(app, err)
	lambda.Start((&awslive.Handler{Hub: hub, Log: app.Log}).Handle)
}
