package awsstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/runnerhub/webhooks/internal/delivery"
)

var _ delivery.Counters = (*Store)(nil)

// Counter attributes of a counter item.
const (
	attrTotal     = "total"
	attrProcessed = "processed"
	attrErrors    = "errors"
)

// HourlyCounts reads the counter items of the hours that start in [from, to): one Query
// per UTC day, each bounded to the day's hours in range by its sort key.
func (s *Store) HourlyCounts(ctx context.Context, from, to time.Time) ([]delivery.HourlyCount, error) {
	first := delivery.Hour(from)
	if first.Before(from) {
		first = first.Add(time.Hour) // the hour of from started before from
	}
	var counts []delivery.HourlyCount
	for day := first.Truncate(24 * time.Hour); day.Before(to); day = day.Add(24 * time.Hour) {
		lo := maxTime(first, day)
		hi := minTime(to, day.Add(24*time.Hour)) // exclusive
		if !lo.Before(hi) {
			continue
		}
		dayCounts, err := s.dayCounts(ctx, day, lo.Hour(), delivery.Hour(hi.Add(-time.Nanosecond)).Hour())
		if err != nil {
			return nil, err
		}
		counts = append(counts, dayCounts...)
	}
	return counts, nil
}

// dayCounts queries the counter items of hours firstHour..lastHour (inclusive) of one
// UTC day, in hour then event order. Sort keys are "<hh>#<event>": every key of hour hh
// sorts between "hh#" and "hh$", as '$' follows '#'.
func (s *Store) dayCounts(ctx context.Context, day time.Time, firstHour, lastHour int) ([]delivery.HourlyCount, error) {
	in := &dynamodb.QueryInput{
		TableName:                &s.table,
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": stringValue(countersPK(day)),
			":lo": stringValue(fmt.Sprintf("%02d#", firstHour)),
			":hi": stringValue(fmt.Sprintf("%02d$", lastHour)),
		},
		ConsistentRead: aws.Bool(true),
	}
	var counts []delivery.HourlyCount
	err := s.query(ctx, in, 0, func(item map[string]types.AttributeValue) error {
		c, err := hourlyCount(day, item)
		if err != nil {
			return err
		}
		counts = append(counts, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read counters of %s: %w", day.Format(dayLayout), err)
	}
	return counts, nil
}

func hourlyCount(day time.Time, item map[string]types.AttributeValue) (delivery.HourlyCount, error) {
	sk := stringAttr(item, attrSK)
	hh, event, ok := strings.Cut(sk, "#")
	hour, err := strconv.Atoi(hh)
	if !ok || err != nil {
		return delivery.HourlyCount{}, fmt.Errorf("counter item with sort key %q", sk)
	}
	r := itemReader{item: item}
	c := delivery.HourlyCount{
		Hour:      day.Add(time.Duration(hour) * time.Hour),
		Event:     event,
		Total:     r.num(attrTotal),
		Processed: r.num(attrProcessed),
		Errors:    r.num(attrErrors),
	}
	return c, r.err
}

// CountError adds one to the errors counter of event's hour (one UpdateItem).
func (s *Store) CountError(ctx context.Context, event string, receivedAt time.Time) error {
	u := s.counterUpdate(event, receivedAt, attrErrors)
	err := retryTransient(ctx, func() error {
		_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 u.TableName,
			Key:                       u.Key,
			UpdateExpression:          u.UpdateExpression,
			ExpressionAttributeNames:  u.ExpressionAttributeNames,
			ExpressionAttributeValues: u.ExpressionAttributeValues,
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("count error of %s at %s: %w", event, formatTime(receivedAt), err)
	}
	return nil
}

// counterUpdate adds one to each of counters in the counter item of event and the hour
// receivedAt falls in, creating the item if needed. ADD makes concurrent increments
// commute; what keeps an increment from being applied twice is the write it is part of
// (a conditional transaction), not the counter.
//
// The item expires with the deliveries it counts, retention after its hour.
func (s *Store) counterUpdate(event string, receivedAt time.Time, counters ...string) *types.Update {
	hour := delivery.Hour(receivedAt)
	names := map[string]string{"#expiresAt": attrExpiresAt}
	adds := make([]string, len(counters))
	for i, c := range counters {
		names["#"+c] = c
		adds[i] = "#" + c + " :one"
	}
	return &types.Update{
		TableName:                &s.table,
		Key:                      counterKey(hour, event),
		UpdateExpression:         aws.String("ADD " + strings.Join(adds, ", ") + " SET #expiresAt = if_not_exists(#expiresAt, :expiresAt)"),
		ExpressionAttributeNames: names,
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":one":       numberValue(1),
			":expiresAt": numberValue(hour.Add(s.retention).Unix()),
		},
	}
}

func counterKey(hour time.Time, event string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: stringValue(countersPK(hour)),
		attrSK: stringValue(fmt.Sprintf("%02d#%s", hour.Hour(), event)),
	}
}

func countersPK(t time.Time) string { return "COUNTERS#" + t.UTC().Format(dayLayout) }

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
