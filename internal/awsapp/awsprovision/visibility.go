package awsprovision

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// QueueVisibility is Visibility on the SQS queue the records come from.
type QueueVisibility struct {
	SQS      *sqs.Client
	QueueURL string
}

var _ Visibility = QueueVisibility{}

// Hide sets the message's visibility timeout to d from now (whole seconds, SQS's unit).
func (q QueueVisibility) Hide(ctx context.Context, receiptHandle string, d time.Duration) error {
	_, err := q.SQS.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          aws.String(q.QueueURL),
		ReceiptHandle:     aws.String(receiptHandle),
		VisibilityTimeout: int32(d / time.Second),
	})
	if err != nil {
		return fmt.Errorf("change message visibility: %w", err)
	}
	return nil
}
