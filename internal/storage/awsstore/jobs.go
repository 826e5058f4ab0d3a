package awsstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/runnerhub/webhooks/internal/jobs"
)

var _ jobs.Store = (*Store)(nil)

// attrVersion is the optimistic-concurrency counter of the job domain's items, which
// Commit's conditions name.
const attrVersion = "version"

// Partition and sort keys of the job domain's items, and the prefixes of their sparse
// byTime index entries.
const (
	jobSK         = "JOB"
	runnerSK      = "RUNNER"
	runSK         = "RUN"
	profileSK     = "PROFILE"
	poolsPK       = "POOLS"
	poolSKPrefix  = "POOL#"
	pendingPrefix = "PENDING#"
	idlePrefix    = "IDLE#"
	indexByTime   = "byTime"
)

func jobKey(id int64) map[string]types.AttributeValue {
	return entityKey("JOB#"+strconv.FormatInt(id, 10), jobSK)
}

func runnerKey(name string) map[string]types.AttributeValue {
	return entityKey("RUNNER#"+name, runnerSK)
}

func runKey(id int64) map[string]types.AttributeValue {
	return entityKey("RUN#"+strconv.FormatInt(id, 10), runSK)
}

func profileKey(repository string) map[string]types.AttributeValue {
	return entityKey("REPO#"+repository, profileSK)
}

func poolKey(name string) map[string]types.AttributeValue {
	return entityKey(poolsPK, poolSKPrefix+name)
}

func entityKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: stringValue(pk), attrSK: stringValue(sk)}
}

// ---------------------------------------------------------------------------- reads

// Job reads a job (one strongly consistent GetItem).
func (s *Store) Job(ctx context.Context, id int64) (*jobs.Job, error) {
	return getEntity(ctx, s, jobKey(id), fmt.Sprintf("job %d", id), decodeJob)
}

// Runner reads a runner (one strongly consistent GetItem).
func (s *Store) Runner(ctx context.Context, name string) (*jobs.Runner, error) {
	return getEntity(ctx, s, runnerKey(name), "runner "+name, decodeRunner)
}

// Run reads a workflow run (one strongly consistent GetItem).
func (s *Store) Run(ctx context.Context, id int64) (*jobs.Run, error) {
	return getEntity(ctx, s, runKey(id), fmt.Sprintf("run %d", id), decodeRun)
}

// Gate reads a side of a pool's gate (one strongly consistent GetItem); the item holds
// only its key and version.
func (s *Store) Gate(ctx context.Context, pool string, side jobs.GateSide) (*jobs.Gate, error) {
	g, err := getEntity(ctx, s, gateKey(pool, side), "gate of pool "+pool, decodeGate)
	if errors.Is(err, jobs.ErrNotFound) {
		return &jobs.Gate{Pool: pool, Side: side}, nil
	}
	if err != nil {
		return nil, err
	}
	g.Pool, g.Side = pool, side // the item holds them only in its key
	return g, nil
}

// gateKey is the item of a side of a pool's gate. The capacity side keeps the key of
// the single gate before sides; the allocation sides have partitions of their own, as
// each takes a busy pool's allocation rate.
func gateKey(pool string, side jobs.GateSide) map[string]types.AttributeValue {
	if side == jobs.GateCapacity {
		return entityKey("GATE#"+pool, "GATE")
	}
	return entityKey("GATE#"+pool+"#"+string(side), "GATE")
}

