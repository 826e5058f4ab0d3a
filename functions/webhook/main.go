// Command webhook is the WebhookFunction: API Gateway HTTP API → verify, record, enqueue.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
	"github.com/runnerhub/webhooks/internal/awsapp"
	"github.com/runnerhub/webhooks/internal/httpapi"
)

func main() {
	app := awsapp.Must(awsapp.New(context.Background(),
		"RUNNERHUB_EVENTS_TABLE", "RUNNERHUB_EVENTS_QUEUE_URL", "RUNNERHUB_PAYLOAD_BUCKET"))
	cfg := app.Config
	if cfg.WebhookSecret == "" {
		app.Log.Error("GITHUB_WEBHOOK_SECRET is not set: every delivery will be refused with 503")
	}
	router := httpapi.New(nil, app.Ingest().Routes()) // the webhook route is public: it checks signatures
	lambda.Start(httpadapter.NewV2(router).ProxyWithContext)
}
