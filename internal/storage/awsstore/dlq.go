package awsstore

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// ReplayDLQ moves every message from the dead-letter queue at dlqURL back to the queue
// at queueURL and returns how many it moved. It receives and re-sends rather than using
// StartMessageMoveTask, which emulators lack; a message is deleted from the DLQ only
// after it was sent, so a failure part-way duplicates at worst (the processor skips
// deliveries already finished) and never loses one.
func ReplayDLQ(ctx context.Context, c *sqs.Client, dlqURL, queueURL string) (int, error) {
	moved := 0
	for {
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    &dlqURL,
			MaxNumberOfMessages:         10,
			WaitTimeSeconds:             1,
			VisibilityTimeout:           60,
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			return moved, fmt.Errorf("receive from DLQ: %w", err)
		}
		if len(out.Messages) == 0 {
			return moved, nil
		}
		for _, m := range out.Messages {
			_, err := c.SendMessage(ctx, &sqs.SendMessageInput{
				QueueUrl: &queueURL, MessageBody: m.Body, MessageAttributes: m.MessageAttributes,
			})
			if err != nil {
				return moved, fmt.Errorf("re-send message %s: %w", aws.ToString(m.MessageId), err)
			}
			if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &dlqURL, ReceiptHandle: m.ReceiptHandle}); err != nil {
				return moved, fmt.Errorf("delete replayed message %s: %w", aws.ToString(m.MessageId), err)
			}
			moved++
		}
	}
}
