package awsstore

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/runnerhub/webhooks/internal/jobs/jobstest"
	"github.com/runnerhub/webhooks/internal/testenv"
)

func TestFleetSuite(t *testing.T) {
	t.Parallel()
	stores := newStores(t)
	jobstest.FleetSuite(t, func(*testing.T) jobstest.Stores { return stores })
}

func TestQueueDepths(t *testing.T) {
	t.Parallel()
	env := testenv.SharedAWS(t)
	c := sqs.NewFromConfig(env.Config)
	for url, n := range map[string]int{env.EventsQueueURL: 2, env.EventsDLQURL: 1} {
		for range n {
			if _, err := c.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("{}")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	depths := QueueDepths(c, map[string]string{"events": env.EventsQueueURL, "dlq": env.EventsDLQURL})
	got, err := depths(t.Context())
	if err != nil || got["events"] != 2 || got["dlq"] != 1 || len(got) != 2 {
		t.Fatalf("depths %v, %v; want events 2, dlq 1", got, err)
	}
	if _, err := QueueDepths(c, map[string]string{"gone": env.EventsQueueURL + "-missing"})(t.Context()); err == nil {
		t.Fatal("depth of a missing queue: no error")
	}
}
