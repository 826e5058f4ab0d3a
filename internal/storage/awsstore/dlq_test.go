package awsstore

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/runnerhub/webhooks/internal/testenv"
)

func TestReplayDLQ(t *testing.T) {
	env := testenv.SharedAWS(t)
	ctx := context.Background()
	c := sqs.NewFromConfig(env.Config)
	deadLetter(t, c, env.EventsDLQURL, "dead-1", "dead-2", "dead-3")
	n, err := ReplayDLQ(ctx, c, env.EventsDLQURL, env.EventsQueueURL)
	if err != nil || n != 3 {
		t.Fatalf("replayed %d, %v", n, err)
	}
	got := drainer(t, c, env.EventsQueueURL)(ctx)
	if len(got) != 3 {
		t.Fatalf("events queue holds %v", got)
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(env.EventsDLQURL), AttributeNames: []types.QueueAttributeName{"ApproximateNumberOfMessages"}})
	if err != nil || attrs.Attributes["ApproximateNumberOfMessages"] != "0" {
		t.Fatalf("DLQ not empty: %v %v", attrs.Attributes, err)
	}
}
