package awsstore

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
)

var _ delivery.Counters = (*Store)(nil)

// Counter attributes of a counter item (counterAttrs reads them).
const (
	attrTotal     = "total"
	attrProcessed = "processed"
	attrErrors    = "errors"
)

// counterShards splits each (hour, event) counter over this many items. Every recorded
// and every finished delivery updates its counter inside a transaction, and DynamoDB
// cancels a transaction that touches an item another one in flight is writing: with one
// item per counter, a burst of deliveries (a matrix build queueing a hundred jobs at
// once) would mostly cancel each other and exhaust their retries. A delivery's shard
// comes from its key, so its total and processed counts land in the same item. Reading
// sums the shards; an hour with little traffic has only the few that were used. The
// shards of a day also live under counterPartitions partition keys, not one: sort keys
// alone do not spread the write load over DynamoDB's partitions (shards.go).
const counterShards = 16

// shardOf picks the counter shard of a delivery: FNV-1a of its key.
func shardOf(k delivery.Key) int {
	h := fnv.New32a()
	h.Write([]byte(k.HookID))
	h.Write([]byte{0})
	h.Write([]byte(k.DeliveryID))
	return int(h.Sum32() % counterShards)
}

// HourlyCounts reads the counter items of the hours that start in [from, to): one Query
// per counter partition of each UTC day, each bounded to the day's hours in range by its
// sort key.
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

// dayCounts queries the counter partitions of one UTC day, at once, for hours
// firstHour..lastHour (inclusive) and sums the shards of each counter, in hour then
// event order. Sort keys are "<hh>#<event>#<shard>": every key of hour hh sorts between
// "hh#" and "hh$", as '$' follows '#', and a counter's shards in one partition are
// adjacent.
func (s *Store) dayCounts(ctx context.Context, day time.Time, firstHour, lastHour int) ([]delivery.HourlyCount, error) {
	parts, err := readShards(counterPartitions, false, counterOrder, func(partition int) ([]delivery.HourlyCount, error) {
		return s.partitionCounts(ctx, day, partition, firstHour, lastHour)
	})
	if err != nil {
		return nil, fmt.Errorf("read counters of %s: %w", day.Format(dayLayout), err)
	}
	var counts []delivery.HourlyCount
	for _, c := range parts {
		counts = addCount(counts, c)
	}
	return counts, nil
}

// counterOrder sorts counts by hour, then event ("hh#event", as their sort keys).
func counterOrder(c delivery.HourlyCount) string {
	return fmt.Sprintf("%02d#%s", c.Hour.UTC().Hour(), c.Event)
}

// addCount adds c to counts, into the last count if that is of the same hour and event.
func addCount(counts []delivery.HourlyCount, c delivery.HourlyCount) []delivery.HourlyCount {
	if n := len(counts); n > 0 && counts[n-1].Hour.Equal(c.Hour) && counts[n-1].Event == c.Event {
		counts[n-1].Total += c.Total
		counts[n-1].Processed += c.Processed
		counts[n-1].Errors += c.Errors
		return counts
	}
	return append(counts, c)
}

// partitionCounts queries one counter partition of day for hours firstHour..lastHour
// and sums the shards of each counter it holds.
func (s *Store) partitionCounts(ctx context.Context, day time.Time, partition, firstHour, lastHour int) ([]delivery.HourlyCount, error) {
	var counts []delivery.HourlyCount
	err := s.query(ctx, s.hoursQuery(countersPK(day, partition), firstHour, lastHour), 0, func(item map[string]types.AttributeValue) error {
		c, err := hourlyCount(day, item)
		counts = addCount(counts, c)
		return err
	})
	return counts, err
}

// hoursQuery is the consistent Query of counter partition pk for the hours firstHour to
// lastHour of its day: the sort keys of both kinds of counter items start "<hh>#".
func (s *Store) hoursQuery(pk string, firstHour, lastHour int) *dynamodb.QueryInput {
	return &dynamodb.QueryInput{
		TableName:                &s.table,
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": stringValue(pk),
			":lo": stringValue(fmt.Sprintf("%02d#", firstHour)),
			":hi": stringValue(fmt.Sprintf("%02d$", lastHour)),
		},
		ConsistentRead: aws.Bool(true),
	}
}

