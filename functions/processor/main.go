// Command processor is the ProcessorFunction: SQS events queue → job state.
package main

import (
	"context"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/runnerhub/webhooks/internal/awsapp"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/processing"
)

func main() {
	app := awsapp.Must(awsapp.New(context.Background(),
		"RUNNERHUB_EVENTS_TABLE", "RUNNERHUB_PAYLOAD_BUCKET", "RUNNERHUB_DEMAND_QUEUE_URL"))
	p := &processing.Processor{
		Deliveries: app.Store,
		Counters:   app.Store,
		Engine:     &jobs.Engine{Store: app.Store, Pools: app.Config.Pools, Step: app.Config.PriorityStep},
		Signals:    app.Signals,
		Log:        app.Log,
		Now:        time.Now,
	}
	lambda.Start(p.HandleSQS)
}
