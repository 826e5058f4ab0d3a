package awsstore

import (
	"context"
	"strings"
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
	attrReceivedAt, attrState, attrOutcome, attrProcessedAt,
}

// List implements delivery.Lister with one Query of the byTime index per read: the
// partition DELIVERIES#<day> holds a UTC day's deliveries sorted by gsi1sk
// (<receivedAt>#<hookId>#<deliveryId>, delivery.Position.SortKey), so a read is the
// partition's keys below a position, in descending order.
func (s *Store) List(ctx context.Context, q delivery.ListQuery) (delivery.Page, error) {
	return delivery.ListDays(ctx, q, s.readDay)
}

// readDay is the delivery.DayReader of the byTime index: exactly one Query. The index is
// eventually consistent, so a delivery recorded a moment ago may be missing, and a
// state may lag its item by as much.
func (s *Store) readDay(ctx context.Context, day time.Time, before delivery.Position, max int) ([]*delivery.Record, bool, error) {
	names := map[string]string{"#pk": attrGSI1PK, "#sk": attrGSI1SK}
	projection := make([]string, len(listedAttributes))
	for i, a := range listedAttributes {
		names["#"+a] = a
		projection[i] = "#" + a
	}
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName:              &s.table,
		IndexName:              aws.String(indexByTime),
		KeyConditionExpression: aws.String("#pk = :pk AND #sk < :before"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":     stringValue(deliveriesPartition(day)),
			":before": stringValue(before.SortKey()),
		},
		ExpressionAttributeNames: names,
		ProjectionExpression:     aws.String(strings.Join(projection, ", ")),
		ScanIndexForward:         aws.Bool(false),
		Limit:                    aws.Int32(int32(max)),
	})
	if err != nil {
		return nil, false, err
	}
	recs := make([]*delivery.Record, 0, len(out.Items))
	for _, item := range out.Items {
		rec, err := recordWithoutPayload(item)
		if err != nil {
			return nil, false, err
		}
		recs = append(recs, rec)
	}
	// LastEvaluatedKey is also set when the day ends exactly at max items: the walk then
	// pays one more, empty, read.
	return recs, len(out.LastEvaluatedKey) > 0, nil
}

// deliveriesPartition is the byTime partition of the deliveries received on day (UTC).
func deliveriesPartition(day time.Time) string {
	return "DELIVERIES#" + day.UTC().Format(dayLayout)
}
