package processing

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/runnerhub/webhooks/internal/delivery"
)

// HandleSQS processes an SQS batch and reports each failed record on its own
// (ReportBatchItemFailures), so one bad record is retried alone and, after the queue's
// maxReceiveCount, lands in the DLQ, while the rest of the batch is done.
func (p *Processor) HandleSQS(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	for _, r := range ev.Records {
		if err := p.processRecord(ctx, r); err != nil {
			p.Log.ErrorContext(ctx, "processing failed", "message_id", r.MessageId, "error", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
		}
	}
	return resp, nil
}

func (p *Processor) processRecord(ctx context.Context, r events.SQSMessage) error {
	var msg delivery.Message
	if err := json.Unmarshal([]byte(r.Body), &msg); err != nil || msg.DeliveryID == "" {
		return fmt.Errorf("message %s is not a delivery reference", r.MessageId)
	}
	return p.Process(ctx, msg)
}
