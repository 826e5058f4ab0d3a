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
	tokens, err := auth.ParseRoles(cfg.APITokens, cfg.APIReadTokens)
	awsapp.Must(app, err)
	if tokens.Empty() {
		app.Log.Error("neither RUNNERHUB_API_TOKENS nor RUNNERHUB_API_READ_TOKENS is set: every connection will be refused with 401")
	}
	hub, err := awslive.New(app.AWS, cfg.EventsTable, cfg.WSEndpoint, live.Hub{
		Access: live.Access{Tokens: tokens, Tickets: live.NewTickets(cfg.APITokens, cfg.APIReadTokens)},
		Log:    app.Log,
	})
	awsapp.Must(app, err)
	lambda.Start((&awslive.Handler{Hub: hub, Log: app.Log}).Handle)
}
