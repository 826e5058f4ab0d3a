package awsstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/runnerhub/webhooks/internal/delivery"
)

// EventAttribute is the SQS message attribute that repeats the message's event, so that
// consumers and filters can route a message without decoding its body. It is absent when
// the event is empty (SQS refuses empty attribute values).
const EventAttribute = "event"

var _ delivery.Queue = (*Queue)(nil)

// Queue implements delivery.Queue on an SQS standard queue. A message body is the JSON of
// a delivery.Message.
type Queue struct {
	c   *sqs.Client
	url string
}

// NewQueue returns a Queue sending to the queue at url.
func NewQueue(c *sqs.Client, url string) *Queue {
	return &Queue{c: c, url: url}
}

// Enqueue sends msg.
func (q *Queue) Enqueue(ctx context.Context, msg delivery.Message) error {
	if err := sendJSON(ctx, q.c, q.url, msg, EventAttribute, msg.Event); err != nil {
		return fmt.Errorf("enqueue delivery %s: %w", keyString(msg.Key), err)
	}
	return nil
}

// sendJSON sends v as a JSON message body with one string attribute, left out when
// value is empty (SQS refuses empty attribute values).
func sendJSON(ctx context.Context, c *sqs.Client, url string, v any, attribute, value string) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	in := &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String(string(body))}
	if value != "" {
		in.MessageAttributes = map[string]types.MessageAttributeValue{
			attribute: {DataType: aws.String("String"), StringValue: aws.String(value)},
		}
	}
	_, err = c.SendMessage(ctx, in)
	return err
}
