package awsstore

import (
	"errors"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Write sharding of the partition keys every delivery or every runner change writes.
//
// DynamoDB serves at most 1,000 write units a second to one partition key (of the table
// or of a GSI), and sort keys do not spread that load: what counts is the partition key.
// At an enterprise's peak of 400 deliveries a second (issue 14, README "DynamoDB at
// enterprise scale"), one key per day for the hourly counters or for the day's deliveries
// in the byTime index would take 1,600 and 1,700 write units a second. Each is therefore
// spread over a fixed number of partition keys, "<base>#<shard>", and every read of it
// queries all of them at once and merges (counters: sums) what they return.
const (
	// counterPartitions: COUNTERS#<day>#<shard % counterPartitions>. The counterShards
	// items of one counter are spread over these partitions.
	counterPartitions = 8
	// deliveryShards: byTime DELIVERIES#<day>#<shard % deliveryShards>, a delivery's
	// shard being its counter shard (shardOf).
	deliveryShards = 8
	// runnerShards: byAttr RUNNERS#<FNV-1a of the runner's pool % runnerShards>. By pool,
	// so that a pool's listing reads one partition: the busiest pool's runners share one
	// key (at the enterprise's peak, a pool with 70 % of the jobs: ~230 WCU/s).
	runnerShards = 4
)

func shardKey(base string, shard int) string { return base + "#" + strconv.Itoa(shard) }

// hashShard picks one of n shards for s: FNV-1a.
func hashShard(s string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(s))
	return int(h.Sum32() % uint32(n))
}

// readShards calls read for each of n shards at once and returns what they read, merged
// in sort key order (key; desc: largest first).
func readShards[T any](n int, desc bool, key func(T) string, read func(shard int) ([]T, error)) ([]T, error) {
	got := make([][]T, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for shard := range n {
		wg.Go(func() { got[shard], errs[shard] = read(shard) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	merged := slices.Concat(got...)
	slices.SortStableFunc(merged, func(a, b T) int {
		if desc {
			return strings.Compare(key(b), key(a))
		}
		return strings.Compare(key(a), key(b))
	})
	return merged, nil
}
