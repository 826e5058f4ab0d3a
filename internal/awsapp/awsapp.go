// Package awsapp builds the AWS adapters the Lambda functions share from the
// configuration. The SDK honours AWS_ENDPOINT_URL, so the same binaries run against AWS,
// moto or LocalStack.
package awsapp

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/runnerhub/webhooks/internal/config"
	"github.com/runnerhub/webhooks/internal/ingest"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/live"
	"github.com/runnerhub/webhooks/internal/live/awslive"
	"github.com/runnerhub/webhooks/internal/logging"
	"github.com/runnerhub/webhooks/internal/metrics"
	"github.com/runnerhub/webhooks/internal/storage/awsstore"
	"github.com/runnerhub/webhooks/internal/webhook"
)

// App holds what every function needs.
type App struct {
	Config  config.Config
	Log     *slog.Logger
	Store   *awsstore.Store
	Queue   *awsstore.Queue
	Signals *awsstore.Signals
	// Announcer sends each commit's live updates to FanoutQueue; nil without
	// RUNNERHUB_FANOUT_QUEUE_URL.
	Announcer *live.Announcer
	// AWS is the SDK configuration the adapters were built from, for functions that need
	// further clients (the live updates' management API).
	AWS aws.Config
}

// New reads the configuration, checks that the named resources are configured, and
// builds the adapters. Lambda functions log JSON to stdout.
func New(ctx context.Context, required ...string) (*App, error) {
	cfg, err := config.FromEnv(os.Getenv)
	log := logging.New(os.Stdout, true, cfg.LogLevel)
	if err == nil {
		err = cfg.RequireAWS(required...)
	}
	if err != nil {
		return &App{Log: log}, err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return &App{Log: log}, fmt.Errorf("load AWS configuration: %w", err)
	}
	s3c := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		// moto and LocalStack serve buckets on the path, not on virtual hosts.
		o.UsePathStyle = os.Getenv("AWS_ENDPOINT_URL") != ""
	})
	sqsc := sqs.NewFromConfig(awsCfg)
	app := &App{
		Config:  cfg,
		Log:     log,
		Store:   awsstore.NewStore(dynamodb.NewFromConfig(awsCfg), s3c, cfg.EventsTable, cfg.PayloadBucket, cfg.Retention),
		Queue:   awsstore.NewQueue(sqsc, cfg.EventsQueueURL),
		Signals: awsstore.NewSignals(sqsc, cfg.DemandQueueURL),
		AWS:     awsCfg,
	}
	if cfg.FanoutQueueURL != "" {
		app.Announcer = &live.Announcer{Outbox: awslive.NewOutbox(sqsc, cfg.FanoutQueueURL), Log: log}
	}
	return app, nil
}

// Must returns app, or logs err and exits: a function that cannot start should fail its
// cold start loudly rather than answer requests half-configured.
func Must(app *App, err error) *App {
	if err != nil {
		app.Log.Error("cannot start", "error", err)
		os.Exit(1)
	}
	return app
}

// NewEMF returns the functions' metrics: the Prometheus figures as CloudWatch embedded
// metric format lines on stdout, in the RunnerHub namespace (CloudWatch metrics without
// an API call).
func NewEMF() *metrics.EMF {
	return metrics.NewEMF(os.Stdout, "RunnerHub")
}

// Engine builds the job engine on the app's store, with the subscribers every function's
// commits have, in order: their demands go to the demand queue, m counts them (and their
// conflicts), they are logged, and, with a FanoutQueue, announced live.
func (a *App) Engine(m jobs.Subscriber) *jobs.Engine {
	e := a.Config.Engine(a.Store, a.Store, &jobs.SignalSender{Signals: a.Signals, Log: a.Log}, m, jobs.Log{Logger: a.Log})
	if a.Announcer != nil {
		e.Subscribe(a.Announcer)
	}
	return e
}

// Ingest returns the webhook handler on the app's store and queue. In AWS a missing
// secret always fails closed: AllowUnsigned is never set here.
func (a *App) Ingest() *ingest.Handler {
	return &ingest.Handler{
		Parser:               &webhook.Parser{Verifier: webhook.NewVerifier(a.Config.WebhookSecret, a.Config.PreviousWebhookSecret)},
		Store:                a.Store,
		Queue:                a.Queue,
		MaxBodyBytes:         a.Config.MaxBodyBytes,
		MaxBodyBytesInFlight: a.Config.MaxBodyBytesInFlight,
		Log:                  a.Log,
		Metrics:              NewEMF(),
		Now:                  time.Now,
	}
}
