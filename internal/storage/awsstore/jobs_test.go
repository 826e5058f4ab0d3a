package awsstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/testenv"
)

// Processors racing to reserve one idle runner, each for a job of its own, on DynamoDB:
// each reads the idle runner from the index and commits its reservation at the version
// it read, and the version condition lets exactly one transaction through, every round.
// (The suite's ConcurrentReserve does one round from one shared read.)
func TestConcurrentReserveOneWinner(t *testing.T) {
	t.Parallel()
	store := sharedStore(t)
	const racers, rounds = 8, 5
	for round := range rounds {
		pool := fmt.Sprintf("race-%d", round)
		runner := &jobs.Runner{Name: fmt.Sprintf("runner-%d", round), Pool: pool, State: jobs.RunnerIdle}
		pending := make([]*jobs.Job, racers)
		for i := range pending {
			pending[i] = &jobs.Job{ID: int64(round*racers + i + 1), Pool: pool, Status: jobs.StatusQueued,
				Allocation: jobs.AllocationPending}
			pending[i].QueueKey = jobs.RankKey(time.Now(), pending[i].ID)
		}
		mustCommit(t, store, &jobs.Change{Jobs: pending, Runners: []*jobs.Runner{runner}})

		errs := make([]error, racers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() {
				// Each racer reads the idle runner and its job, as a processor would.
				idle, err := store.IdleRunners(t.Context(), pool, "", 1)
				if err != nil || len(idle) != 1 {
					errs[i] = fmt.Errorf("IdleRunners: %v, %v", idle, err)
					return
				}
				job, err := store.Job(t.Context(), pending[i].ID)
				if err != nil {
					errs[i] = err
					return
				}
				r := idle[0]
				job.Allocation, job.ReservedRunner, job.QueueKey = jobs.AllocationReserved, r.Name, ""
				r.State, r.JobID = jobs.RunnerReserved, job.ID
				<-start
				errs[i] = store.Commit(t.Context(), &jobs.Change{Jobs: []*jobs.Job{job}, Runners: []*jobs.Runner{r}})
			})
		}
		close(start)
		wg.Wait()

		var winners []int
		for i, err := range errs {
			switch {
			case err == nil:
				winners = append(winners, i)
			case !errors.Is(err, jobs.ErrConflict):
				t.Fatalf("round %d, racer %d: %v, want nil or ErrConflict", round, i, err)
			}
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: %d racers reserved the runner (%v), want exactly 1", round, len(winners), winners)
		}
		got, err := store.Runner(t.Context(), runner.Name)
		if err != nil {
			t.Fatal(err)
		}
		if want := pending[winners[0]].ID; got.State != jobs.RunnerReserved || got.JobID != want || got.Version != 2 {
			t.Fatalf("round %d: runner %s for job %d at version %d, want reserved for job %d at version 2",
				round, got.State, got.JobID, got.Version, want)
		}
		left, err := store.PendingJobs(t.Context(), pool, "", racers)
		if err != nil || len(left) != racers-1 {
			t.Fatalf("round %d: %d jobs still pending (%v), want %d", round, len(left), err, racers-1)
		}
	}
}

