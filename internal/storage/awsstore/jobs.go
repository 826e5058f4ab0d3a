package awsstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/runnerhub/webhooks/internal/jobs"
)

var _ jobs.Store = (*Store)(nil)

// Attribute names of the job domain's items (those shared with deliveries, such as
// repository and event, are declared in store.go).
const (
	attrVersion        = "version"
	attrID             = "id"
	attrRunID          = "runId"
	attrName           = "name"
	attrLabels         = "labels"
	attrHeadSHA        = "headSha"
	attrHTMLURL        = "htmlUrl"
	attrStatus         = "status"
	attrConclusion     = "conclusion"
	attrPriority       = "priority"
	attrRunnerID       = "runnerId"
	attrRunnerName     = "runnerName"
	attrPool           = "pool"
	attrAllocation     = "allocation"
	attrReservedRunner = "reservedRunner"
	attrQueueKey       = "queueKey"
	attrCreatedAt      = "createdAt"
	attrQueuedAt       = "queuedAt"
	attrStartedAt      = "startedAt"
	attrCompletedAt    = "completedAt"
	attrUpdatedAt      = "updatedAt"
	attrDeliveries     = "deliveries"
	attrEphemeral      = "ephemeral"
	attrJobID          = "jobId"
	attrWorkflowName   = "workflowName"
	attrHeadBranch     = "headBranch"
	attrPoolUses       = "poolUses"
	attrMinIdle        = "minIdle"
	attrMaxRunners     = "maxRunners"
)

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

// Gate reads a pool's gate (one strongly consistent GetItem); the item holds only its
// key and version.
func (s *Store) Gate(ctx context.Context, pool string) (*jobs.Gate, error) {
	g, err := getEntity(ctx, s, gateKey(pool), "gate of pool "+pool, func(item map[string]types.AttributeValue) (*jobs.Gate, error) {
		r := itemReader{item: item}
		return &jobs.Gate{Pool: pool, Version: r.num(attrVersion)}, r.err
	})
	if errors.Is(err, jobs.ErrNotFound) {
		return &jobs.Gate{Pool: pool}, nil
	}
	return g, err
}

func gateKey(pool string) map[string]types.AttributeValue {
	return entityKey("GATE#"+pool, "GATE")
}

// Profile reads a repository's profile (one strongly consistent GetItem).
func (s *Store) Profile(ctx context.Context, repository string) (*jobs.Profile, error) {
	return getEntity(ctx, s, profileKey(repository), "profile of "+repository, decodeProfile)
}

// IdleRunners queries the byTime index for the pool's idle runners, by name. The index is
// eventually consistent: a runner it lists may have just been taken, which the version
// check of the Commit that reserves it catches.
func (s *Store) IdleRunners(ctx context.Context, pool string, limit int) ([]*jobs.Runner, error) {
	return queryIndex(ctx, s, idlePrefix+pool, limit, "idle runners of pool "+pool, decodeRunner)
}

