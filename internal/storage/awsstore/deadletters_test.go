package awsstore

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/runnerhub/webhooks/internal/delivery"
)

// The depth gauges of /metrics and the health endpoint's depths are one reading: a
// message received but not yet deleted (in flight) still counts as queued.
func TestDepthGaugesCountInFlight(t *testing.T) {
	t.Parallel()
	env, c := sharedSQS(t)
	for url, n := range map[string]int{env.EventsQueueURL: 2, env.EventsDLQURL: 1} {
		for range n {
			if _, err := c.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("{}")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	taken, err := c.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(env.EventsQueueURL), MaxNumberOfMessages: 1})
	if err != nil || len(taken.Messages) != 1 {
		t.Fatalf("receive: %v %v", taken, err)
	}
	dl := NewQueue(c, env.EventsQueueURL).DeadLetters(env.EventsDLQURL)
	got, err := delivery.DepthGauges(dl)(t.Context())
	if err != nil || got["events"] != 2 || got["dlq"] != 1 || len(got) != 2 {
		t.Fatalf("gauges %v, %v; want events 2 (one of them in flight), dlq 1", got, err)
	}
	depths, err := dl.Depths(t.Context())
	if err != nil || depths != (delivery.Depths{Queued: 2, Dead: 1}) {
		t.Fatalf("depths %+v, %v; want what the gauges read", depths, err)
	}
	missing := NewQueue(c, env.EventsQueueURL+"-missing").DeadLetters(env.EventsDLQURL)
	if _, err := delivery.DepthGauges(missing)(t.Context()); err == nil {
		t.Fatal("depth of a missing queue: no error")
	}
}

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	env, c := sharedSQS(t)
	ctx := context.Background()
	dl := NewQueue(c, env.EventsQueueURL).DeadLetters(env.EventsDLQURL)
	if d, err := dl.Depths(ctx); err != nil || d != (delivery.Depths{}) {
		t.Fatalf("depths of new queues %+v %v", d, err)
	}
	deadLetter(t, c, env.EventsDLQURL, "dead-1", "dead-2")
	if d, err := dl.Depths(ctx); err != nil || d != (delivery.Depths{Dead: 2}) {
		t.Fatalf("depths %+v %v, want 2 dead", d, err)
	}
	if n, err := dl.Redrive(ctx); err != nil || n != 2 {
		t.Fatalf("redrive moved %d, %v", n, err)
	}
	if d, err := dl.Depths(ctx); err != nil || d != (delivery.Depths{Queued: 2}) {
		t.Fatalf("depths after redrive %+v %v, want 2 queued", d, err)
	}
}

// ReplayDLQ, the command-line replay, moves the whole DLQ back in one call.
func TestReplayDLQ(t *testing.T) {
	env, c := sharedSQS(t)
	ctx := context.Background()
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

// deadLetter puts a message for each delivery id on the dead-letter queue at dlqURL,
// where the events queue's redrive policy would have moved it.
func deadLetter(t *testing.T, c *sqs.Client, dlqURL string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := NewQueue(c, dlqURL).Enqueue(t.Context(), delivery.Message{Key: delivery.Key{HookID: "1", DeliveryID: id}, Event: "push"}); err != nil {
			t.Fatal(err)
		}
	}
}