func hourlyCount(day time.Time, item map[string]types.AttributeValue) (delivery.HourlyCount, error) {
	sk := stringAttr(item, attrSK)
	hh, event, ok := strings.Cut(sk, "#")
	event, _, _ = strings.Cut(event, "#") // the shard (event names have no '#')
	hour, err := strconv.Atoi(hh)
	if !ok || err != nil {
		return delivery.HourlyCount{}, fmt.Errorf("counter item with sort key %q", sk)
	}
	tally, err := decodeCounter(item)
	if err != nil {
		return delivery.HourlyCount{}, fmt.Errorf("counter item %s: %w", sk, err)
	}
	return delivery.HourlyCount{
		Hour:      day.Add(time.Duration(hour) * time.Hour),
		Event:     event,
		Total:     tally.Total,
		Processed: tally.Processed,
		Errors:    tally.Errors,
	}, nil
}

// CountError adds one to the errors counter of event's hour (one UpdateItem), in a shard
// of its own choosing: it is no part of a transaction that must find it again.
func (s *Store) CountError(ctx context.Context, event string, receivedAt time.Time) error {
	u := s.counterUpdate(event, receivedAt, rand.IntN(counterShards), attrErrors)
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

// counterUpdate adds one to each of counters in the given shard of the counter item of
// event and the hour receivedAt falls in, creating the item if needed. ADD makes concurrent increments
// commute; what keeps an increment from being applied twice is the write it is part of
// (a conditional transaction), not the counter.
//
// The item expires with the deliveries it counts, retention after its hour.
func (s *Store) counterUpdate(event string, receivedAt time.Time, shard int, counters ...string) *types.Update {
	hour := delivery.Hour(receivedAt)
	names := map[string]string{"#expiresAt": attrExpiresAt}
	adds := make([]string, len(counters))
	for i, c := range counters {
		names["#"+c] = c
		adds[i] = "#" + c + " :one"
	}
	return &types.Update{
		TableName:                &s.table,
		Key:                      counterKey(hour, event, shard),
		UpdateExpression:         aws.String("ADD " + strings.Join(adds, ", ") + " SET #expiresAt = if_not_exists(#expiresAt, :expiresAt)"),
		ExpressionAttributeNames: names,
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":one":       numberValue(1),
			":expiresAt": numberValue(hour.Add(s.retention).Unix()),
		},
	}
}

func counterKey(hour time.Time, event string, shard int) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: stringValue(countersPK(hour, shard%counterPartitions)),
		attrSK: stringValue(fmt.Sprintf("%02d#%s#%02d", hour.Hour(), event, shard)),
	}
}

// countersPK is the partition of the counter items of t's UTC day in partition (see
// counterPartitions).
func countersPK(t time.Time, partition int) string {
	return shardKey("COUNTERS#"+t.UTC().Format(dayLayout), partition)
}

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

// ---------------------------------------------------------------------------- job counters

var _ jobs.Counters = (*Store)(nil)

// Job counter items are "JOBCOUNTS#<day>#<shard % counterPartitions>" / "<hh>#<shard>",
// sharded by job id as the delivery counters are by delivery (and over as many partition
// keys, for the same reason: every job that starts or completes writes one), with one number attribute per queue-time bucket
// ("q00"…) and per conclusion ("c_success"…).
const (
	queueTimePrefix  = "q"
	conclusionPrefix = "c_"
)

func jobCountsPK(t time.Time, partition int) string {
	return shardKey("JOBCOUNTS#"+t.UTC().Format(dayLayout), partition)
}

func jobCountKey(hour time.Time, shard int) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: stringValue(jobCountsPK(hour, shard%counterPartitions)),
		attrSK: stringValue(fmt.Sprintf("%02d#%02d", hour.Hour(), shard)),
	}
}

