// Package awsstore keeps RunnerHub's state on AWS: deliveries, the job domain's entities
// and the hourly counters in the one DynamoDB events table (single-table design), payloads
// too large for an item in S3, queue messages and runner signals in SQS.
//
// # Deliveries
//
// One delivery is one item in the events table:
//
//	pk                     DELIVERY#<hookId>#<deliveryId>
//	sk                     DELIVERY
//	hookId, deliveryId     the key again, so that index queries need not parse pk
//	event, action, repository, installationTargetType, installationTargetId
//	receivedAt             RFC 3339, UTC, milliseconds (2024-05-01T12:00:00.000Z)
//	state, outcome, processedAt (processedAt as receivedAt, set once processed)
//	expiresAt              receivedAt + retention, epoch seconds (the table's TTL attribute)
//	gsi1pk                 DELIVERIES#<yyyy-mm-dd of receivedAt>#<shardOf(key) % deliveryShards>
//	gsi1sk                 <receivedAt>#<hookId>#<deliveryId>
//	payloadEncoding        gzip
//	payload                the gzip-compressed payload, or, when that exceeds maxInlinePayload,
//	payloadRef             the S3 key of the compressed payload in the payload bucket:
//	                       payloads/<hookId>/<deliveryId>/<hex SHA-256 of the payload>.json.gz
//
// The byTime index (gsi1pk, gsi1sk) lists one UTC day's deliveries newest first with one
// Query per shard of the day, merged (see shards.go). Create leaves empty strings and a zero processedAt out of the item; absent
// attributes read back as empty.
//
// Hook and delivery ids are GitHub's (numbers and UUIDs, or delivery.NoHook) and are used
// as they are: they contain no '#', so pk is unambiguous.
//
// # Counters
//
// counterShards items per UTC hour and event type, updated with ADD in the transaction
// that makes the change counted, so each delivery counts once:
//
//	pk                     COUNTERS#<yyyy-mm-dd>#<shard % counterPartitions>
//	sk                     <hh>#<event>#<shard> (shard 00…15, see counterShards)
//	total                  deliveries recorded (Create)
//	processed              deliveries finished (a Commit's Finish)
//	errors                 failed processing attempts (CountError)
//	expiresAt              the hour + retention
//
// HourlyCounts is one Query per counter partition of each UTC day in range, summed.
//
// # Job domain
//
// Every entity is one item with one attribute per field (zero values left out, times as
// receivedAt, lists as L) and a numeric version, the optimistic-concurrency counter
// Commit checks and increments:
//
//	Job      pk JOB#<id>          sk JOB      gsi1pk PENDING#<pool> gsi1sk <QueueKey>, while pending
//	Runner   pk RUNNER#<name>     sk RUNNER   gsi1pk IDLE#<pool>    gsi1sk <name>, while idle
//	Run      pk RUN#<id>          sk RUN
//	Profile  pk REPO#<owner/name> sk PROFILE
//	Pool     pk POOLS             sk POOL#<name> (no version: pools are replaced whole)
//	Counts   pk POOLCOUNTS#<pool>#<shard> sk COUNTS (ADD only; see poolcounts.go)
//
// The byTime index is overloaded as a sparse index: a job is in its pool's pending queue,
// in queue order, exactly while it carries gsi1pk/gsi1sk, and a runner among its pool's
// idle runners likewise; PendingJobs and IdleRunners are one Query each, Pools one Query
// of the POOLS partition, every other read a GetItem. Nothing scans.
//
// Commit writes a jobs.Change as one TransactWriteItems (see Commit), which is what makes
// allocation race-free: two processors that reserve the same idle runner both put it at
// the version they read, and only the first transaction finds that version stored.
package awsstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
)

// Attribute names of a delivery item.
const (
	attrPK                     = "pk"
	attrSK                     = "sk"
	attrGSI1PK                 = "gsi1pk"
	attrGSI1SK                 = "gsi1sk"
	attrHookID                 = "hookId"
	attrDeliveryID             = "deliveryId"
	attrEvent                  = "event"
	attrAction                 = "action"
	attrRepository             = "repository"
	attrInstallationTargetType = "installationTargetType"
	attrInstallationTargetID   = "installationTargetId"
	attrReceivedAt             = "receivedAt"
	attrState                  = "state"
	attrOutcome                = "outcome"
	attrProcessedAt            = "processedAt"
	attrRedelivered            = "redelivered"
	attrExpiresAt              = "expiresAt"
	attrPayload                = "payload"
	attrPayloadRef             = "payloadRef"
	attrPayloadEncoding        = "payloadEncoding"
)

