// Command api is the ApiFunction: the management API, metrics and dashboard behind the
// HTTP API, serving the shared router (everything but the webhook itself).
package main

import (
	"context"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
	"github.com/runnerhub/webhooks/internal/api/deliveries"
	"github.com/runnerhub/webhooks/internal/api/diagnosis"
	"github.com/runnerhub/webhooks/internal/api/fleet"
	"github.com/runnerhub/webhooks/internal/auth"
	"github.com/runnerhub/webhooks/internal/awsapp"
	"github.com/runnerhub/webhooks/internal/dashboard"
	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/httpapi"
	"github.com/runnerhub/webhooks/internal/live"
	"github.com/runnerhub/webhooks/internal/metrics"
	"github.com/runnerhub/webhooks/internal/provisioning"
	"github.com/runnerhub/webhooks/internal/reconcile"
)

func main() {
	app := awsapp.Must(awsapp.New(context.Background(),
		"RUNNERHUB_EVENTS_TABLE", "RUNNERHUB_EVENTS_QUEUE_URL", "RUNNERHUB_EVENTS_DLQ_URL", "RUNNERHUB_PAYLOAD_BUCKET",
		"RUNNERHUB_DEMAND_QUEUE_URL"))
	tokens, err := auth.ParseRoles(app.Config.APITokens, app.Config.APIReadTokens)
	awsapp.Must(app, err)
	cfg := app.Config
	// POST /api/webhooks/test sends its deliveries through the webhook function's handler,
	// built from the same configuration (AllowUnsigned stays false: AWS fails closed).
	ing := app.Ingest()
	deadLetters := app.Queue.DeadLetters(cfg.EventsDLQURL)
	webhooks := deliveries.Routes(deliveries.Deps{
		Store: app.Store, Lister: app.Store, Counters: app.Store, JobCounters: app.Store,
		Queue: app.Queue, DeadLetters: deadLetters,
		Ingest: ing, Secret: cfg.WebhookSecret, Retention: cfg.Retention, Log: app.Log,
		// The ReconcilerFunction's given-up deliveries and the ProvisionerFunction's JIT
		// failures, from their checkpoints.
		GivenUp:  reconcile.GivenUpCount(app.Store, time.Now),
		Problems: provisioning.SavedProblems(app.Store),
	})
	// Runner operations go through the same commit pipeline as the processor's deliveries,
	// with the same subscribers (EMF only counts their conflicts).
	engine := app.Engine(awsapp.NewEMF())
	runners := fleet.Deps{Engine: engine, OfflineAfter: cfg.RunnerOfflineAfter, PoolsSource: cfg.PoolsSource, Log: app.Log}
	if app.Announcer != nil { // pool changes made here are announced like the engine's commits
		runners.PoolChanged = app.Announcer.AnnouncePoolChanges()
	}
	// /metrics here samples the pools and queues at each scrape; the processing figures
	// are the processor function's EMF lines (its registry would not outlive it).
	m := metrics.New()
	m.Log = app.Log
	m.WatchPools(runners.PoolStatus)
	m.WatchQueues(delivery.DepthGauges(deadLetters))
	// GitHub's view of a job is the local stack's only: the ApiFunction holds no GitHub
	// credentials (only the ReconcilerFunction may read them).
	diagnose := diagnosis.Routes(diagnosis.Deps{Engine: engine, Lister: app.Store, OfflineAfter: cfg.RunnerOfflineAfter, Log: app.Log})
	router := httpapi.New(tokens, webhooks, fleet.Routes(runners), diagnose, m.Routes(), dashboard.Routes(),
		live.TicketRoutes(live.NewTickets(app.Config.APITokens, app.Config.APIReadTokens), live.ClientURL(app.Config.WSEndpoint), time.Now))
	lambda.Start(httpadapter.NewV2(router).ProxyWithContext)
}
