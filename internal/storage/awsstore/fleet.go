package awsstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/runnerhub/webhooks/internal/jobs"
)

// The listings (jobs.ListIndex) live in three more overloaded, sparse GSIs, projection
// ALL, so that a page is one Query per partition it merges and no read of the table:
//
//	byAttr  gsi2pk JOBS#STATUS#<status>              gsi2sk <ListKey>   every job with a status
//	        gsi2pk RUNNERS#<shard>                   gsi2sk <pool>#<name> every runner
//	byRepo  gsi3pk JOBS#REPO#<owner/name>#<status>   gsi3sk <ListKey>
//	byPool  gsi4pk JOBS#POOL#<pool>#<status>         gsi4sk <ListKey>   jobs with a pool
//
// A job is in one partition of each, that of its status, so a status filter is a
// partition and no filter merges the four status partitions (see jobs.ListJobsIndexed);
// a Put replaces the whole item, so a job that changes status moves partitions. The
// pending queue (jobs.IndexPending) is byTime's PENDING#<pool> partition. Every runner
// change writes the runners' partition, so it is spread over runnerShards partition
// keys by pool (a pool's listing stays one Query; the whole listing merges them all,
// shards.go).
const (
	attrGSI2PK  = "gsi2pk"
	attrGSI2SK  = "gsi2sk"
	attrGSI3PK  = "gsi3pk"
	attrGSI3SK  = "gsi3sk"
	attrGSI4PK  = "gsi4pk"
	attrGSI4SK  = "gsi4sk"
	indexByAttr = "byAttr"
	indexByRepo = "byRepo"
	indexByPool = "byPool"
)

// gsi is where an index lives in the table: a GSI, its key attributes, and the prefix
// that sets its partitions apart from the other entities' in that GSI.
type gsi struct {
	name, pk, sk, prefix string
}

var listGSIs = map[jobs.ListIndex]gsi{
	jobs.IndexJobsByStatus:     {indexByAttr, attrGSI2PK, attrGSI2SK, "JOBS#STATUS#"},
	jobs.IndexJobsByRepository: {indexByRepo, attrGSI3PK, attrGSI3SK, "JOBS#REPO#"},
	jobs.IndexJobsByPool:       {indexByPool, attrGSI4PK, attrGSI4SK, "JOBS#POOL#"},
	jobs.IndexPending:          {indexByTime, attrGSI1PK, attrGSI1SK, pendingPrefix},
	jobs.IndexRunners:          {indexByAttr, attrGSI2PK, attrGSI2SK, "RUNNERS"},
}

// setListEntries puts an entity's listing entries into its item.
func setListEntries(item map[string]types.AttributeValue, entries ...jobs.IndexEntry) {
	for _, e := range entries {
		g := listGSIs[e.Index]
		partition := g.prefix + e.Partition
		if e.Index == jobs.IndexRunners {
			pool, _, _ := strings.Cut(e.Key, "#") // ListKey: <pool>#<name>
			partition = shardKey(partition, runnerShard(pool))
		}
		item[g.pk] = stringValue(partition)
		item[g.sk] = stringValue(e.Key)
	}
}

// ListJobs implements jobs.Store: one Query per partition a page merges (see
// jobs.ListJobsIndexed), each of at most Limit+1 items.
func (s *Store) ListJobs(ctx context.Context, f jobs.JobFilter) ([]*jobs.Job, string, error) {
	return jobs.ListJobsIndexed(ctx, f, func(ctx context.Context, ix jobs.ListIndex, partition, after string, n int) ([]*jobs.Job, error) {
		return queryRange(ctx, s, listGSIs[ix], partition, after, ix.Descending(), n, string(ix)+" "+partition, decodeJob)
	})
}

// ListRunners implements jobs.Store: one Query of at most limit+1 items of the pool's
// runner shard, or without a pool, of each shard at once, merged.
func (s *Store) ListRunners(ctx context.Context, pool, cursor string, limit int) ([]*jobs.Runner, string, error) {
	shards := []int{}
	if pool != "" {
		shards = append(shards, runnerShard(pool))
	} else {
		for shard := range runnerShards {
			shards = append(shards, shard)
		}
	}
	return jobs.ListRunnersIndexed(ctx, pool, cursor, limit, func(ctx context.Context, ix jobs.ListIndex, partition, after string, n int) ([]*jobs.Runner, error) {
		runners, err := readShards(len(shards), ix.Descending(), (*jobs.Runner).ListKey, func(i int) ([]*jobs.Runner, error) {
			return queryRange(ctx, s, listGSIs[ix], shardKey(partition, shards[i]), after, ix.Descending(), n, "runners", decodeRunner)
		})
		return runners[:min(len(runners), n)], err
	})
}

// runnerShard is the shard of the runners' partition that holds pool's runners.
func runnerShard(pool string) int { return hashShard(pool, runnerShards) }

// queryRange reads up to limit items of one partition of an index in sort key order
// (desc: from the largest down), starting after the sort key after ("" from the first).
// GSIs are eventually consistent: an item may be listed a moment after it changed.
func queryRange[T any](ctx context.Context, s *Store, g gsi, partition, after string, desc bool, limit int, what string, decode func(map[string]types.AttributeValue) (T, error)) ([]T, error) {
	if limit <= 0 {
		return nil, nil
	}
	in := &dynamodb.QueryInput{
		TableName:                 &s.table,
		IndexName:                 aws.String(g.name),
		KeyConditionExpression:    aws.String("#pk = :partition"),
		ExpressionAttributeNames:  map[string]string{"#pk": g.pk},
		ExpressionAttributeValues: map[string]types.AttributeValue{":partition": stringValue(g.prefix + partition)},
		ScanIndexForward:          aws.Bool(!desc),
	}
	if after != "" {
		op := " > "
		if desc {
			op = " < "
		}
		in.KeyConditionExpression = aws.String(*in.KeyConditionExpression + " AND #sk" + op + ":after")
		in.ExpressionAttributeNames["#sk"] = g.sk
		in.ExpressionAttributeValues[":after"] = stringValue(after)
	}
	var out []T
	err := s.query(ctx, in, limit, func(item map[string]types.AttributeValue) error {
		v, err := decode(item)
		out = append(out, v)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	return out, nil
}
