package awsstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
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

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/delivery/deliverytest"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/storage/storagetest"
	"github.com/runnerhub/webhooks/internal/testenv"
)

const retention = 30 * 24 * time.Hour

// Every test here gets resources of its own in the one moto testenv.SharedAWS starts for
// the package, so the tests run in parallel.

func TestConformance(t *testing.T) {
	t.Parallel()
	storagetest.Conformance(t, func(t *testing.T) storagetest.Store { return sharedStore(t) })
}

// The queue suite wants an empty queue per subtest: every subtest drains what it sent, so
// the subtests share one queue.
func TestQueueSuite(t *testing.T) {
	t.Parallel()
	env, c := sharedSQS(t)
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
// time, the processor's throughput and the table's bill depend on them.
func TestRequestsPerCall(t *testing.T) {
	t.Parallel()
	env := testenv.SharedAWS(t)
	var mu sync.Mutex
	var ops []string
	db := env.DynamoDB(testenv.AroundEachAttempt("countRequests", func(ctx context.Context, send func() error) error {
		mu.Lock()
		ops = append(ops, awsmiddleware.GetOperationName(ctx))
		mu.Unlock()
		return send()
	}))
	store := newStore(env, db)
	f := newCostFixture(t, store)

	small := newRecord([]byte(`{"action":"queued"}`))
	large := newRecord(largePayload())
	ignore := func(_ any, err error) error { return err }
	midnight := time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		name string
		call func(ctx context.Context) error
		want []string
	}{
		// Ingest: recording a delivery counts it in the same transaction.
		{"Create", createNew(store, small), []string{"TransactWriteItems"}},
		{"Create duplicate", createExisting(store, small), []string{"TransactWriteItems"}},
		{"Create large", createNew(store, large), []string{"TransactWriteItems"}},
		{"Create large duplicate", createExisting(store, large), []string{"TransactWriteItems"}},
		{"Get", func(ctx context.Context) error { return ignore(store.Get(ctx, small.Key)) }, []string{"GetItem"}},
		{"CountError", func(ctx context.Context) error { return store.CountError(ctx, "workflow_job", time.Now()) }, []string{"UpdateItem"}},
		// Processing: key lookups, one Query per list, one transaction per delivery.
		{"Job", func(ctx context.Context) error { return ignore(store.Job(ctx, f.job.ID)) }, []string{"GetItem"}},
		{"Runner", func(ctx context.Context) error { return ignore(store.Runner(ctx, f.runner.Name)) }, []string{"GetItem"}},
		{"Run", func(ctx context.Context) error { return ignore(store.Run(ctx, f.run.ID)) }, []string{"GetItem"}},
		{"Profile", func(ctx context.Context) error { return ignore(store.Profile(ctx, f.profile.Repository)) }, []string{"GetItem"}},
		{"IdleRunners", func(ctx context.Context) error { return ignore(store.IdleRunners(ctx, f.pool, "", 10)) }, []string{"Query"}},
		{"PendingJobs", func(ctx context.Context) error { return ignore(store.PendingJobs(ctx, f.pool, "", 10)) }, []string{"Query"}},
		{"Commit reservation and finish", f.commit(store), []string{"TransactWriteItems"}},
		{"Commit again (conflict)", f.commitConflict(store), []string{"TransactWriteItems"}},
		// Management and statistics.
		{"PutPool", func(ctx context.Context) error {
			return store.PutPool(ctx, jobs.Pool{Name: f.pool, Labels: []string{"linux"}})
		}, []string{"PutItem"}},
		{"Pools", func(ctx context.Context) error { return ignore(store.Pools(ctx)) }, []string{"Query"}},
		{"DeletePool", func(ctx context.Context) error { return store.DeletePool(ctx, f.pool) }, []string{"DeleteItem"}},
		// Statistics: one Query per counter partition of each day (shards.go).
		{"HourlyCounts of 24 hours in a day", func(ctx context.Context) error {
			return ignore(store.HourlyCounts(ctx, midnight, midnight.Add(24*time.Hour)))
		}, slices.Repeat([]string{"Query"}, counterPartitions)},
		{"HourlyCounts of 24 hours over two days", func(ctx context.Context) error {
			return ignore(store.HourlyCounts(ctx, midnight.Add(-12*time.Hour), midnight.Add(12*time.Hour)))
		}, slices.Repeat([]string{"Query"}, 2*counterPartitions)},
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

// costFixture is stored state for TestRequestsPerCall: a pending job, an idle runner of
// its pool, a run, a profile and a received delivery whose processing reserves the one
// for the other.
type costFixture struct {
	pool    string
	job     *jobs.Job
	runner  *jobs.Runner
	run     *jobs.Run
	profile *jobs.Profile
	rec     *delivery.Record
}

func newCostFixture(t *testing.T, s *Store) *costFixture {
	t.Helper()
	f := &costFixture{
		pool:    "linux",
		job:     &jobs.Job{ID: 1, Pool: "linux", Status: jobs.StatusQueued, Allocation: jobs.AllocationPending},
		runner:  &jobs.Runner{Name: "runner-1", Pool: "linux", State: jobs.RunnerIdle},
		run:     &jobs.Run{ID: 2, Repository: "o/r"},
		profile: &jobs.Profile{Repository: "o/r"},
		rec:     newRecord([]byte(`{"action":"queued"}`)),
	}
	f.job.QueueKey = jobs.RankKey(time.Now(), f.job.ID)
	mustCommit(t, s, &jobs.Change{Jobs: []*jobs.Job{f.job}, Runners: []*jobs.Runner{f.runner},
		Runs: []*jobs.Run{f.run}, Profiles: []*jobs.Profile{f.profile}})
	if _, err := s.Create(t.Context(), f.rec); err != nil {
		t.Fatal(err)
	}
	return f
}

// reservation is the change that reserves the fixture's runner for its job, as read
// after the fixture was stored.
func (f *costFixture) reservation() *jobs.Change {
	job, runner := *f.job, *f.runner
	job.Version, runner.Version = 1, 1
	job.Allocation, job.ReservedRunner, job.QueueKey = jobs.AllocationReserved, runner.Name, ""
	runner.State, runner.JobID = jobs.RunnerReserved, job.ID
	return &jobs.Change{Jobs: []*jobs.Job{&job}, Runners: []*jobs.Runner{&runner}, Finish: &jobs.Finish{
		Key: f.rec.Key, Event: f.rec.Event, State: delivery.Processed, Outcome: "processed: reserved",
		At: time.Now(), ReceivedAt: f.rec.ReceivedAt,
	}}
}

func (f *costFixture) commit(s *Store) func(ctx context.Context) error {
	return func(ctx context.Context) error { return s.Commit(ctx, f.reservation()) }
}

func (f *costFixture) commitConflict(s *Store) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if err := s.Commit(ctx, f.reservation()); !errors.Is(err, jobs.ErrConflict) {
			return fmt.Errorf("err = %v, want ErrConflict", err)
		}
		return nil
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
	db := env.DynamoDB()
	s3c := env.S3()
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
		"gsi1pk":          fmt.Sprintf("DELIVERIES#2024-05-01#%d", shardOf(small.Key)%deliveryShards),
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

	// The index lists a day's shard newest first.
	out, err := db.Query(t.Context(), &dynamodb.QueryInput{
		TableName:                 &env.EventsTable,
		IndexName:                 aws.String("byTime"),
		KeyConditionExpression:    aws.String("gsi1pk = :day"),
		ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":day": stringValue(fmt.Sprintf("DELIVERIES#2024-05-01#%d", shardOf(small.Key)%deliveryShards))},
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
	return NewStore(db, env.S3(), env.EventsTable, env.PayloadBucket, retention)
}

// sharedStore is a Store on the test's own table and bucket in the package's moto, for
// tests that need no DynamoDB client of their own.
func sharedStore(t *testing.T) *Store {
	env := testenv.SharedAWS(t)
	return newStore(env, env.DynamoDB())
}

// sharedSQS is the test's own resources in the package's moto and an SQS client on them.
func sharedSQS(t *testing.T) (*testenv.AWS, *sqs.Client) {
	env := testenv.SharedAWS(t)
	return env, sqs.NewFromConfig(env.Config)
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