// jobCountItems turns a Change's queue times and conclusions into one ADD per counter
// item: a transaction may not touch an item twice, and a job that started and completed
// in the same hour counts twice in the same item.
func (s *Store) jobCountItems(c *jobs.Change) []types.TransactWriteItem {
	type itemKey struct {
		hour  time.Time
		shard int
	}
	adds := map[itemKey][]string{}
	var order []itemKey
	add := func(jobID int64, at time.Time, attr string) {
		k := itemKey{delivery.Hour(at), int(uint64(jobID) % counterShards)}
		if _, ok := adds[k]; !ok {
			order = append(order, k)
		}
		adds[k] = append(adds[k], attr)
	}
	for _, q := range c.QueueTimes {
		add(q.JobID, q.StartedAt, fmt.Sprintf("%s%02d", queueTimePrefix, jobs.QueueTimeBucket(q.Wait)))
	}
	for _, d := range c.Conclusions {
		add(d.JobID, d.CompletedAt, conclusionPrefix+d.Conclusion)
	}
	items := make([]types.TransactWriteItem, 0, len(order))
	for _, k := range order {
		names := map[string]string{"#expiresAt": attrExpiresAt}
		values := map[string]types.AttributeValue{":expiresAt": numberValue(k.hour.Add(s.retention).Unix())}
		counts := map[string]int64{}
		for _, attr := range adds[k] {
			counts[attr]++
		}
		var exprs []string
		for i, attr := range slices.Sorted(maps.Keys(counts)) {
			names[fmt.Sprintf("#a%d", i)] = attr
			values[fmt.Sprintf(":n%d", i)] = numberValue(counts[attr])
			exprs = append(exprs, fmt.Sprintf("#a%d :n%d", i, i))
		}
		items = append(items, types.TransactWriteItem{Update: &types.Update{
			TableName:                 &s.table,
			Key:                       jobCountKey(k.hour, k.shard),
			UpdateExpression:          aws.String("ADD " + strings.Join(exprs, ", ") + " SET #expiresAt = if_not_exists(#expiresAt, :expiresAt)"),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: values,
		}})
	}
	return items
}

// HourlyJobCounts reads the job counter items of the hours that start in [from, to):
// one Query per counter partition of each UTC day, at once, summing each hour's shards.
func (s *Store) HourlyJobCounts(ctx context.Context, from, to time.Time) ([]jobs.HourlyJobCount, error) {
	first := delivery.Hour(from)
	if first.Before(from) {
		first = first.Add(time.Hour)
	}
	var counts []jobs.HourlyJobCount
	for day := first.Truncate(24 * time.Hour); day.Before(to); day = day.Add(24 * time.Hour) {
		lo, hi := maxTime(first, day), minTime(to, day.Add(24*time.Hour))
		if !lo.Before(hi) {
			continue
		}
		// Sort keys "<hh>#<shard>": merged by sort key, each hour's items are adjacent.
		items, err := readShards(counterPartitions, false, func(item map[string]types.AttributeValue) string {
			return stringAttr(item, attrSK)
		}, func(partition int) ([]map[string]types.AttributeValue, error) {
			in := s.hoursQuery(jobCountsPK(day, partition), lo.Hour(), delivery.Hour(hi.Add(-time.Nanosecond)).Hour())
			var items []map[string]types.AttributeValue
			err := s.query(ctx, in, 0, func(item map[string]types.AttributeValue) error {
				items = append(items, item)
				return nil
			})
			return items, err
		})
		if err != nil {
			return nil, fmt.Errorf("read job counters of %s: %w", day.Format(dayLayout), err)
		}
		for _, item := range items {
			hh, _, _ := strings.Cut(stringAttr(item, attrSK), "#")
			h, err := strconv.Atoi(hh)
			if err != nil {
				return nil, fmt.Errorf("read job counters of %s: job counter item with sort key %q", day.Format(dayLayout), stringAttr(item, attrSK))
			}
			hour := day.Add(time.Duration(h) * time.Hour)
			if n := len(counts); n == 0 || !counts[n-1].Hour.Equal(hour) {
				counts = append(counts, jobs.HourlyJobCount{Hour: hour})
			}
			if err := addJobCounts(&counts[len(counts)-1], item); err != nil {
				return nil, fmt.Errorf("read job counters of %s: %w", day.Format(dayLayout), err)
			}
		}
	}
	return counts, nil
}

// addJobCounts adds one job counter item's numbers to c.
func addJobCounts(c *jobs.HourlyJobCount, item map[string]types.AttributeValue) error {
	number := func(name string, v types.AttributeValue) (int64, error) {
		var n int64
		if err := itemDecoder.Decode(v, &n); err != nil {
			return 0, fmt.Errorf("job counter attribute %s: %w", name, err)
		}
		return n, nil
	}
	for name, v := range item {
		switch {
		case strings.HasPrefix(name, conclusionPrefix):
			n, err := number(name, v)
			if err != nil {
				return err
			}
			if c.Conclusions == nil {
				c.Conclusions = map[string]int64{}
			}
			c.Conclusions[strings.TrimPrefix(name, conclusionPrefix)] += n
		case strings.HasPrefix(name, queueTimePrefix) && len(name) == len(queueTimePrefix)+2:
			b, err := strconv.Atoi(name[len(queueTimePrefix):])
			if err != nil || b >= jobs.QueueTimeBuckets {
				continue // not a bucket of this histogram
			}
			n, err := number(name, v)
			if err != nil {
				return err
			}
			c.QueueTimes[b] += n
		}
	}
	return nil
}
