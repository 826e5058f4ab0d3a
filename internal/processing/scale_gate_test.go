package processing_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/testenv"
)

var (
	gateJobs       = flag.Int("scale.gate.jobs", 16, "queued jobs each pool-gate run allocates")
	gateProcessors = flag.String("scale.gate.processors", "1,2", "concurrent processors of the pool-gate runs")
)

// TestScalePoolGate measures how many allocations per second one pool lets concurrent
// processors make on moto, against the same work spread over as many pools as
// processors, in two cases. With idle runners, every queued job reserves one, which
// needs no gate: processors race only for runners. In a dry pool every queued job waits,
// which writes the pool's gate in the commit: processors racing in one pool conflict on
// it and re-plan. testenv's client applies transactions one at a time, as DynamoDB
// isolates them.
//
//	go test ./internal/processing -run ScalePoolGate -v -scale.gate.jobs 60 -scale.gate.processors 1,2,4,8
func TestScalePoolGate(t *testing.T) {
	var counts []int
	for _, f := range strings.Split(*gateProcessors, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			t.Fatalf("-scale.gate.processors %q: want a list of positive counts", *gateProcessors)
		}
		counts = append(counts, n)
	}
	var report []string
	for _, processors := range counts {
		variants := []struct{ pools, repos int }{{1, *gateJobs}}
		if processors > 1 {
			variants = append(variants, struct{ pools, repos int }{processors, *gateJobs}, struct{ pools, repos int }{processors, 1})
		}
		for _, dry := range []bool{false, true} {
			for _, v := range variants {
				// How often processors conflict is measured, not asserted: it depends
				// on timing. runGate asserts that every job ends as it must.
				report = append(report, runGate(t, processors, v.pools, v.repos, *gateJobs, dry).String())
			}
		}
	}
	t.Logf("allocations through the pool gate on moto (%d queued jobs per run):\n%s", *gateJobs, strings.Join(report, "\n"))
}

type gateRun struct {
	processors, pools, jobs int
	repos                   int
	dry                     bool // no idle runners: every job waits
	elapsed                 time.Duration
	commits, cancelled      int64
	redelivered             int64         // deliveries whose conflicts outlasted the processor's retries
	window                  time.Duration // from a delivery's first read to its commit, mean
}

func (r gateRun) String() string {
	runners := "idle runners"
	if r.dry {
		runners = "dry (gate)  "
	}
	return fmt.Sprintf("%s %2d processors, %d pools, %2d repositories: %6.1f allocations/s, %.2f commits and %.2f cancelled per allocation, %d redelivered, mean first read to commit %v",
		runners, r.processors, r.pools, r.repos, float64(r.jobs)/r.elapsed.Seconds(), float64(r.commits)/float64(r.jobs),
		float64(r.cancelled)/float64(r.jobs), r.redelivered, r.window.Round(100*time.Microsecond))
}

// runGate queues n jobs over the given numbers of pools (each with n idle runners, or
// none when dry) and repositories, and lets processors allocate them concurrently; every
// job must end reserved on a runner of its own, once, or pending when dry. An allocation
// also writes its repository's profile, a second point of serialisation for jobs of one
// repository.
func runGate(t *testing.T, processors, pools, repos, n int, dry bool) gateRun {
	t.Helper()
	env := testenv.SharedAWS(t)
	ctx := context.Background()
	setup := awsStore(env, env.DynamoDB())

	poolList := make([]jobs.Pool, pools)
	for i := range poolList {
		poolList[i] = jobs.Pool{Name: fmt.Sprintf("p%d", i), Labels: []string{"linux", fmt.Sprintf("p%d", i)}, MaxRunners: n}
	}
	var runners []*jobs.Runner
	for _, p := range poolList {
		for i := range n {
			if dry {
				break
			}
			runners = append(runners, &jobs.Runner{Name: fmt.Sprintf("%s-%d", p.Name, i), Pool: p.Name, State: jobs.RunnerIdle})
		}
	}
	commitRunners(t, setup, runners)
	messages := make(chan delivery.Message, 2*n)
	now := time.Now().UTC()
	for i := range n {
		pool := poolList[i%pools]
		repo := fmt.Sprintf("octo/repo-%d", i%repos)
		payload := testenv.JobPayload(t, testenv.Job{ID: int64(70000 + i), Labels: append([]string{"self-hosted"}, pool.Labels...),
			Status: string(jobs.StatusQueued), Created: now, At: now, Repository: repo})
		rec := &delivery.Record{Key: delivery.Key{HookID: "1", DeliveryID: fmt.Sprintf("gate-%d", i)}, Event: "workflow_job",
			Action: "queued", Repository: repo, ReceivedAt: now, Payload: payload, State: delivery.Received}
		if _, err := setup.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		messages <- delivery.Message{Key: rec.Key, Event: rec.Event}
	}

	r := gateRun{processors: processors, pools: pools, repos: repos, jobs: n, dry: dry}
	var windows atomic.Int64 // summed first-read-to-commit time of the committed transactions
	var left sync.WaitGroup
	left.Add(n)
	var wg sync.WaitGroup
	start := time.Now()
	for range processors {
		// A processor of its own, with a client of its own, as a Lambda instance has.
		var gateRead atomic.Int64 // when this processor's current attempt first read
		db := env.DynamoDB(testenv.AroundEachAttempt("gate", func(ctx context.Context, send func() error) error {
			op := awsmiddleware.GetOperationName(ctx)
			if op == "GetItem" {
				gateRead.CompareAndSwap(0, time.Now().UnixNano())
			}
			err := send()
			if op == "TransactWriteItems" {
				atomic.AddInt64(&r.commits, 1)
				var cancelled *types.TransactionCanceledException
				if errors.As(err, &cancelled) {
					atomic.AddInt64(&r.cancelled, 1)
				} else if err == nil {
					if began := gateRead.Swap(0); began != 0 {
						windows.Add(time.Now().UnixNano() - began)
					}
				}
				gateRead.Store(0)
			}
			return err
		}))
		store := awsStore(env, db)
		p := bareProcessor(store, poolList)
		wg.Go(func() {
			for m := range messages {
				if err := p.Process(ctx, m); err != nil {
					// What SQS does with a failed record: deliver it again later.
					atomic.AddInt64(&r.redelivered, 1)
					messages <- m
					continue
				}
				left.Done()
			}
		})
	}
	left.Wait()
	r.elapsed = time.Since(start)
	close(messages)
	wg.Wait()
	if committed := r.commits - r.cancelled; committed > 0 {
		r.window = time.Duration(windows.Load() / committed)
	}

	reserved := map[string]int64{}
	for i := range n {
		j, err := setup.Job(ctx, int64(70000+i))
		if err != nil {
			t.Fatal(err)
		}
		if dry {
			if j.Allocation != jobs.AllocationPending || j.Pool != poolList[i%pools].Name {
				t.Errorf("job %d in a dry pool: allocation %q in pool %q, want pending in %s", j.ID, j.Allocation, j.Pool, poolList[i%pools].Name)
			}
			continue
		}
		if j.Allocation != jobs.AllocationReserved || !strings.HasPrefix(j.ReservedRunner, j.Pool+"-") {
			t.Errorf("job %d: allocation %q on %q in pool %s, want reserved on a runner of its pool", j.ID, j.Allocation, j.ReservedRunner, j.Pool)
		}
		if other, taken := reserved[j.ReservedRunner]; taken {
			t.Errorf("runner %s reserved for jobs %d and %d", j.ReservedRunner, other, j.ID)
		}
		reserved[j.ReservedRunner] = j.ID
	}
	return r
}
