// Package awsstore keeps deliveries on AWS: records in the DynamoDB events table, payloads
// too large for an item in S3, and queue messages in SQS.
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
//	gsi1pk                 DELIVERIES#<yyyy-mm-dd of receivedAt>
//	gsi1sk                 <receivedAt>#<hookId>#<deliveryId>
//	payloadEncoding        gzip
//	payload                the gzip-compressed payload, or, when that exceeds maxInlinePayload,
//	payloadRef             the S3 key of the compressed payload in the payload bucket:
//	                       payloads/<hookId>/<deliveryId>/<hex SHA-256 of the payload>.json.gz
//
// The byTime index (gsi1pk, gsi1sk) lists one UTC day's deliveries newest first with a
// Query. Create leaves empty strings and a zero processedAt out of the item; absent
// attributes read back as empty.
//
// Hook and delivery ids are GitHub's (numbers and UUIDs, or delivery.NoHook) and are used
// as they are: they contain no '#', so pk is unambiguous.
package awsstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/runnerhub/webhooks/internal/delivery"
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

// Create stores rec unless its key exists. A new delivery costs one DynamoDB request, and so
// does a duplicate: the failed conditional put returns the existing item.
func (s *Store) Create(ctx context.Context, rec *delivery.Record) (*delivery.Record, error) {
	item, err := s.newItem(ctx, rec)
	if err != nil {
		return nil, err
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           &s.table,
		Item:                                item,
		ConditionExpression:                 aws.String("attribute_not_exists(" + attrPK + ")"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var exists *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return nil, nil
	case errors.As(err, &exists) && len(exists.Item) > 0:
		existing, err := recordWithoutPayload(exists.Item)
		if err != nil {
			return nil, fmt.Errorf("read existing delivery %s: %w", keyString(rec.Key), err)
		}
		return existing, nil
	default:
		return nil, fmt.Errorf("store delivery %s: %w", keyString(rec.Key), err)
	}
}

// Get reads a delivery with a strongly consistent read: the processor may ask for it as soon
// as it is enqueued.
func (s *Store) Get(ctx context.Context, key delivery.Key) (*delivery.Record, error) {
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
	rec, err := s.record(ctx, out.Item)
	if err != nil {
		return nil, fmt.Errorf("get delivery %s: %w", keyString(key), err)
	}
	return rec, nil
}

// Finish sets the final state in one conditional update. The condition fails both for an
// unknown key and for a finished delivery; the old item returned with the failure (none for
// an unknown key) tells the two apart without a second request.
func (s *Store) Finish(ctx context.Context, key delivery.Key, state delivery.State, outcome string, at time.Time) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           &s.table,
		Key:                 itemKey(key),
		UpdateExpression:    aws.String("SET #state = :state, #outcome = :outcome, #processedAt = :processedAt"),
		ConditionExpression: aws.String("attribute_exists(#pk) AND #state = :received"),
		ExpressionAttributeNames: map[string]string{
			"#pk":          attrPK,
			"#state":       attrState,
			"#outcome":     attrOutcome,
			"#processedAt": attrProcessedAt,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":state":       stringValue(string(state)),
			":outcome":     stringValue(outcome),
			":processedAt": stringValue(formatTime(at)),
			":received":    stringValue(string(delivery.Received)),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var failed *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &failed):
		return fmt.Errorf("finish delivery %s: %w", keyString(key), err)
	case len(failed.Item) == 0:
		return fmt.Errorf("finish delivery %s: %w", keyString(key), delivery.ErrNotFound)
	default:
		return nil // already finished: the first outcome stands
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
	item[attrExpiresAt] = &types.AttributeValueMemberN{Value: strconv.FormatInt(rec.ReceivedAt.Add(s.retention).Unix(), 10)}
	item[attrGSI1PK] = stringValue("DELIVERIES#" + rec.ReceivedAt.UTC().Format(dayLayout))
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
	}, nil
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
