package awsstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/runnerhub/webhooks/internal/delivery"
)

// redriveBudget bounds one Redrive, so that an API call moving a large DLQ answers well
// within the API function's timeout; the caller sees what is left and calls again.
const redriveBudget = 8 * time.Second

var _ delivery.DeadLetters = (*DeadLetters)(nil)

// DeadLetters implements delivery.DeadLetters on the events queue and its dead-letter
// queue.
type DeadLetters struct {
	c                *sqs.Client
	queueURL, dlqURL string
}

// DeadLetters returns the operator's view of q and its dead-letter queue at dlqURL.
func (q *Queue) DeadLetters(dlqURL string) *DeadLetters {
	return &DeadLetters{c: q.c, queueURL: q.url, dlqURL: dlqURL}
}

// Depths reads the approximate depths of both queues (two GetQueueAttributes). Messages
// received but not yet deleted count too: in flight on the events queue, being moved
// on the DLQ. The embedded queue counts the same way, and /metrics reads these too.
func (d *DeadLetters) Depths(ctx context.Context) (delivery.Depths, error) {
	queued, err := d.undeleted(ctx, d.queueURL)
	if err != nil {
		return delivery.Depths{}, err
	}
	dead, err := d.undeleted(ctx, d.dlqURL)
	if err != nil {
		return delivery.Depths{}, err
	}
	return delivery.Depths{Queued: queued, Dead: dead}, nil
}

// undeleted is the approximate number of messages in the queue at url that nobody has
// deleted yet: visible ones plus those in flight (received, not yet deleted).
func (d *DeadLetters) undeleted(ctx context.Context, url string) (int64, error) {
	names := []types.QueueAttributeName{
		types.QueueAttributeNameApproximateNumberOfMessages,
		types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
	}
	out, err := d.c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &url, AttributeNames: names})
	if err != nil {
		return 0, fmt.Errorf("queue depth: %w", err)
	}
	var n int64
	for _, name := range names {
		v, err := strconv.ParseInt(out.Attributes[string(name)], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("queue attribute %s: %w", name, err)
		}
		n += v
	}
	return n, nil
}

// Redrive moves dead letters back with ReplayDLQ for at most redriveBudget and returns
// how many it moved; Depths then tells whether any are left.
func (d *DeadLetters) Redrive(ctx context.Context) (int, error) {
	bounded, cancel := context.WithTimeout(ctx, redriveBudget)
	defer cancel()
	n, err := ReplayDLQ(bounded, d.c, d.dlqURL, d.queueURL)
	if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return n, nil // out of time, not failed: the rest waits for the next call
	}
	return n, err
}