// TestEntityItemLayout checks the keys and the sparse index entries that the README's
// item design documents, and that an entity leaving pending or idle leaves the index.
func TestEntityItemLayout(t *testing.T) {
	t.Parallel()
	env := testenv.SharedAWS(t)
	db := env.DynamoDB()
	store := newStore(env, db)

	job := &jobs.Job{ID: 4242, Pool: "linux", Status: jobs.StatusQueued, Allocation: jobs.AllocationPending,
		QueueKey: jobs.RankKey(time.Unix(1_700_000_000, 0), 4242), Labels: []string{"linux", "x64"}}
	runner := &jobs.Runner{Name: "r-1", Pool: "linux", State: jobs.RunnerIdle}
	run := &jobs.Run{ID: 77, Repository: "o/r"}
	profile := &jobs.Profile{Repository: "o/r", PoolUses: map[string]int{"linux": 3}}
	mustCommit(t, store, &jobs.Change{Jobs: []*jobs.Job{job}, Runners: []*jobs.Runner{runner},
		Runs: []*jobs.Run{run}, Profiles: []*jobs.Profile{profile}})
	if err := store.PutPool(t.Context(), jobs.Pool{Name: "linux", Labels: []string{"linux"}, MaxRunners: 2}); err != nil {
		t.Fatal(err)
	}

	checkItem(t, db, env.EventsTable, "JOB#4242", "JOB", map[string]string{
		"gsi1pk": "PENDING#linux", "gsi1sk": job.QueueKey, "allocation": "pending", "version": "1", "id": "4242"})
	checkItem(t, db, env.EventsTable, "RUNNER#r-1", "RUNNER", map[string]string{
		"gsi1pk": "IDLE#linux", "gsi1sk": "r-1", "state": "idle", "version": "1"})
	checkItem(t, db, env.EventsTable, "RUN#77", "RUN", map[string]string{"version": "1", "repository": "o/r"})
	checkItem(t, db, env.EventsTable, "REPO#o/r", "PROFILE", map[string]string{"version": "1"})
	checkItem(t, db, env.EventsTable, "POOLS", "POOL#linux", map[string]string{"name": "linux", "maxRunners": "2"})

	job.Version, runner.Version = 1, 1
	job.Allocation, job.ReservedRunner, job.QueueKey = jobs.AllocationReserved, runner.Name, ""
	runner.State, runner.JobID = jobs.RunnerReserved, job.ID
	mustCommit(t, store, &jobs.Change{Jobs: []*jobs.Job{job}, Runners: []*jobs.Runner{runner}})
	checkItem(t, db, env.EventsTable, "JOB#4242", "JOB", map[string]string{
		"gsi1pk": "", "gsi1sk": "", "queueKey": "", "allocation": "reserved", "version": "2"})
	checkItem(t, db, env.EventsTable, "RUNNER#r-1", "RUNNER", map[string]string{
		"gsi1pk": "", "gsi1sk": "", "state": "reserved", "jobId": "4242", "version": "2"})

	// Counters: per UTC hour and event, in the shard the delivery's key picks (and that
	// shard's partition), numbers added to.
	received := time.Date(2024, 5, 2, 1, 30, 0, 0, time.FixedZone("CEST", 2*3600))
	rec := newRecord([]byte(`{}`))
	rec.ReceivedAt = received
	if _, err := store.Create(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	checkItem(t, db, env.EventsTable, fmt.Sprintf("COUNTERS#2024-05-01#%d", shardOf(rec.Key)%counterPartitions), fmt.Sprintf("23#workflow_job#%02d", shardOf(rec.Key)), map[string]string{
		"total": "1", "processed": "",
		"expiresAt": strconv.FormatInt(time.Date(2024, 5, 1, 23, 0, 0, 0, time.UTC).Add(retention).Unix(), 10)})
}

// Counts spread over shards read back as one counter per hour and event.
func TestCounterShards(t *testing.T) {
	t.Parallel()
	env := testenv.SharedAWS(t)
	db := env.DynamoDB()
	store := newStore(env, db)
	hour := time.Date(2024, 6, 3, 10, 0, 0, 0, time.UTC) // no other test counts here
	const deliveries = 40
	for i := range deliveries {
		rec := newRecord([]byte(`{}`))
		rec.ReceivedAt = hour.Add(time.Duration(i) * time.Second)
		if _, err := store.Create(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
		if i%4 == 0 {
			if err := store.CountError(t.Context(), rec.Event, rec.ReceivedAt); err != nil {
				t.Fatal(err)
			}
		}
	}
	push := newRecord([]byte(`{}`))
	push.Event, push.ReceivedAt = "push", hour
	if _, err := store.Create(t.Context(), push); err != nil {
		t.Fatal(err)
	}

	items, partitions := 0, 0
	for partition := range counterPartitions {
		out, err := db.Query(t.Context(), &dynamodb.QueryInput{
			TableName:              &env.EventsTable,
			KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :hour)"),
			ExpressionAttributeValues: map[string]dbtypes.AttributeValue{
				":pk":   &dbtypes.AttributeValueMemberS{Value: fmt.Sprintf("COUNTERS#2024-06-03#%d", partition)},
				":hour": &dbtypes.AttributeValueMemberS{Value: "10#workflow_job#"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		items += len(out.Items)
		if len(out.Items) > 0 {
			partitions++
		}
	}
	if items < 2 || items > counterShards || partitions < 2 {
		t.Fatalf("%d counter items in %d partitions for 40 deliveries, want them spread over 2 to %d shards in 2 or more partitions", items, partitions, counterShards)
	}
	counts, err := store.HourlyCounts(t.Context(), hour, hour.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []delivery.HourlyCount{
		{Hour: hour, Event: "push", Total: 1},
		{Hour: hour, Event: "workflow_job", Total: deliveries, Errors: deliveries / 4},
	}
	if !slices.Equal(counts, want) {
		t.Fatalf("counts %+v, want %+v", counts, want)
	}
}

// checkItem compares string and number attributes of the item (pk, sk) with want; "" wants
// the attribute absent.
func checkItem(t *testing.T, db *dynamodb.Client, table, pk, sk string, want map[string]string) {
	t.Helper()
	out, err := db.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: &table, Key: entityKey(pk, sk), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Item) == 0 {
		t.Fatalf("no item %s / %s", pk, sk)
	}
	for name, w := range want {
		var got string
		switch v := out.Item[name].(type) {
		case *dbtypes.AttributeValueMemberS:
			got = v.Value
		case *dbtypes.AttributeValueMemberN:
			got = v.Value
		case nil:
		default:
			got = fmt.Sprintf("%T", v)
		}
		if got != w {
			t.Errorf("item %s / %s: %s = %q, want %q", pk, sk, name, got, w)
		}
	}
}

// A transaction has at most 100 actions: a larger Change is refused before it is sent,
// and is not a conflict (retrying cannot help).
func TestCommitTooLarge(t *testing.T) {
	t.Parallel()
	store := sharedStore(t)
	c := &jobs.Change{}
	for i := range 101 {
		c.Runs = append(c.Runs, &jobs.Run{ID: int64(i + 1)})
	}
	err := store.Commit(t.Context(), c)
	if err == nil || errors.Is(err, jobs.ErrConflict) {
		t.Fatalf("Commit of 101 writes: err = %v, want an error other than ErrConflict", err)
	}
	if _, err := store.Run(t.Context(), 1); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("Run 1 after the refused Commit: err = %v, want ErrNotFound", err)
	}
	c.Runs = c.Runs[:100]
	mustCommit(t, store, c)
}

// A table written before the counts existed (entities, no counts), or whose counts are
// off, is rebuilt by a recount: SetPoolCounts replaces every shard of each pool.
func TestSetPoolCountsRebuildsFromARecount(t *testing.T) {
	t.Parallel()
	store := sharedStore(t)
	ctx := t.Context()
	at := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	old := &jobs.Change{Runners: []*jobs.Runner{
		{Name: "l-1", Pool: "linux", State: jobs.RunnerIdle, LastSeen: at},
		{Name: "l-2", Pool: "linux", State: jobs.RunnerStarting, LastSeen: at},
		{Name: "g-1", Pool: "gpu", State: jobs.RunnerBusy, JobID: 8, LastSeen: at},
	}}
	for i := range 3 {
		old.Jobs = append(old.Jobs, &jobs.Job{ID: int64(i + 1), Pool: "gpu", Status: jobs.StatusQueued, QueuedAt: at,
			Allocation: jobs.AllocationPending, QueueKey: jobs.RankKey(at, int64(i+1))})
	}
	if err := store.Commit(ctx, old); err != nil {
		t.Fatal(err)
	}
	// Counts that are off, in several shards: all of them must go.
	for range 3 {
		if err := store.Commit(ctx, &jobs.Change{Counts: []jobs.PoolCounts{{Pool: "linux", Busy: 5}, {Pool: "arm", Idle: 2}}}); err != nil {
			t.Fatal(err)
		}
	}
	e := &jobs.Engine{Store: store, Pools: []jobs.Pool{{Name: "linux"}, {Name: "gpu"}, {Name: "arm"}}}
	counts, err := e.Recount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetPoolCounts(ctx, counts); err != nil {
		t.Fatal(err)
	}
	want := []jobs.PoolCounts{{Pool: "arm"}, {Pool: "gpu", Busy: 1, Pending: 3}, {Pool: "linux", Idle: 1, Starting: 1}}
	got, err := store.PoolCounts(ctx, []string{"arm", "gpu", "linux"})
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("counts after the rebuild: %+v, %v; want %+v", got, err, want)
	}
}

// DynamoDB cancels transactions that touch an item another transaction has in flight
// (every delivery of an hour and event shares a counter item). moto never does, so the
// cancellations are injected: a few are retried away, a persistent one ends as
// ErrConflict for Commit.
func TestTransactionConflictsAreRetried(t *testing.T) {
	t.Parallel()
	env := testenv.SharedAWS(t)
	var failures atomic.Int32
	db := env.DynamoDB(testenv.AroundEachAttempt("injectConflicts", func(ctx context.Context, send func() error) error {
		if awsmiddleware.GetOperationName(ctx) == "TransactWriteItems" && failures.Add(-1) >= 0 {
			return &dbtypes.TransactionCanceledException{
				Message: aws.String("injected"),
				CancellationReasons: []dbtypes.CancellationReason{
					{Code: aws.String(reasonNone)}, {Code: aws.String(reasonConflict)},
				},
			}
		}
		return send()
	}))
	store := newStore(env, db)

	failures.Store(maxTransactAttempts - 1)
	rec := newRecord([]byte(`{"action":"queued"}`))
	if existing, err := store.Create(t.Context(), rec); err != nil || existing != nil {
		t.Fatalf("Create after %d conflicts: existing %v, err %v", maxTransactAttempts-1, existing, err)
	}
	counts, err := store.HourlyCounts(t.Context(), delivery.Hour(rec.ReceivedAt), delivery.Hour(rec.ReceivedAt).Add(time.Hour))
	if err != nil || len(counts) != 1 || counts[0].Total != 1 {
		t.Fatalf("HourlyCounts after a retried Create: %+v, %v; want total 1", counts, err)
	}

	failures.Store(maxTransactAttempts)
	err = store.Commit(t.Context(), &jobs.Change{Runs: []*jobs.Run{{ID: 1}}})
	if !errors.Is(err, jobs.ErrConflict) {
		t.Fatalf("Commit conflicting %d times: err = %v, want ErrConflict", maxTransactAttempts, err)
	}
	failures.Store(0)
	if _, err := store.Run(t.Context(), 1); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("Run after a cancelled Commit: err = %v, want ErrNotFound", err)
	}
}

func mustCommit(t *testing.T, s *Store, c *jobs.Change) {
	t.Helper()
	if err := s.Commit(t.Context(), c); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}
