package awsstore

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/runnerhub/webhooks/internal/delivery"
)

var _ delivery.Lister = (*Store)(nil)

// listedAttributes are what a listing reads of a delivery item: everything but the
// payload, which can be hundreds of kilobytes. (DynamoDB still counts the whole item
// against the 1 MB a Query reads; it only leaves the payload off the wire.)
var listedAttributes = []string{
	attrHookID, attrDeliveryID, attrEvent, attrAction, attrRepository,
	attrInstallationTargetType, attrInstallationTargetID,
	attrReceivedAt, attrState, attrOutcome, attrProcessedAt, attrRedelivered,
}

// List implements delivery.Lister with one read of the byTime index per day it walks:
// the deliveries of a UTC day are spread over deliveryShards partitions
// DELIVERIES#<day>#<shard>, each sorted by gsi1sk (<receivedAt>#<hookId>#<deliveryId>,
// delivery.Position.SortKey), so a read is one Query of each shard for its keys below a
// position, in descending order, merged.
func (s *Store) List(ctx context.Context, q delivery.ListQuery) (delivery.Page, error) {
	return delivery.ListDays(ctx, q, s.readDay)
}

// readDay is the delivery.DayReader of the byTime index: one Query per shard of the day,
// at once, each of at most max items. Every shard hands over its largest keys below
// before, so the first max of their merge are the day's, and the day has more when
// the merge holds more than max or a shard has more than it read. The index is
// eventually consistent, so a delivery recorded a moment ago may be missing, and a
// state may lag its item by as much.
func (s *Store) readDay(ctx context.Context, day time.Time, before delivery.Position, max int) ([]*delivery.Record, bool, error) {
	names := map[string]string{"#pk": attrGSI1PK, "#sk": attrGSI1SK}
	projection := make([]string, len(listedAttributes))
	for i, a := range listedAttributes {
		names["#"+a] = a
		projection[i] = "#" + a
	}
	projection = append(projection, "#sk") // to merge the shards by
	var more atomic.Bool
	items, err := readShards(deliveryShards, true, func(item map[string]types.AttributeValue) string {
		return stringAttr(item, attrGSI1SK)
	}, func(shard int) ([]map[string]types.AttributeValue, error) {
		out, err := s.db.Query(ctx, &dynamodb.QueryInput{
			TableName:              &s.table,
			IndexName:              aws.String(indexByTime),
			KeyConditionExpression: aws.String("#pk = :pk AND #sk < :before"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk":     stringValue(deliveriesPartition(day, shard)),
				":before": stringValue(before.SortKey()),
			},
			ExpressionAttributeNames: names,
			ProjectionExpression:     aws.String(strings.Join(projection, ", ")),
			ScanIndexForward:         aws.Bool(false),
			Limit:                    aws.Int32(int32(max)),
		})
		if err != nil {
			return nil, err
		}
		// LastEvaluatedKey is also set when a shard ends exactly at max items: the
		// walk then pays one more, empty, read.
		if len(out.LastEvaluatedKey) > 0 {
			more.Store(true)
		}
		return out.Items, nil
	})
	if err != nil {
		return nil, false, err
	}
	hasMore := more.Load() || len(items) > max
	items = items[:min(len(items), max)]
	recs := make([]*delivery.Record, 0, len(items))
	for _, item := range items {
		rec, err := recordWithoutPayload(item)
		if err != nil {
			return nil, false, err
		}
		recs = append(recs, rec)
	}
	return recs, hasMore, nil
}

// deliveriesPartition is the byTime partition of shard of the deliveries received on
// day (UTC).
func deliveriesPartition(day time.Time, shard int) string {
	return shardKey("DELIVERIES#"+day.UTC().Format(dayLayout), shard)
}
