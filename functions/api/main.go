// Command api is the ApiFunction: the management API, metrics and dashboard behind the
// HTTP API. It serves the shared router; the management endpoints join it as they are built.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
	"github.com/runnerhub/webhooks/internal/auth"
	"github.com/runnerhub/webhooks/internal/awsapp"
	"github.com/runnerhub/webhooks/internal/dashboard"
	"github.com/runnerhub/webhooks/internal/httpapi"
	"github.com/runnerhub/webhooks/internal/metrics"
)

func main() {
	app := awsapp.Must(awsapp.New(context.Background(), "RUNNERHUB_EVENTS_TABLE"))
	tokens, err := auth.Parse(app.Config.APITokens)
	awsapp.Must(app, err)
	router := httpapi.New(tokens, metrics.New().Routes(), dashboard.Routes())
	lambda.Start(httpadapter.NewV2(router).ProxyWithContext)
}
