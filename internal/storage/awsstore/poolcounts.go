package awsstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/runnerhub/webhooks/internal/jobs"
)

// Pool counts (jobs.PoolCounts) are poolCountShards items per pool, updated with ADD in
// the transaction of the Change they count:
//
//	pk  POOLCOUNTS#<pool>#<shard>   sk COUNTS
//	idle, reserved, busy, starting, pending   numbers, summed over the shards
//
// In a busy pool nearly every delivery changes its counts (queued, in_progress and
// completed each move a job or a runner), so one item per pool would be a hot key: at
// the enterprise's peak the default pool's counts change ~240 times a second, each a
// transactional write of 2 WCU. Each Commit adds to one shard chosen at random, and a
// read sums them all (PoolCounts: one BatchGetItem for up to 100 items, whatever the
// number of runners and jobs). A transaction that touches a shard another one has in
// flight is cancelled and retried (transact), so spreading also keeps those rare.
const (
	poolCountShards  = 8
	poolCountsPrefix = "POOLCOUNTS#"
	poolCountsSK     = "COUNTS"
)

// Attributes of a pool count item, with how to reach the field of a jobs.PoolCounts.
var poolCountAttrs = []struct {
	name  string
	field func(*jobs.PoolCounts) *int64
}{
	{"idle", func(c *jobs.PoolCounts) *int64 { return &c.Idle }},
	{"reserved", func(c *jobs.PoolCounts) *int64 { return &c.Reserved }},
	{"busy", func(c *jobs.PoolCounts) *int64 { return &c.Busy }},
	{"starting", func(c *jobs.PoolCounts) *int64 { return &c.Starting }},
	{"pending", func(c *jobs.PoolCounts) *int64 { return &c.Pending }},
}

func poolCountKey(pool string, shard int) map[string]types.AttributeValue {
	return entityKey(shardKey(poolCountsPrefix+pool, shard), poolCountsSK)
}

// poolCountItems turns a Change's counts into one ADD per pool, each to a shard of the
// pool's counts chosen at random.
func (s *Store) poolCountItems(c *jobs.Change) []types.TransactWriteItem {
	items := make([]types.TransactWriteItem, 0, len(c.Counts))
	for _, d := range c.Counts {
		names := map[string]string{}
		values := map[string]types.AttributeValue{}
		var adds []string
		for i, a := range poolCountAttrs {
			n := *a.field(&d)
			if n == 0 {
				continue
			}
			names["#c"+strconv.Itoa(i)] = a.name
			values[":c"+strconv.Itoa(i)] = numberValue(n)
			adds = append(adds, fmt.Sprintf("#c%d :c%d", i, i))
		}
		if len(adds) == 0 {
			continue
		}
		items = append(items, types.TransactWriteItem{Update: &types.Update{
			TableName:                 &s.table,
			Key:                       poolCountKey(d.Pool, rand.IntN(poolCountShards)),
			UpdateExpression:          aws.String("ADD " + strings.Join(adds, ", ")),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: values,
		}})
	}
	return items
}

// maxBatchGet is DynamoDB's limit on the keys of one BatchGetItem.
const maxBatchGet = 100

// PoolCounts implements jobs.Store: it reads every shard of every pool's counts with
// strongly consistent BatchGetItems (one per 100 shards: one for up to 12 pools) and sums
// them.
func (s *Store) PoolCounts(ctx context.Context, pools []string) ([]jobs.PoolCounts, error) {
	out := make([]jobs.PoolCounts, len(pools))
	index := map[string]int{}
	var keys []map[string]types.AttributeValue
	for i, pool := range pools {
		out[i].Pool = pool
		index[pool] = i
		for shard := range poolCountShards {
			keys = append(keys, poolCountKey(pool, shard))
		}
	}
	for len(keys) > 0 {
		n := min(len(keys), maxBatchGet)
		items, err := s.batchGet(ctx, keys[:n])
		if err != nil {
			return nil, fmt.Errorf("read pool counts: %w", err)
		}
		keys = keys[n:]
		for _, item := range items {
			pool, _ := strings.CutPrefix(stringAttr(item, attrPK), poolCountsPrefix)
			pool = pool[:strings.LastIndexByte(pool, '#')]
			i, ok := index[pool]
			if !ok {
				return nil, fmt.Errorf("read pool counts: item %s of no pool asked for", stringAttr(item, attrPK))
			}
			for _, a := range poolCountAttrs {
				var v int64
				if raw, ok := item[a.name]; ok {
					if err := itemDecoder.Decode(raw, &v); err != nil {
						return nil, fmt.Errorf("read pool counts of %s: attribute %s: %w", pool, a.name, err)
					}
				}
				*a.field(&out[i]) += v
			}
		}
	}
	return out, nil
}

// batchGet reads keys (at most maxBatchGet) with strongly consistent reads, asking again
// for those DynamoDB left unprocessed (it may, under throttling), a few times.
func (s *Store) batchGet(ctx context.Context, keys []map[string]types.AttributeValue) ([]map[string]types.AttributeValue, error) {
	var items []map[string]types.AttributeValue
	request := map[string]types.KeysAndAttributes{s.table: {Keys: keys, ConsistentRead: aws.Bool(true)}}
	err := retry(ctx, func() error {
		out, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: request})
		if err != nil {
			return err
		}
		items = append(items, out.Responses[s.table]...)
		if len(out.UnprocessedKeys) == 0 {
			return nil
		}
		request = out.UnprocessedKeys
		return unprocessedError(len(request[s.table].Keys))
	}, isUnprocessed)
	if err != nil {
		return nil, err
	}
	return items, nil
}

// unprocessedError counts the keys a BatchGetItem left unprocessed.
type unprocessedError int

func (n unprocessedError) Error() string { return fmt.Sprintf("%d keys still unprocessed", int(n)) }

func isUnprocessed(err error) bool {
	var u unprocessedError
	return errors.As(err, &u)
}

// SetPoolCounts replaces the counts of each pool with the given ones (jobs.Engine.Recount),
// one TransactWriteItems per pool putting every shard (the counts in shard 0, nothing in
// the others). It is the rebuild of a table written before the counts existed: run it
// once, while nothing else writes (no processing, no API), or a change committed
// between the recount and this write would be lost from the counts.
func (s *Store) SetPoolCounts(ctx context.Context, counts []jobs.PoolCounts) error {
	for _, c := range counts {
		items := make([]types.TransactWriteItem, poolCountShards)
		for shard := range poolCountShards {
			item := poolCountKey(c.Pool, shard)
			if shard == 0 {
				for _, a := range poolCountAttrs {
					item[a.name] = numberValue(*a.field(&c))
				}
			}
			items[shard] = types.TransactWriteItem{Put: &types.Put{TableName: &s.table, Item: item}}
		}
		if err := s.transact(ctx, items); err != nil {
			return fmt.Errorf("set counts of pool %s: %w", c.Pool, err)
		}
	}
	return nil
}