const (
	deliverySK = "DELIVERY"
	// timeLayout has a fixed width so that gsi1sk sorts by time as a string.
	timeLayout = "2006-01-02T15:04:05.000Z07:00"
	dayLayout  = "2006-01-02"
)

var _ delivery.Store = (*Store)(nil)

// Store implements delivery.Store on DynamoDB, with S3 as a claim check for large payloads.
type Store struct {
	db        *dynamodb.Client
	s3        *s3.Client
	table     string
	bucket    string
	retention time.Duration
}

// NewStore returns a Store keeping deliveries in table and large payloads in bucket. A
// delivery expires retention after it was received (DynamoDB TTL); the bucket should expire
// payload objects after the same time (template.yaml's lifecycle rule does).
func NewStore(db *dynamodb.Client, s3c *s3.Client, table, bucket string, retention time.Duration) *Store {
	return &Store{db: db, s3: s3c, table: table, bucket: bucket, retention: retention}
}

// Create stores rec unless its key exists, and counts a new delivery in its hour's
// counters in the same transaction, so that a delivery is counted exactly once however
// often it is redelivered. A new delivery costs one DynamoDB request, and so does a
// duplicate: the cancelled transaction returns the existing item.
func (s *Store) Create(ctx context.Context, rec *delivery.Record) (*delivery.Record, error) {
	item, err := s.newItem(ctx, rec)
	if err != nil {
		return nil, err
	}
	put := &types.Put{
		TableName:                           &s.table,
		Item:                                item,
		ConditionExpression:                 aws.String("attribute_not_exists(" + attrPK + ")"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	counters := []string{attrTotal}
	if rec.State.Done() {
		// Recorded already finished: no Finish will ever count it as processed.
		counters = append(counters, attrProcessed)
	}
	err = s.transact(ctx, []types.TransactWriteItem{
		{Put: put},
		{Update: s.counterUpdate(rec.Event, rec.ReceivedAt, shardOf(rec.Key), counters...)},
	})
	if err == nil {
		return nil, nil
	}
	reason, failed := conditionFailed(err, 0)
	if !failed {
		return nil, fmt.Errorf("store delivery %s: %w", keyString(rec.Key), err)
	}
	if len(reason.Item) == 0 {
		// DynamoDB returns the item with the cancellation; should it not, read it.
		return s.existing(ctx, rec.Key)
	}
	existing, err := recordWithoutPayload(reason.Item)
	if err != nil {
		return nil, fmt.Errorf("read existing delivery %s: %w", keyString(rec.Key), err)
	}
	return existing, nil
}

// existing reads a delivery without its payload.
func (s *Store) existing(ctx context.Context, key delivery.Key) (*delivery.Record, error) {
	item, err := s.getDelivery(ctx, key)
	if err != nil {
		return nil, err
	}
	return recordWithoutPayload(item)
}

// Get reads a delivery with a strongly consistent read: the processor may ask for it as soon
// as it is enqueued.
func (s *Store) Get(ctx context.Context, key delivery.Key) (*delivery.Record, error) {
	item, err := s.getDelivery(ctx, key)
	if err != nil {
		return nil, err
	}
	rec, err := s.record(ctx, item)
	if err != nil {
		return nil, fmt.Errorf("get delivery %s: %w", keyString(key), err)
	}
	return rec, nil
}

// getDelivery reads a delivery's item with a strongly consistent read.
func (s *Store) getDelivery(ctx context.Context, key delivery.Key) (map[string]types.AttributeValue, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            itemKey(key),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("get delivery %s: %w", keyString(key), err)
	}
	if len(out.Item) == 0 {
		return nil, fmt.Errorf("get delivery %s: %w", keyString(key), delivery.ErrNotFound)
	}
	return out.Item, nil
}

// finishItems are the writes that finish a delivery: its final state, on condition that
// it is still received, and its count as processed. A failed condition returns the item
// (see finishFailed).
func (s *Store) finishItems(f *jobs.Finish) []types.TransactWriteItem {
	finish := &types.Update{
		TableName:           &s.table,
		Key:                 itemKey(f.Key),
		UpdateExpression:    aws.String("SET #state = :state, #outcome = :outcome, #processedAt = :processedAt"),
		ConditionExpression: aws.String("#state = :received"),
		ExpressionAttributeNames: map[string]string{
			"#state":       attrState,
			"#outcome":     attrOutcome,
			"#processedAt": attrProcessedAt,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":state":       stringValue(string(f.State)),
			":outcome":     stringValue(f.Outcome),
			":processedAt": stringValue(formatTime(f.At)),
			":received":    stringValue(string(delivery.Received)),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	return []types.TransactWriteItem{
		{Update: finish},
		{Update: s.counterUpdate(f.Event, f.ReceivedAt, shardOf(f.Key), attrProcessed)},
	}
}

// newItem builds the item for rec, first putting a payload too large for the item into S3
// so that no item ever points to a missing object.
func (s *Store) newItem(ctx context.Context, rec *delivery.Record) (map[string]types.AttributeValue, error) {
	received := formatTime(rec.ReceivedAt)
	item := itemKey(rec.Key)
	item[attrHookID] = stringValue(rec.HookID)
	item[attrDeliveryID] = stringValue(rec.DeliveryID)
	item[attrReceivedAt] = stringValue(received)
	item[attrExpiresAt] = numberValue(rec.ReceivedAt.Add(s.retention).Unix())
	item[attrGSI1PK] = stringValue(deliveriesPartition(rec.ReceivedAt, shardOf(rec.Key)%deliveryShards))
	item[attrGSI1SK] = stringValue(received + "#" + rec.HookID + "#" + rec.DeliveryID)
	for name, v := range map[string]string{
		attrEvent:                  rec.Event,
		attrAction:                 rec.Action,
		attrRepository:             rec.Repository,
		attrInstallationTargetType: rec.InstallationTargetType,
		attrInstallationTargetID:   rec.InstallationTargetID,
		attrState:                  string(rec.State),
		attrOutcome:                rec.Outcome,
	} {
		if v != "" {
			item[name] = stringValue(v)
		}
	}
	if !rec.ProcessedAt.IsZero() {
		item[attrProcessedAt] = stringValue(formatTime(rec.ProcessedAt))
	}
	if rec.Redelivered {
		item[attrRedelivered] = &types.AttributeValueMemberBOOL{Value: true}
	}
	if err := s.putPayload(ctx, rec, item); err != nil {
		return nil, err
	}
	return item, nil
}

// record decodes an item, fetching its payload from S3 when the item holds a reference.
func (s *Store) record(ctx context.Context, item map[string]types.AttributeValue) (*delivery.Record, error) {
	rec, err := recordWithoutPayload(item)
	if err != nil {
		return nil, err
	}
	if rec.Payload, err = s.payload(ctx, item); err != nil {
		return nil, err
	}
	return rec, nil
}

// recordWithoutPayload reads everything but the payload, which may need a trip to S3.
func recordWithoutPayload(item map[string]types.AttributeValue) (*delivery.Record, error) {
	received, err := parseTime(item, attrReceivedAt)
	if err != nil {
		return nil, err
	}
	processed, err := parseTime(item, attrProcessedAt)
	if err != nil {
		return nil, err
	}
	return &delivery.Record{
		Key:                    delivery.Key{HookID: stringAttr(item, attrHookID), DeliveryID: stringAttr(item, attrDeliveryID)},
		Event:                  stringAttr(item, attrEvent),
		Action:                 stringAttr(item, attrAction),
		Repository:             stringAttr(item, attrRepository),
		InstallationTargetType: stringAttr(item, attrInstallationTargetType),
		InstallationTargetID:   stringAttr(item, attrInstallationTargetID),
		ReceivedAt:             received,
		State:                  delivery.State(stringAttr(item, attrState)),
		Outcome:                stringAttr(item, attrOutcome),
		ProcessedAt:            processed,
		Redelivered:            redelivered(item),
	}, nil
}

func redelivered(item map[string]types.AttributeValue) bool {
	v, ok := item[attrRedelivered].(*types.AttributeValueMemberBOOL)
	return ok && v.Value
}

// MarkRedelivered sets the redelivered attribute with one conditional update, which
// touches no other attribute, so it races with nothing (a finishing commit included).
func (s *Store) MarkRedelivered(ctx context.Context, key delivery.Key) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       itemKey(key),
		UpdateExpression:          aws.String("SET #redelivered = :true"),
		ConditionExpression:       aws.String("attribute_exists(#pk)"),
		ExpressionAttributeNames:  map[string]string{"#redelivered": attrRedelivered, "#pk": attrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":true": &types.AttributeValueMemberBOOL{Value: true}},
	})
	var missing *types.ConditionalCheckFailedException
	if errors.As(err, &missing) {
		err = delivery.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("mark delivery %s redelivered: %w", keyString(key), err)
	}
	return nil
}

