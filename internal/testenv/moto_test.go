package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

func TestStartAWSProvisionsTheTemplate(t *testing.T) {
	a := StartAWS(t)
	ctx := context.Background()

	if !strings.HasPrefix(a.Endpoint, "http://127.0.0.1:") {
		t.Errorf("Endpoint = %q, want a loopback URL", a.Endpoint)
	}
	if a.Region != "us-east-1" || a.Config.Region != "us-east-1" {
		t.Errorf("Region = %q, Config.Region = %q, want us-east-1", a.Region, a.Config.Region)
	}
	if a.Config.BaseEndpoint == nil || *a.Config.BaseEndpoint != a.Endpoint {
		t.Errorf("Config.BaseEndpoint = %v, want %s", a.Config.BaseEndpoint, a.Endpoint)
	}

	t.Run("table", func(t *testing.T) {
		db := dynamodb.NewFromConfig(a.Config)
		out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &a.EventsTable})
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string]ddbtypes.KeyType{}
		for _, k := range out.Table.KeySchema {
			keys[*k.AttributeName] = k.KeyType
		}
		if keys["pk"] != ddbtypes.KeyTypeHash || keys["sk"] != ddbtypes.KeyTypeRange || len(keys) != 2 {
			t.Errorf("key schema = %v, want pk HASH, sk RANGE", keys)
		}
		var gsis []string
		for _, ix := range out.Table.GlobalSecondaryIndexes {
			gsis = append(gsis, aws.ToString(ix.IndexName))
		}
		slices.Sort(gsis)
		if want := []string{"byAttr", "byPool", "byRepo", "byTime"}; !slices.Equal(gsis, want) {
			t.Errorf("GSIs = %v, want %v", gsis, want)
		}
		ttl, err := db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &a.EventsTable})
		if err != nil {
			t.Fatal(err)
		}
		if d := ttl.TimeToLiveDescription; d.TimeToLiveStatus != ddbtypes.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != "expiresAt" {
			t.Errorf("TTL = %s on %q, want ENABLED on expiresAt", d.TimeToLiveStatus, aws.ToString(d.AttributeName))
		}

		item := map[string]ddbtypes.AttributeValue{
			"pk":     &ddbtypes.AttributeValueMemberS{Value: "delivery#hook1#guid-1"},
			"sk":     &ddbtypes.AttributeValueMemberS{Value: "meta"},
			"gsi1pk": &ddbtypes.AttributeValueMemberS{Value: "deliveries"},
			"gsi1sk": &ddbtypes.AttributeValueMemberS{Value: "2026-01-01T00:00:00Z#guid-1"},
			"event":  &ddbtypes.AttributeValueMemberS{Value: "workflow_job"},
		}
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &a.EventsTable, Item: item}); err != nil {
			t.Fatal(err)
		}
		got, err := db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName:      &a.EventsTable,
			Key:            map[string]ddbtypes.AttributeValue{"pk": item["pk"], "sk": item["sk"]},
			ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			t.Fatal(err)
		}
		if ev, ok := got.Item["event"].(*ddbtypes.AttributeValueMemberS); !ok || ev.Value != "workflow_job" {
			t.Errorf("GetItem = %v, want the item back", got.Item)
		}
		q, err := db.Query(ctx, &dynamodb.QueryInput{
			TableName:                 &a.EventsTable,
			IndexName:                 aws.String("byTime"),
			KeyConditionExpression:    aws.String("gsi1pk = :p"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": item["gsi1pk"]},
			ScanIndexForward:          aws.Bool(false),
		})
		if err != nil {
			t.Fatal(err)
		}
		if q.Count != 1 {
			t.Errorf("Query byTime found %d items, want 1", q.Count)
		}
	})

	t.Run("queue", func(t *testing.T) {
		q := sqs.NewFromConfig(a.Config)
		attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl:       &a.EventsQueueURL,
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll},
		})
		if err != nil {
			t.Fatal(err)
		}
		dlq, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl:       &a.EventsDLQURL,
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
		})
		if err != nil {
			t.Fatal(err)
		}
		var redrive struct {
			DeadLetterTargetArn string `json:"deadLetterTargetArn"`
			MaxReceiveCount     json.Number
		}
		if err := json.Unmarshal([]byte(attrs.Attributes["RedrivePolicy"]), &redrive); err != nil {
			t.Fatalf("RedrivePolicy %q: %v", attrs.Attributes["RedrivePolicy"], err)
		}
		if redrive.DeadLetterTargetArn != dlq.Attributes["QueueArn"] || redrive.MaxReceiveCount.String() != "5" {
			t.Errorf("RedrivePolicy = %+v, want the DLQ %s after 5 receives", redrive, dlq.Attributes["QueueArn"])
		}
		if got := attrs.Attributes["MaximumMessageSize"]; got != "1048576" {
			t.Errorf("MaximumMessageSize = %s, want the template's 1048576", got)
		}

		// The processor's event source mapping is not created in moto, so nothing
		// consumes the queue behind the test's back.
		body := `{"delivery":"guid-1"}`
		if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &a.EventsQueueURL, MessageBody: &body}); err != nil {
			t.Fatal(err)
		}
		got, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    &a.EventsQueueURL,
			MaxNumberOfMessages:         10,
			WaitTimeSeconds:             1,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Messages) != 1 || aws.ToString(got.Messages[0].Body) != body {
			t.Fatalf("ReceiveMessage = %+v, want the one message sent", got.Messages)
		}
		if n := got.Messages[0].Attributes["ApproximateReceiveCount"]; n != "1" {
			t.Errorf("ApproximateReceiveCount = %s, want 1 (did something else receive it?)", n)
		}
		if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &a.EventsQueueURL, ReceiptHandle: got.Messages[0].ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("bucket", func(t *testing.T) {
		s := a.S3()
		if _, err := s.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &a.PayloadBucket}); err != nil {
			t.Fatal(err)
		}
		lc, err := s.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: &a.PayloadBucket})
		if err != nil {
			t.Fatal(err)
		}
		if len(lc.Rules) != 1 || lc.Rules[0].Expiration == nil || aws.ToInt32(lc.Rules[0].Expiration.Days) != 30 {
			t.Errorf("lifecycle rules = %+v, want expiry after RetentionDays (30)", lc.Rules)
		}
		payload := []byte(`{"action":"queued"}`)
		key := "payloads/hook1/guid-1.json.gz"
		if _, err := s.PutObject(ctx, &s3.PutObjectInput{Bucket: &a.PayloadBucket, Key: &key, Body: bytes.NewReader(payload)}); err != nil {
			t.Fatal(err)
		}
		obj, err := s.GetObject(ctx, &s3.GetObjectInput{Bucket: &a.PayloadBucket, Key: &key})
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Body.Close()
		got, err := io.ReadAll(obj.Body)
		if err != nil || !bytes.Equal(got, payload) {
			t.Errorf("GetObject = %q, %v; want %q", got, err, payload)
		}
	})

	t.Run("env", func(t *testing.T) {
		env := map[string]string{}
		for _, kv := range a.Env() {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("Env entry %q is not K=V", kv)
			}
			env[k] = v
		}
		want := map[string]string{
			"AWS_ENDPOINT_URL":           a.Endpoint,
			"AWS_REGION":                 "us-east-1",
			"AWS_DEFAULT_REGION":         "us-east-1",
			"AWS_ACCESS_KEY_ID":          "test",
			"AWS_SECRET_ACCESS_KEY":      "test",
			"RUNNERHUB_EVENTS_TABLE":     a.EventsTable,
			"RUNNERHUB_EVENTS_QUEUE_URL": a.EventsQueueURL,
			"RUNNERHUB_EVENTS_DLQ_URL":   a.EventsDLQURL,
			"RUNNERHUB_DEMAND_QUEUE_URL": a.DemandQueueURL,
			"RUNNERHUB_FANOUT_QUEUE_URL": a.FanoutQueueURL,
			"RUNNERHUB_PAYLOAD_BUCKET":   a.PayloadBucket,
		}
		for k, v := range want {
			if env[k] != v {
				t.Errorf("Env %s = %q, want %q", k, env[k], v)
			}
		}
		if len(env) != len(want) {
			t.Errorf("Env has %d variables, want %d: %v", len(env), len(want), a.Env())
		}
	})

	t.Run("fresh", func(t *testing.T) {
		b := a.Fresh(t)
		if b.Endpoint != a.Endpoint {
			t.Errorf("Fresh endpoint %s, want the same moto %s", b.Endpoint, a.Endpoint)
		}
		for _, pair := range [][2]string{
			{a.EventsTable, b.EventsTable},
			{a.EventsQueueURL, b.EventsQueueURL},
			{a.EventsDLQURL, b.EventsDLQURL},
			{a.DemandQueueURL, b.DemandQueueURL},
			{a.FanoutQueueURL, b.FanoutQueueURL},
			{a.PayloadBucket, b.PayloadBucket},
		} {
			if pair[0] == pair[1] {
				t.Errorf("Fresh reused %s", pair[0])
			}
		}
		// Fresh resources are empty even though a's are not.
		db := dynamodb.NewFromConfig(b.Config)
		scan, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: &b.EventsTable})
		if err != nil {
			t.Fatal(err)
		}
		if scan.Count != 0 {
			t.Errorf("fresh table holds %d items", scan.Count)
		}
		body := "only in a"
		if _, err := sqs.NewFromConfig(a.Config).SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &a.EventsQueueURL, MessageBody: &body}); err != nil {
			t.Fatal(err)
		}
		got, err := sqs.NewFromConfig(b.Config).ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &b.EventsQueueURL, MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Messages) != 0 {
			t.Errorf("fresh queue received %d messages sent to another stack", len(got.Messages))
		}
	})
}