// gateItems are a Change's gate actions: a versioned Put of each gate it writes, a
// ConditionCheck of each it only checks, and an Update that ADDs one to the version of
// each it bumps, on no condition, so that concurrent bumps commute.
func (s *Store) gateItems(c *jobs.Change) ([]types.TransactWriteItem, error) {
	items, err := versionedPuts(s, c.Gates, func(g *jobs.Gate) (map[string]types.AttributeValue, error) {
		return marshalItem(gateKey(g.Pool, g.Side), gateAttrs(*g))
	}, func(g *jobs.Gate) int64 { return g.Version })
	if err != nil {
		return nil, err
	}
	for _, g := range c.GateChecks {
		cond, names, values := versionCondition(g.Version)
		items = append(items, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName:                 &s.table,
			Key:                       gateKey(g.Pool, g.Side),
			ConditionExpression:       cond,
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: values,
		}})
	}
	for _, k := range c.GateBumps {
		items = append(items, types.TransactWriteItem{Update: &types.Update{
			TableName:                 &s.table,
			Key:                       gateKey(k.Pool, k.Side),
			UpdateExpression:          aws.String("ADD #version :one"),
			ExpressionAttributeNames:  map[string]string{"#version": attrVersion},
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": numberValue(1)},
		}})
	}
	return items, nil
}

// Profile reads a repository's profile (one strongly consistent GetItem).
func (s *Store) Profile(ctx context.Context, repository string) (*jobs.Profile, error) {
	return getEntity(ctx, s, profileKey(repository), "profile of "+repository, decodeProfile)
}

// IdleRunners queries the byTime index for the pool's idle runners, by name. The index is
// eventually consistent: a runner it lists may have just been taken, which the version
// check of the Commit that reserves it catches.
func (s *Store) IdleRunners(ctx context.Context, pool, after string, limit int) ([]*jobs.Runner, error) {
	return queryIndex(ctx, s, idlePrefix+pool, after, limit, "idle runners of pool "+pool, decodeRunner)
}

// PendingJobs queries the byTime index for the pool's pending jobs in queue order
// (eventually consistent, as IdleRunners).
func (s *Store) PendingJobs(ctx context.Context, pool, after string, limit int) ([]*jobs.Job, error) {
	return queryIndex(ctx, s, pendingPrefix+pool, after, limit, "pending jobs of pool "+pool, decodeJob)
}

// Pools queries the pools partition (strongly consistent), by name.
func (s *Store) Pools(ctx context.Context) ([]jobs.Pool, error) {
	in := &dynamodb.QueryInput{
		TableName:                &s.table,
		KeyConditionExpression:   aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":     stringValue(poolsPK),
			":prefix": stringValue(poolSKPrefix),
		},
		ConsistentRead: aws.Bool(true),
	}
	var pools []jobs.Pool
	err := s.query(ctx, in, 0, func(item map[string]types.AttributeValue) error {
		p, err := decodePool(item)
		pools = append(pools, p)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list pools: %w", err)
	}
	return pools, nil
}

// getEntity reads one item with a strongly consistent GetItem and decodes it.
func getEntity[T any](ctx context.Context, s *Store, key map[string]types.AttributeValue, what string, decode func(map[string]types.AttributeValue) (T, error)) (T, error) {
	var zero T
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return zero, fmt.Errorf("get %s: %w", what, err)
	}
	if len(out.Item) == 0 {
		return zero, fmt.Errorf("get %s: %w", what, jobs.ErrNotFound)
	}
	v, err := decode(out.Item)
	if err != nil {
		return zero, fmt.Errorf("decode %s: %w", what, err)
	}
	return v, nil
}

// queryIndex reads up to limit items of one byTime partition in sort key order, from the
// first whose sort key follows after.
func queryIndex[T any](ctx context.Context, s *Store, partition, after string, limit int, what string, decode func(map[string]types.AttributeValue) (T, error)) ([]T, error) {
	return queryRange(ctx, s, gsi{name: indexByTime, pk: attrGSI1PK, sk: attrGSI1SK}, partition, after, false, limit, what, decode)
}

