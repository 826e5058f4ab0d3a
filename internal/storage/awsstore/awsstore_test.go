package awsstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/delivery/deliverytest"
	"github.com/runnerhub/webhooks/internal/testenv"
)

const retention = 30 * 24 * time.Hour

// Every test here gets resources of its own in the one moto testenv.SharedAWS starts for
// the package, so the tests run in parallel.

func TestStoreSuite(t *testing.T) {
	t.Parallel()
	env := testenv.SharedAWS(t)
	store := newStore(env, dynamodb.NewFromConfig(env.Config))
	deliverytest.StoreSuite(t, func(*testing.T) delivery.Store { return store })
}

// The queue suite wants an empty queue per subtest: every subtest drains what it sent, so
// the subtests share one queue.
func TestQueueSuite(t *testing.T) {
	t.Parallel()
	env := testenv.SharedAWS(t)
	c := sqs.NewFromConfig(env.Config)
	q := NewQueue(c, env.EventsQueueURL)
	deliverytest.QueueSuite(t, func(t *testing.T) (delivery.Queue, func(context.Context) []delivery.Message) {
		return q, drainer(t, c, env.EventsQueueURL)
	})
}

// drainer receives and deletes messages until a receive comes back empty, checking that the
// event attribute repeats the body's event.
func drainer(t *testing.T, c *sqs.Client, url string) func(context.Context) []delivery.Message {
	return func(ctx context.Context) []delivery.Message {
		var msgs []delivery.Message
		for {
			out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
				QueueUrl:              &url,
				MaxNumberOfMessages:   10,
				WaitTimeSeconds:       1,
				MessageAttributeNames: []string{"All"},
			})
			if err != nil {
				t.Fatalf("ReceiveMessage: %v", err)
			}
			if len(out.Messages) == 0 {
				return msgs
			}
			for _, m := range out.Messages {
				var msg delivery.Message
				if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &msg); err != nil {
					t.Fatalf("message body %q: %v", aws.ToString(m.Body), err)
				}
				if got := aws.ToString(m.MessageAttributes[EventAttribute].StringValue); got != msg.Event {
					t.Errorf("message %+v: %s attribute %q, want %q", msg.Key, EventAttribute, got, msg.Event)
				}
				if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: m.ReceiptHandle}); err != nil {
					t.Fatalf("DeleteMessage: %v", err)
				}
				msgs = append(msgs, msg)
			}
		}
	}
}

// TestRequestsPerCall pins down the DynamoDB requests each call makes: the webhook's answer
// time and the table's bill depend on them.
func TestRequestsPerCall(t *testing.T) {
	t.Parallel()
	env := testenv.SharedAWS(t)
	var mu sync.Mutex
	var ops []string
	countRequests := func(stack *middleware.Stack) error {
		// In the finalize step after the retry middleware: every attempt counts.
		return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("countRequests",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				mu.Lock()
				ops = append(ops, awsmiddleware.GetOperationName(ctx))
				mu.Unlock()
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	}
	db := dynamodb.NewFromConfig(env.Config, func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, countRequests)
	})
	store := newStore(env, db)

	small := newRecord([]byte(`{"action":"queued"}`))
	large := newRecord(largePayload())
	finishSmall := func(ctx context.Context) error {
		return store.Finish(ctx, small.Key, delivery.Processed, "processed", time.Now())
	}
	steps := []struct {
		name string
		call func(ctx context.Context) error
		want []string
	}{
		{"Create", createNew(store, small), []string{"PutItem"}},
		{"Create duplicate", createExisting(store, small), []string{"PutItem"}},
		{"Create large", createNew(store, large), []string{"PutItem"}},
		{"Create large duplicate", createExisting(store, large), []string{"PutItem"}},
		{"Get", func(ctx context.Context) error { _, err := store.Get(ctx, small.Key); return err }, []string{"GetItem"}},
		{"Finish", finishSmall, []string{"UpdateItem"}},
		{"Finish finished", finishSmall, []string{"UpdateItem"}},
	}
	for _, step := range steps {
		mu.Lock()
		ops = nil
		mu.Unlock()
		if err := step.call(t.Context()); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		mu.Lock()
		got := slices.Clone(ops)
		mu.Unlock()
		if !slices.Equal(got, step.want) {
			t.Errorf("%s: DynamoDB requests %v, want %v", step.name, got, step.want)
		}
	}
}

func createNew(s *Store, rec *delivery.Record) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		existing, err := s.Create(ctx, rec)
		if err == nil && existing != nil {
			return errors.New("Create of a new delivery returned an existing one")
		}
		return err
	}
}

func createExisting(s *Store, rec *delivery.Record) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		existing, err := s.Create(ctx, rec)
		if err == nil && existing == nil {
			return errors.New("Create of an existing delivery returned none")
		}
		return err
	}
}