// A test's moto is gone, with its whole process group, once the test's cleanup has run.
func TestStartAWSStopsMoto(t *testing.T) {
	var pgid int
	var endpoint string
	t.Run("inner", func(t *testing.T) {
		a := StartAWS(t)
		pgid, endpoint = a.moto.cmd.Process.Pid, a.Endpoint
		if err := syscall.Kill(-pgid, 0); err != nil {
			t.Fatalf("moto's process group %d is not running: %v", pgid, err)
		}
	})
	if pgid == 0 {
		t.Skip("inner test did not start moto")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := syscall.Kill(-pgid, 0)
		if errors.Is(err, syscall.ESRCH) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto's process group %d (%s) still exists after cleanup (kill -0: %v)", pgid, endpoint, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSharedAWSSharesOneMoto(t *testing.T) {
	a := SharedAWS(t)
	b := SharedAWS(t)
	if a.Endpoint != b.Endpoint {
		t.Errorf("SharedAWS endpoints %s and %s, want one moto", a.Endpoint, b.Endpoint)
	}
	if a.EventsTable == b.EventsTable || a.EventsQueueURL == b.EventsQueueURL || a.PayloadBucket == b.PayloadBucket {
		t.Errorf("SharedAWS reused resources: %+v / %+v", a, b)
	}
	if _, err := dynamodb.NewFromConfig(b.Config).DescribeTable(context.Background(),
		&dynamodb.DescribeTableInput{TableName: &b.EventsTable}); err != nil {
		t.Fatal(err)
	}
}