// query runs in page by page, handing each item to each, until limit items (0: all) have
// been handed over or the result is exhausted.
func (s *Store) query(ctx context.Context, in *dynamodb.QueryInput, limit int, each func(map[string]types.AttributeValue) error) error {
	seen := 0
	for {
		if limit > 0 {
			in.Limit = aws.Int32(int32(min(limit-seen, math.MaxInt32)))
		}
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return err
		}
		for _, item := range out.Items {
			if err := each(item); err != nil {
				return err
			}
			seen++
		}
		if len(out.LastEvaluatedKey) == 0 || (limit > 0 && seen >= limit) {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// ---------------------------------------------------------------------------- pools

// PutPool creates or replaces a pool (one PutItem).
func (s *Store) PutPool(ctx context.Context, p jobs.Pool) error {
	item, err := marshalItem(poolKey(p.Name), poolAttrs(p))
	if err != nil {
		return fmt.Errorf("put pool %s: %w", p.Name, err)
	}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item}); err != nil {
		return fmt.Errorf("put pool %s: %w", p.Name, err)
	}
	return nil
}

// DeletePool deletes a pool (one conditional DeleteItem: an unknown pool is ErrNotFound).
func (s *Store) DeletePool(ctx context.Context, name string) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                &s.table,
		Key:                      poolKey(name),
		ConditionExpression:      aws.String("attribute_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK},
	})
	var missing *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &missing):
		return fmt.Errorf("delete pool %s: %w", name, jobs.ErrNotFound)
	case err != nil:
		return fmt.Errorf("delete pool %s: %w", name, err)
	}
	return nil
}

// ---------------------------------------------------------------------------- commit

// Commit writes a Change in one TransactWriteItems: a Put of every job, runner, run and
// profile, on condition that the stored version is the one the entity was read at (or
// that none is stored, for version 0), storing the next version; a Delete of every runner
// to delete on the same condition; the gate actions (gateItems); and the Finish (the delivery's final state, on
// condition that it is still received, and its processed count). Any failed condition
// cancels it all: ErrConflict, or ErrNotFound for a Finish of a delivery that was never
// recorded. The Change itself is left as it was: read again to see the new versions.
func (s *Store) Commit(ctx context.Context, c *jobs.Change) error {
	items, err := s.changeItems(c)
	if err != nil {
		return err
	}
	switch {
	case len(items) == 0:
		return nil
	case len(items) > maxTransactItems:
		return fmt.Errorf("commit: %d writes exceed DynamoDB's %d per transaction", len(items), maxTransactItems)
	}
	err = s.transact(ctx, items)
	if err == nil {
		return nil
	}
	if c.Finish != nil {
		// finishItems puts the delivery's update first of the last two actions.
		if failed, missing := finishFailed(err, len(items)-2); failed && missing {
			return fmt.Errorf("commit: finish delivery %s: %w", keyString(c.Finish.Key), jobs.ErrNotFound)
		}
	}
	if conflict(err) {
		return fmt.Errorf("commit: %w: %w", jobs.ErrConflict, err)
	}
	return fmt.Errorf("commit: %w", err)
}

// changeItems turns a Change into transaction actions.
func (s *Store) changeItems(c *jobs.Change) ([]types.TransactWriteItem, error) {
	jobItems, jobsErr := versionedPuts(s, c.Jobs, encodeJob, func(j *jobs.Job) int64 { return j.Version })
	runnerItems, runnersErr := versionedPuts(s, c.Runners, encodeRunner, func(r *jobs.Runner) int64 { return r.Version })
	runItems, runsErr := versionedPuts(s, c.Runs, func(r *jobs.Run) (map[string]types.AttributeValue, error) {
		return marshalItem(runKey(r.ID), runAttrs(*r))
	}, func(r *jobs.Run) int64 { return r.Version })
	profileItems, profilesErr := versionedPuts(s, c.Profiles, func(p *jobs.Profile) (map[string]types.AttributeValue, error) {
		return marshalItem(profileKey(p.Repository), profileAttrs(*p))
	}, func(p *jobs.Profile) int64 { return p.Version })
	gateItems, gatesErr := s.gateItems(c)
	if err := errors.Join(jobsErr, runnersErr, runsErr, profilesErr, gatesErr); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	items := slices.Concat(jobItems, runnerItems, runItems, profileItems, gateItems)
	for _, r := range c.DeleteRunners {
		// Deleting a runner that is not stored is a conflict too: it was read as stored.
		cond, names, values := matchVersion(r.Version)
		items = append(items, types.TransactWriteItem{Delete: &types.Delete{
			TableName:                 &s.table,
			Key:                       runnerKey(r.Name),
			ConditionExpression:       cond,
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: values,
		}})
	}
	items = append(items, s.poolCountItems(c)...)
	items = append(items, s.jobCountItems(c)...)
	// The Finish goes last: Commit finds a missing delivery by its place.
	if c.Finish != nil {
		items = append(items, s.finishItems(c.Finish)...)
	}
	return items, nil
}