// TestItemLayout checks the item design other readers (the API's listing by time, TTL)
// rely on, and where each payload went.
func TestItemLayout(t *testing.T) {
	t.Parallel()
	env := testenv.SharedAWS(t)
	db := dynamodb.NewFromConfig(env.Config)
	s3c := newS3(env)
	store := NewStore(db, s3c, env.EventsTable, env.PayloadBucket, retention)

	small := newRecord([]byte(`{"action":"queued"}`))
	// Already the next day in its own zone: the index partitions by the UTC day.
	small.ReceivedAt = time.Date(2024, 5, 2, 1, 30, 0, 123_456_789, time.FixedZone("CEST", 2*3600))
	large := newRecord(largePayload())
	for _, rec := range []*delivery.Record{small, large} {
		if _, err := store.Create(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
	}

	item := rawItem(t, db, env.EventsTable, small.Key)
	wantStrings := map[string]string{
		"pk":              "DELIVERY#" + small.HookID + "#" + small.DeliveryID,
		"sk":              "DELIVERY",
		"hookId":          small.HookID,
		"deliveryId":      small.DeliveryID,
		"receivedAt":      "2024-05-01T23:30:00.123Z",
		"gsi1pk":          "DELIVERIES#2024-05-01",
		"gsi1sk":          "2024-05-01T23:30:00.123Z#" + small.HookID + "#" + small.DeliveryID,
		"state":           "received",
		"payloadEncoding": "gzip",
	}
	for name, want := range wantStrings {
		if got := stringAttr(item, name); got != want {
			t.Errorf("small item: %s = %q, want %q", name, got, want)
		}
	}
	wantExpiry := strconv.FormatInt(small.ReceivedAt.Add(retention).Unix(), 10)
	if got, _ := item["expiresAt"].(*dbtypes.AttributeValueMemberN); got == nil || got.Value != wantExpiry {
		t.Errorf("small item: expiresAt = %v, want %s", item["expiresAt"], wantExpiry)
	}
	if _, ok := item["payload"].(*dbtypes.AttributeValueMemberB); !ok || item["payloadRef"] != nil {
		t.Errorf("small item: want an inline payload and no payloadRef")
	}

	item = rawItem(t, db, env.EventsTable, large.Key)
	ref := stringAttr(item, "payloadRef")
	if !strings.HasPrefix(ref, "payloads/"+large.HookID+"/"+large.DeliveryID+"/") || item["payload"] != nil {
		t.Errorf("large item: payloadRef = %q and payload present %v, want a reference into payloads/<hookId>/<deliveryId>/ and no payload", ref, item["payload"] != nil)
	}
	if _, err := s3c.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &env.PayloadBucket, Key: &ref}); err != nil {
		t.Errorf("large item's payload object: %v", err)
	}

	// The index lists a day newest first.
	out, err := db.Query(t.Context(), &dynamodb.QueryInput{
		TableName:                 &env.EventsTable,
		IndexName:                 aws.String("byTime"),
		KeyConditionExpression:    aws.String("gsi1pk = :day"),
		ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":day": stringValue("DELIVERIES#2024-05-01")},
		ScanIndexForward:          aws.Bool(false),
	})
	if err != nil {
		t.Fatal(err)
	}
	found := slices.ContainsFunc(out.Items, func(it map[string]dbtypes.AttributeValue) bool {
		return stringAttr(it, "deliveryId") == small.DeliveryID
	})
	if !found {
		t.Errorf("byTime query of 2024-05-01 does not list delivery %s", small.DeliveryID)
	}
}

func rawItem(t *testing.T, db *dynamodb.Client, table string, key delivery.Key) map[string]dbtypes.AttributeValue {
	t.Helper()
	out, err := db.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: &table, Key: itemKey(key), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Item) == 0 {
		t.Fatalf("no item for %v", key)
	}
	return out.Item
}

func newStore(env *testenv.AWS, db *dynamodb.Client) *Store {
	return NewStore(db, newS3(env), env.EventsTable, env.PayloadBucket, retention)
}

// newS3 addresses buckets by path: moto serves every bucket on one host.
func newS3(env *testenv.AWS) *s3.Client {
	return s3.NewFromConfig(env.Config, func(o *s3.Options) { o.UsePathStyle = true })
}

func newRecord(payload []byte) *delivery.Record {
	return &delivery.Record{
		Key:        delivery.Key{HookID: "123456789", DeliveryID: rand.Text()},
		Event:      "workflow_job",
		Action:     "queued",
		ReceivedAt: time.Now(),
		Payload:    payload,
		State:      delivery.Received,
	}
}

// largePayload returns JSON that compresses to more than an item can hold.
func largePayload() []byte {
	random := make([]byte, 3<<19)
	rand.Read(random) // never fails since Go 1.24
	return []byte(`{"blob":"` + base64.StdEncoding.EncodeToString(random) + `"}`)
}