// PendingJobs queries the byTime index for the pool's pending jobs in queue order
// (eventually consistent, as IdleRunners).
func (s *Store) PendingJobs(ctx context.Context, pool string, limit int) ([]*jobs.Job, error) {
	return queryIndex(ctx, s, pendingPrefix+pool, limit, "pending jobs of pool "+pool, decodeJob)
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

// queryIndex reads up to limit items of one byTime partition in sort key order.
func queryIndex[T any](ctx context.Context, s *Store, partition string, limit int, what string, decode func(map[string]types.AttributeValue) (T, error)) ([]T, error) {
	return queryRange(ctx, s, gsi{name: indexByTime, pk: attrGSI1PK, sk: attrGSI1SK}, partition, "", false, limit, what, decode)
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
	item := poolKey(p.Name)
	w := itemWriter(item)
	w.str(attrName, p.Name)
	w.strs(attrLabels, p.Labels)
	w.num(attrMinIdle, int64(p.MinIdle))
	w.num(attrMaxRunners, int64(p.MaxRunners))
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

func decodePool(item map[string]types.AttributeValue) (jobs.Pool, error) {
	r := itemReader{item: item}
	p := jobs.Pool{
		Name:       r.str(attrName),
		Labels:     r.strs(attrLabels),
		MinIdle:    int(r.num(attrMinIdle)),
		MaxRunners: int(r.num(attrMaxRunners)),
	}
	return p, r.err
}

// ---------------------------------------------------------------------------- commit

// Commit writes a Change in one TransactWriteItems: a Put of every job, runner, run and
// profile, on condition that the stored version is the one the entity was read at (or
// that none is stored, for version 0), storing the next version; a Delete of every runner
// to delete on the same condition; and the Finish (the delivery's final state, on
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
	var items []types.TransactWriteItem
	for _, j := range c.Jobs {
		item, err := encodeJob(j)
		if err != nil {
			return nil, err
		}
		items = append(items, s.versionedPut(item, j.Version))
	}
	for _, r := range c.Runners {
		items = append(items, s.versionedPut(encodeRunner(r), r.Version))
	}
	for _, r := range c.Runs {
		items = append(items, s.versionedPut(encodeRun(r), r.Version))
	}
	for _, p := range c.Profiles {
		items = append(items, s.versionedPut(encodeProfile(p), p.Version))
	}
	for _, g := range c.Gates {
		items = append(items, s.versionedPut(gateKey(g.Pool), g.Version))
	}
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
	if c.Finish != nil {
		items = append(items, s.finishItems(c.Finish)...)
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

// Entities are items with one attribute per field. Zero values are left out and absent
// attributes read back as zero, as for deliveries. Times are stored as deliveries' are
// (RFC 3339, UTC, milliseconds).

// encodeJob also indexes a pending job in its pool's pending queue (byTime); a Put
// replaces the whole item, so a job that leaves pending leaves the queue.
func encodeJob(j *jobs.Job) (map[string]types.AttributeValue, error) {
	item := jobKey(j.ID)
	if j.Allocation == jobs.AllocationPending {
		if j.QueueKey == "" {
			return nil, fmt.Errorf("commit: job %d is pending without a queue key", j.ID)
		}
		item[attrGSI1PK] = stringValue(pendingPrefix + j.Pool)
		item[attrGSI1SK] = stringValue(j.QueueKey)
	}
	setListEntries(item, j.ListEntries()...)
	w := itemWriter(item)
	w.num(attrID, j.ID)
	w.num(attrRunID, j.RunID)
	w.str(attrRepository, j.Repository)
	w.str(attrName, j.Name)
	w.strs(attrLabels, j.Labels)
	w.str(attrHeadSHA, j.HeadSHA)
	w.str(attrHTMLURL, j.HTMLURL)
	w.str(attrStatus, string(j.Status))
	w.str(attrConclusion, j.Conclusion)
	w.num(attrPriority, int64(j.Priority))
	w.num(attrRunnerID, j.RunnerID)
	w.str(attrRunnerName, j.RunnerName)
	w.str(attrPool, j.Pool)
	w.str(attrAllocation, string(j.Allocation))
	w.str(attrReservedRunner, j.ReservedRunner)
	w.str(attrQueueKey, j.QueueKey)
	w.time(attrCreatedAt, j.CreatedAt)
	w.time(attrQueuedAt, j.QueuedAt)
	w.time(attrStartedAt, j.StartedAt)
	w.time(attrCompletedAt, j.CompletedAt)
	w.strs(attrDeliveries, j.Deliveries)
	return item, nil
}

func decodeJob(item map[string]types.AttributeValue) (*jobs.Job, error) {
	r := itemReader{item: item}
	j := &jobs.Job{
		ID:             r.num(attrID),
		RunID:          r.num(attrRunID),
		Repository:     r.str(attrRepository),
		Name:           r.str(attrName),
		Labels:         r.strs(attrLabels),
		HeadSHA:        r.str(attrHeadSHA),
		HTMLURL:        r.str(attrHTMLURL),
		Status:         jobs.Status(r.str(attrStatus)),
		Conclusion:     r.str(attrConclusion),
		Priority:       int(r.num(attrPriority)),
		RunnerID:       r.num(attrRunnerID),
		RunnerName:     r.str(attrRunnerName),
		Pool:           r.str(attrPool),
		Allocation:     jobs.Allocation(r.str(attrAllocation)),
		ReservedRunner: r.str(attrReservedRunner),
		QueueKey:       r.str(attrQueueKey),
		CreatedAt:      r.time(attrCreatedAt),
		QueuedAt:       r.time(attrQueuedAt),
		StartedAt:      r.time(attrStartedAt),
		CompletedAt:    r.time(attrCompletedAt),
		Deliveries:     r.strs(attrDeliveries),
		Version:        r.num(attrVersion),
	}
	return j, r.err
}

// encodeRunner also indexes an idle runner among its pool's idle runners (byTime).
func encodeRunner(rn *jobs.Runner) map[string]types.AttributeValue {
	item := runnerKey(rn.Name)
	if rn.State == jobs.RunnerIdle {
		item[attrGSI1PK] = stringValue(idlePrefix + rn.Pool)
		item[attrGSI1SK] = stringValue(rn.Name)
	}
	setListEntries(item, rn.ListEntry())
	w := itemWriter(item)
	w.str(attrName, rn.Name)
	w.str(attrPool, rn.Pool)
	w.strs(attrLabels, rn.Labels)
	w.flag(attrEphemeral, rn.Ephemeral)
	w.str(attrState, string(rn.State))
	w.num(attrJobID, rn.JobID)
	w.time(attrUpdatedAt, rn.UpdatedAt)
	w.time(attrLastSeen, rn.LastSeen)
	return item
}

func decodeRunner(item map[string]types.AttributeValue) (*jobs.Runner, error) {
	r := itemReader{item: item}
	rn := &jobs.Runner{
		Name:      r.str(attrName),
		Pool:      r.str(attrPool),
		Labels:    r.strs(attrLabels),
		Ephemeral: r.flag(attrEphemeral),
		State:     jobs.RunnerState(r.str(attrState)),
		JobID:     r.num(attrJobID),
		UpdatedAt: r.time(attrUpdatedAt),
		LastSeen:  r.time(attrLastSeen),
		Version:   r.num(attrVersion),
	}
	return rn, r.err
}

func encodeRun(run *jobs.Run) map[string]types.AttributeValue {
	item := runKey(run.ID)
	w := itemWriter(item)
	w.num(attrID, run.ID)
	w.str(attrRepository, run.Repository)
	w.str(attrWorkflowName, run.WorkflowName)
	w.str(attrHeadBranch, run.HeadBranch)
	w.str(attrHeadSHA, run.HeadSHA)
	w.str(attrEvent, run.Event)
	w.str(attrStatus, run.Status)
	w.str(attrConclusion, run.Conclusion)
	w.time(attrCreatedAt, run.CreatedAt)
	w.time(attrUpdatedAt, run.UpdatedAt)
	return item
}

func decodeRun(item map[string]types.AttributeValue) (*jobs.Run, error) {
	r := itemReader{item: item}
	run := &jobs.Run{
		ID:           r.num(attrID),
		Repository:   r.str(attrRepository),
		WorkflowName: r.str(attrWorkflowName),
		HeadBranch:   r.str(attrHeadBranch),
		HeadSHA:      r.str(attrHeadSHA),
		Event:        r.str(attrEvent),
		Status:       r.str(attrStatus),
		Conclusion:   r.str(attrConclusion),
		CreatedAt:    r.time(attrCreatedAt),
		UpdatedAt:    r.time(attrUpdatedAt),
		Version:      r.num(attrVersion),
	}
	return run, r.err
}

func encodeProfile(p *jobs.Profile) map[string]types.AttributeValue {
	item := profileKey(p.Repository)
	w := itemWriter(item)
	w.str(attrRepository, p.Repository)
	if len(p.PoolUses) > 0 {
		uses := make(map[string]types.AttributeValue, len(p.PoolUses))
		for pool, n := range p.PoolUses {
			uses[pool] = numberValue(int64(n))
		}
		item[attrPoolUses] = &types.AttributeValueMemberM{Value: uses}
	}
	return item
}

func decodeProfile(item map[string]types.AttributeValue) (*jobs.Profile, error) {
	r := itemReader{item: item}
	p := &jobs.Profile{Repository: r.str(attrRepository), Version: r.num(attrVersion)}
	if m, ok := item[attrPoolUses].(*types.AttributeValueMemberM); ok {
		p.PoolUses = make(map[string]int, len(m.Value))
		for pool, v := range m.Value {
			p.PoolUses[pool] = int(r.number(attrPoolUses+"."+pool, v))
		}
	}
	return p, r.err
}

// ---------------------------------------------------------------------------- attributes

// itemWriter sets an item's attributes, leaving zero values out.
type itemWriter map[string]types.AttributeValue

func (w itemWriter) str(name, v string) {
	if v != "" {
		w[name] = stringValue(v)
	}
}

func (w itemWriter) num(name string, v int64) {
	if v != 0 {
		w[name] = numberValue(v)
	}
}

func (w itemWriter) flag(name string, v bool) {
	if v {
		w[name] = &types.AttributeValueMemberBOOL{Value: true}
	}
}

func (w itemWriter) time(name string, t time.Time) {
	if !t.IsZero() {
		w[name] = stringValue(formatTime(t))
	}
}

// strs stores a list (not a string set, which would lose order and duplicates).
func (w itemWriter) strs(name string, v []string) {
	if len(v) == 0 {
		return
	}
	list := make([]types.AttributeValue, len(v))
	for i, s := range v {
		list[i] = stringValue(s)
	}
	w[name] = &types.AttributeValueMemberL{Value: list}
}

// itemReader reads an item's attributes, absent ones as zero. It keeps the first
// malformed attribute's error in err, so that a decoder checks once.
type itemReader struct {
	item map[string]types.AttributeValue
	err  error
}

func (r *itemReader) fail(name string, err error) {
	if r.err == nil {
		r.err = fmt.Errorf("attribute %s: %w", name, err)
	}
}

func (r *itemReader) str(name string) string { return stringAttr(r.item, name) }

func (r *itemReader) num(name string) int64 { return r.number(name, r.item[name]) }

// number reads v, the attribute name, as an integer.
func (r *itemReader) number(name string, v types.AttributeValue) int64 {
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		return 0
	}
	i, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		r.fail(name, err)
	}
	return i
}

func (r *itemReader) flag(name string) bool {
	b, ok := r.item[name].(*types.AttributeValueMemberBOOL)
	return ok && b.Value
}

func (r *itemReader) time(name string) time.Time {
	t, err := parseTime(r.item, name)
	if err != nil && r.err == nil {
		r.err = err
	}
	return t
}

func (r *itemReader) strs(name string) []string {
	list, ok := r.item[name].(*types.AttributeValueMemberL)
	if !ok {
		return nil
	}
	out := make([]string, len(list.Value))
	for i, v := range list.Value {
		s, ok := v.(*types.AttributeValueMemberS)
		if !ok {
			r.fail(name, fmt.Errorf("element %d is not a string", i))
			continue
		}
		out[i] = s.Value
	}
	return out
}

func numberValue(n int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
