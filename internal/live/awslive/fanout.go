package awslive

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/runnerhub/webhooks/internal/live"
)

// MaxAnnouncementBytes is FanoutQueue's MaximumMessageSize (template.yaml): one
// commit's announcement must fit one message.
const MaxAnnouncementBytes = 1 << 20

// Outbox is the live.Outbox of the AWS functions: one SQS message per announcement on
// FanoutQueue, which feeds the FanoutFunction.
type Outbox struct {
	client *sqs.Client
	url    string
}

var _ live.Outbox = (*Outbox)(nil)

// NewOutbox returns an Outbox sending to the queue at url.
func NewOutbox(client *sqs.Client, url string) *Outbox { return &Outbox{client: client, url: url} }

// Publish implements live.Outbox.
func (o *Outbox) Publish(ctx context.Context, a live.Announcement) error {
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if len(body) > MaxAnnouncementBytes {
		return fmt.Errorf("announcement of %d bytes exceeds FanoutQueue's %d", len(body), MaxAnnouncementBytes)
	}
	text := string(body)
	if _, err := o.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &o.url, MessageBody: &text}); err != nil {
		return fmt.Errorf("send to the fan-out queue: %w", err)
	}
	return nil
}

// FanoutHandler is the FanoutFunction: each SQS batch of FanoutQueue's announcements is
// delivered by one run of the Hub's fan-out, so a connection gets one post per batch
// (the event source mapping's batching window gathers a second of commits) instead of
// one per message.
type FanoutHandler struct {
	Hub *live.Hub
	Log *slog.Logger
}

// Handle delivers one batch. A record that does not decode is dropped (logged): sending
// it again cannot help. When the fan-out sent nothing because it could not read its
// audience, every record is reported failed, to be delivered again; failures after the
// first post are only logged, since a retry would repeat what others received.
func (h *FanoutHandler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	anns := make([]live.Announcement, 0, len(ev.Records))
	var decoded []string
	for _, r := range ev.Records {
		var a live.Announcement
		if err := json.Unmarshal([]byte(r.Body), &a); err != nil {
			h.Log.ErrorContext(ctx, "dropping a fan-out record that is not an announcement", "message_id", r.MessageId, "error", err)
			continue
		}
		anns = append(anns, a)
		decoded = append(decoded, r.MessageId)
	}
	var resp events.SQSEventResponse
	if err := h.Hub.Deliver(ctx, anns); err != nil {
		h.Log.ErrorContext(ctx, "live fan-out failed; the batch will be delivered again", "records", len(decoded), "error", err)
		for _, id := range decoded {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: id})
		}
	}
	return resp, nil
}
