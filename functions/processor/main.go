// Command processor is the ProcessorFunction: SQS events queue → job state, and the
// ResendDemands schedule → demands of jobs still waiting, sent again.
package main

import (
	"context"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/runnerhub/webhooks/internal/awsapp"
	"github.com/runnerhub/webhooks/internal/processing"
)

func main() {
	app := awsapp.Must(awsapp.New(context.Background(),
		"RUNNERHUB_EVENTS_TABLE", "RUNNERHUB_PAYLOAD_BUCKET", "RUNNERHUB_DEMAND_QUEUE_URL"))
	emf := awsapp.NewEMF()
	engine := app.Engine(emf)
	p := &processing.Processor{Deliveries: app.Store, Counters: app.Store, Engine: engine, Signals: app.Signals,
		Log: app.Log, Now: time.Now, Observer: emf}
	// SQS batches of deliveries, and the ResendDemands schedule's task.
	lambda.Start(p.HandleLambda)
}
