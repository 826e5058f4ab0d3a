package testenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// ReadEvent returns the file of events/ (below the repository root) named file.
func ReadEvent(t testing.TB, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(RepoRoot(t), "events", file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// GetItem reads the item of table with key pk/sk by a consistent read (what a test
// checks right after a write), nil when there is none.
func GetItem(t testing.TB, db *dynamodb.Client, table, pk, sk string) map[string]ddbtypes.AttributeValue {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: &table,
		Key: map[string]ddbtypes.AttributeValue{
			"pk": &ddbtypes.AttributeValueMemberS{Value: pk},
			"sk": &ddbtypes.AttributeValueMemberS{Value: sk},
		},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

// StringAttr is the item's string attribute name, "" when it has none.
func StringAttr(item map[string]ddbtypes.AttributeValue, name string) string {
	if v, ok := item[name].(*ddbtypes.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// NumberAttr is the item's number attribute name as written, "" when it has none.
func NumberAttr(item map[string]ddbtypes.AttributeValue, name string) string {
	if v, ok := item[name].(*ddbtypes.AttributeValueMemberN); ok {
		return v.Value
	}
	return ""
}

// ReceiveAll receives every message visible on the queue, with its attributes. Received
// messages stay invisible for the queue's visibility timeout (minutes), longer than a test.
func ReceiveAll(t testing.TB, queue *sqs.Client, url string) []sqstypes.Message {
	t.Helper()
	var all []sqstypes.Message
	for {
		out, err := queue.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl:              &url,
			MaxNumberOfMessages:   10,
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return all
		}
		all = append(all, out.Messages...)
	}
}

// SQSEvent is the event Lambda's SQS event source mapping makes of messages received
// from the queue at url: their ids, receipt handles, bodies and attributes.
func SQSEvent(messages []sqstypes.Message, url string) events.SQSEvent {
	var e events.SQSEvent
	for _, m := range messages {
		r := events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
			Body: aws.ToString(m.Body), Md5OfBody: aws.ToString(m.MD5OfBody), Attributes: m.Attributes, EventSource: "aws:sqs",
			EventSourceARN: "arn:aws:sqs:" + motoRegion + ":123456789012:" + filepath.Base(url), AWSRegion: motoRegion,
			MessageAttributes: map[string]events.SQSMessageAttribute{}}
		for k, v := range m.MessageAttributes {
			r.MessageAttributes[k] = events.SQSMessageAttribute{StringValue: v.StringValue, DataType: aws.ToString(v.DataType)}
		}
		e.Records = append(e.Records, r)
	}
	return e
}

// Queued is the message the webhook function puts on the events queue for a delivery.
type Queued struct {
	HookID     string `json:"hookId"`
	DeliveryID string `json:"deliveryId"`
	Event      string `json:"event"`
}

// DeliveryKey is the pk of a delivery's item (its sk is "DELIVERY").
func (q Queued) DeliveryKey() string { return "DELIVERY#" + q.HookID + "#" + q.DeliveryID }