// versionedPuts encodes each entity and puts it at its version+1 (see versionedPut).
func versionedPuts[E any](s *Store, entities []E, encode func(E) (map[string]types.AttributeValue, error), version func(E) int64) ([]types.TransactWriteItem, error) {
	items := make([]types.TransactWriteItem, 0, len(entities))
	for _, e := range entities {
		item, err := encode(e)
		if err != nil {
			return nil, err
		}
		items = append(items, s.versionedPut(item, version(e)))
	}
	return items, nil
}

// versionedPut puts item at version+1, on condition that it is stored at version.
func (s *Store) versionedPut(item map[string]types.AttributeValue, version int64) types.TransactWriteItem {
	item[attrVersion] = numberValue(version + 1)
	cond, names, values := versionCondition(version)
	return types.TransactWriteItem{Put: &types.Put{
		TableName:                 &s.table,
		Item:                      item,
		ConditionExpression:       cond,
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}}
}

// versionCondition holds if the item is stored at version, or, for version 0, is not
// stored at all.
func versionCondition(version int64) (*string, map[string]string, map[string]types.AttributeValue) {
	if version == 0 {
		return aws.String("attribute_not_exists(#pk)"), map[string]string{"#pk": attrPK}, nil
	}
	return matchVersion(version)
}

// matchVersion holds if the item is stored at version (never for a missing item).
func matchVersion(version int64) (*string, map[string]string, map[string]types.AttributeValue) {
	return aws.String("#version = :version"),
		map[string]string{"#version": attrVersion},
		map[string]types.AttributeValue{":version": numberValue(version)}
}

// ---------------------------------------------------------------------------- entities

// encodeJob also indexes a pending job in its pool's pending queue (byTime); a Put
// replaces the whole item, so a job that leaves pending leaves the queue.
func encodeJob(j *jobs.Job) (map[string]types.AttributeValue, error) {
	var pending string
	if j.Allocation == jobs.AllocationPending {
		if j.QueueKey == "" {
			return nil, fmt.Errorf("job %d is pending without a queue key", j.ID)
		}
		pending = pendingPrefix + j.Pool
	}
	return entityItem(jobKey(j.ID), jobAttrs(*j), pending, j.QueueKey, j.ListEntries()...)
}

// encodeRunner also indexes an idle runner among its pool's idle runners (byTime).
func encodeRunner(rn *jobs.Runner) (map[string]types.AttributeValue, error) {
	var idle string
	if rn.State == jobs.RunnerIdle {
		idle = idlePrefix + rn.Pool
	}
	return entityItem(runnerKey(rn.Name), runnerAttrs(*rn), idle, rn.Name, rn.ListEntry())
}

// entityItem is the item of an entity: its key, its attributes, its byTime entry
// (partition, sort key) when partition is not empty, and its listing entries.
func entityItem(key map[string]types.AttributeValue, attrs any, partition, sortKey string, entries ...jobs.IndexEntry) (map[string]types.AttributeValue, error) {
	item, err := marshalItem(key, attrs)
	if err != nil {
		return nil, err
	}
	if partition != "" {
		item[attrGSI1PK] = stringValue(partition)
		item[attrGSI1SK] = stringValue(sortKey)
	}
	setListEntries(item, entries...)
	return item, nil
}

func numberValue(n int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
