// Command processor is the ProcessorFunction: SQS events queue → job state.
package main

import (
	"context"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/runnerhub/webhooks/internal/awsapp"
	"github.com/runnerhub/webhooks/internal/processing"
)

func main() {
	app := awsapp.Must(awsapp.New(context.Background(), "RUNNERHUB_EVENTS_TABLE", "RUNNERHUB_PAYLOAD_BUCKET"))
	p := &processing.Processor{Store: app.Store, Log: app.Log, Now: time.Now}
	lambda.Start(p.HandleSQS)
}
