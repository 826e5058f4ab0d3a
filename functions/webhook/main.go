// Command webhook is the WebhookFunction: API Gateway HTTP API → verify, record, enqueue.
package main

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
	"github.com/runnerhub/webhooks/internal/awsapp"
	"github.com/runnerhub/webhooks/internal/httpapi"
	"github.com/runnerhub/webhooks/internal/ingest"
	"github.com/runnerhub/webhooks/internal/metrics"
	"github.com/runnerhub/webhooks/internal/webhook"
)

func main() {
	app := awsapp.Must(awsapp.New(context.Background(),
		"RUNNERHUB_EVENTS_TABLE", "RUNNERHUB_EVENTS_QUEUE_URL", "RUNNERHUB_PAYLOAD_BUCKET"))
	cfg := app.Config
	if cfg.WebhookSecret == "" {
		app.Log.Error("GITHUB_WEBHOOK_SECRET is not set: every delivery will be refused with 503")
	}
	ingestHandler := &ingest.Handler{
		// AllowUnsigned stays false: in AWS a missing secret always fails closed.
		Parser:       &webhook.Parser{Verifier: webhook.NewVerifier(cfg.WebhookSecret, cfg.PreviousWebhookSecret)},
		Store:        app.Store,
		Queue:        app.Queue,
		MaxBodyBytes: cfg.MaxBodyBytes,
		Log:          app.Log,
		Metrics:      metrics.NewEMF(os.Stdout, "RunnerHub"),
		Now:          time.Now,
	}
	router := httpapi.New(nil, ingestHandler.Routes()) // the webhook route is public: it checks signatures
	lambda.Start(httpadapter.NewV2(router).ProxyWithContext)
}