func itemKey(key delivery.Key) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: stringValue("DELIVERY#" + key.HookID + "#" + key.DeliveryID),
		attrSK: stringValue(deliverySK),
	}
}

// keyString names a delivery in error messages.
func keyString(key delivery.Key) string { return key.HookID + "/" + key.DeliveryID }

func stringValue(s string) *types.AttributeValueMemberS {
	return &types.AttributeValueMemberS{Value: s}
}

// stringAttr returns a string attribute, "" when it is absent.
func stringAttr(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// parseTime reads a time attribute, the zero time when it is absent.
func parseTime(item map[string]types.AttributeValue, name string) (time.Time, error) {
	s := stringAttr(item, name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("attribute %s: %w", name, err)
	}
	return t, nil
}

// ---------------------------------------------------------------------------- transactions

// maxTransactItems is DynamoDB's limit on the actions in one TransactWriteItems.
const maxTransactItems = 100

// maxTransactAttempts bounds transact's retries; backoffBase is its first delay, doubled
// on each retry and jittered.
const (
	maxTransactAttempts = 5
	backoffBase         = 10 * time.Millisecond
)

// transact writes items in one TransactWriteItems. DynamoDB cancels a transaction that
// touches an item another transaction has in flight (TransactionConflict): every
// delivery of an hour and event shares one counter item, so with concurrent writers that
// is routine, and it says nothing about our conditions. transact retries such
// cancellations, and throttled ones, a few times with jittered backoff; what it returns
// after that the caller judges. The SDK retries neither. It does retry network errors,
// with the idempotency token it sets on the input, so that a write whose answer was lost
// is answered with success rather than applied twice; each attempt here is a new request,
// so it gets a new input and token.
func (s *Store) transact(ctx context.Context, items []types.TransactWriteItem) error {
	return retryTransient(ctx, func() error {
		_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		return err
	})
}

// retryTransient calls write until it succeeds, fails other than transiently, or has been
// tried maxTransactAttempts times.
func retryTransient(ctx context.Context, write func() error) error {
	return retry(ctx, write, transient)
}

// retry calls call until it succeeds, fails with an error again does not accept, or has
// been tried maxTransactAttempts times, with a jittered wait doubling from backoffBase.
func retry(ctx context.Context, call func() error, again func(error) bool) error {
	delay := backoffBase
	for attempt := 1; ; attempt++ {
		err := call()
		if err == nil || attempt == maxTransactAttempts || !again(err) {
			return err
		}
		t := time.NewTimer(delay/2 + rand.N(delay))
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		delay *= 2
	}
}

// Cancellation reason codes of TransactionCanceledException.
const (
	reasonNone              = "None"
	reasonConditionFailed   = "ConditionalCheckFailed"
	reasonConflict          = "TransactionConflict"
	reasonThrottled         = "ThrottlingError"
	reasonThroughputExceeds = "ProvisionedThroughputExceeded"
)

// transient reports whether err is a conflict with another transaction in flight or a
// throttle, and nothing worse: a transaction cancelled only for such reasons, or a single
// write that conflicted with a transaction.
func transient(err error) bool {
	var single *types.TransactionConflictException
	if errors.As(err, &single) {
		return true
	}
	reasons, ok := cancellationReasons(err)
	if !ok {
		return false
	}
	retry := false
	for _, r := range reasons {
		switch aws.ToString(r.Code) {
		case reasonNone, "":
		case reasonConflict, reasonThrottled, reasonThroughputExceeds:
			retry = true
		default:
			return false
		}
	}
	return retry
}

// conflict reports whether a transaction was cancelled because a condition failed or
// another transaction touched one of its items: reading again and retrying may succeed.
func conflict(err error) bool {
	reasons, _ := cancellationReasons(err)
	for _, r := range reasons {
		if code := aws.ToString(r.Code); code == reasonConditionFailed || code == reasonConflict {
			return true
		}
	}
	return false
}

// conditionFailed returns the cancellation reason of the i-th action of a cancelled
// transaction if that action's condition failed.
func conditionFailed(err error, i int) (types.CancellationReason, bool) {
	reasons, _ := cancellationReasons(err)
	if i < 0 || i >= len(reasons) || aws.ToString(reasons[i].Code) != reasonConditionFailed {
		return types.CancellationReason{}, false
	}
	return reasons[i], true
}

// finishFailed tells whether the finish of a delivery at action i of a transaction
// failed its condition, and whether it failed because the delivery is missing (no item
// came back with the cancellation) rather than finished already.
func finishFailed(err error, i int) (failed, missing bool) {
	r, failed := conditionFailed(err, i)
	return failed, failed && len(r.Item) == 0
}

// cancellationReasons returns the reasons of a cancelled transaction, one per action in
// the order of the request.
func cancellationReasons(err error) ([]types.CancellationReason, bool) {
	var cancelled *types.TransactionCanceledException
	if !errors.As(err, &cancelled) {
		return nil, false
	}
	return cancelled.CancellationReasons, true
}
