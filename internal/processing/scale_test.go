package processing_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/live"
	"github.com/runnerhub/webhooks/internal/live/awslive"
	"github.com/runnerhub/webhooks/internal/storage/awsstore"
	"github.com/runnerhub/webhooks/internal/testenv"
)

// The enterprise the simulation stands for (issue 14): 1M jobs a day, 3.5 deliveries
// per job, 400 deliveries/s at a 10× peak. A partition takes 1,000 WCU/s; the goal is
// that no partition key takes more than 30 % of that.
var (
	scaleJobs  = flag.Int("scale.jobs", 24, "jobs the scale simulation runs through the engine (3.5 deliveries each)")
	scaleRate  = flag.Float64("scale.rate", 400, "deliveries per second the simulated load is scaled to")
	scaleRepos = flag.Int("scale.repos", 200, "repositories of the simulated enterprise (Zipf-skewed)")
	scaleTop   = flag.Int("scale.top", 25, "hottest partition keys the simulation prints")
	// The dashboards of issue 14 item 4, each subscribed to everything.
	scaleDashboards = flag.Int("scale.dashboards", 50, "WebSocket connections the simulated fan-out serves")
)

const (
	partitionWCU = 1000.0
	goalShare    = 0.30
)

// scalePools: one default pool takes most jobs.
var scalePools = []struct {
	pool  jobs.Pool
	share float64
}{
	{jobs.Pool{Name: "default", Labels: []string{"linux"}, MaxRunners: 1000}, 0.70},
	{jobs.Pool{Name: "large", Labels: []string{"linux", "large"}, MaxRunners: 200}, 0.12},
	{jobs.Pool{Name: "arm", Labels: []string{"linux", "arm64"}, MaxRunners: 200}, 0.10},
	{jobs.Pool{Name: "gpu", Labels: []string{"linux", "gpu"}, MaxRunners: 50}, 0.05},
	{jobs.Pool{Name: "windows", Labels: []string{"windows"}, MaxRunners: 50}, 0.03},
}

// scaleDelivery is one delivery of the simulated stream: a workflow_run's payload, or a
// job whose payload is made when it is sent (it names the runner the job was given).
type scaleDelivery struct {
	at      time.Duration // offset in the stream, orders it
	event   string        // event.action
	repo    string
	payload []byte
	job     *scaleJob
	status  jobs.Status
}

type scaleJob struct {
	id              int64
	pool            string
	labels          []string
	queued, started time.Time
	done            time.Time
	runner          string // set by in_progress
}

// TestScaleDynamoDBPartitions runs a skewed enterprise stream through the real engine and
// the real awsstore on moto, meters every write per partition key (table and GSIs) in
// write units, and scales the load to -scale.rate deliveries/s. It fails when a key takes
// more than 30 % of a partition's 1,000 WCU/s.
//
// Every workflow run of four jobs sends workflow_run requested and completed, and each job
// queued, in_progress and completed: 3.5 deliveries per job. Repositories follow a Zipf
// law (the top one has about a fifth of the jobs), pools the shares above. Runs overlap,
// so some jobs wait in their pool's queue while others hold runners.
//
//	go test ./internal/processing -run Scale -v -scale.jobs 2000
func TestScaleDynamoDBPartitions(t *testing.T) {
	env := testenv.SharedAWS(t)
	ctx := context.Background()
	raw := env.DynamoDB()
	setup := awsStore(env, raw)

	stream, runners := scaleStream(t, *scaleJobs, *scaleRepos)
	var fleet []*jobs.Runner
	for pool, n := range runners {
		for i := range n {
			fleet = append(fleet, &jobs.Runner{Name: fmt.Sprintf("%s-%d", pool, i), Pool: pool, State: jobs.RunnerIdle})
		}
	}
	commitRunners(t, setup, fleet)

	meter := newCapacityMeter(ctx, t, raw, env.EventsTable)
	db := env.DynamoDB(meter.option)
	store := awsStore(env, db)
	pools := make([]jobs.Pool, len(scalePools))
	for i, p := range scalePools {
		pools[i] = p.pool
	}
	p := bareProcessor(store, pools)
	// Live updates leave the processor as FanoutQueue messages, no DynamoDB request;
	// scaleFanout delivers them below as the FanoutFunction would.
	var announced []live.Announcement
	p.Engine.Subscribe(&live.Announcer{Outbox: outboxFunc(func(_ context.Context, a live.Announcement) error {
		announced = append(announced, a)
		return nil
	})})
	start := time.Now()
	handedOver := 0 // in_progress deliveries that named a runner RunnerHub had not reserved
	for i, d := range stream {
		event, action, _ := strings.Cut(d.event, ".")
		rec := &delivery.Record{Key: delivery.Key{HookID: "1", DeliveryID: fmt.Sprintf("scale-%d", i)},
			Event: event, Action: action, Repository: d.repo, ReceivedAt: time.Now().UTC(),
			Payload: d.payload, State: delivery.Received}
		if d.job != nil {
			rec.Payload = jobDelivery(ctx, t, setup, d, &handedOver)
		}
		meter.charge(d.event)
		if _, err := store.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		if err := p.Process(ctx, delivery.Message{Key: rec.Key, Event: rec.Event}); err != nil {
			t.Fatalf("delivery %d (%s): %v", i, d.event, err)
		}
	}
	t.Logf("%d deliveries of %d jobs through the engine on moto in %v; %d jobs started on a runner RunnerHub had not reserved",
		len(stream), *scaleJobs, time.Since(start).Round(time.Millisecond), handedOver)

	perSecond := *scaleRate / float64(len(stream))
	limit := goalShare * partitionWCU
	var report []string
	for i, l := range meter.loads() {
		wcu := l.wcu * perSecond
		verdict := ""
		switch {
		case wcu <= limit:
		default:
			verdict = "  OVER"
			t.Errorf("%s %s takes %.0f WCU/s at %.0f deliveries/s, above %.0f (30 %% of a partition)", indexName(l.index), l.key, wcu, *scaleRate, limit)
		}
		if i < *scaleTop {
			report = append(report, fmt.Sprintf("%-8s %-48s %8.1f writes/s %8.1f WCU/s%s", indexName(l.index), l.key, l.writes*perSecond, wcu, verdict))
		}
	}
	t.Logf("hottest partition keys at %.0f deliveries/s (goal: each ≤ %.0f WCU/s; a sharded key's load is the mean of its shards):\n%s",
		*scaleRate, limit, strings.Join(report, "\n"))
	scaleFanout(ctx, t, env, meter, store, announced)
	t.Logf("cost per delivery by event type (WCU: table, transactional writes doubled; GSI WCU; RCU; fanout: per run):\n%s", meter.eventReport())
}

// scaleFanout is the FanoutFunction's side of the load: -scale.dashboards connections
// subscribed to everything (recorded unmetered: they connect once, not per delivery) and
// the stream's announcements delivered in runs of one second's worth at -scale.rate, as
// the event source's batching window gathers them. Its requests are charged to
// "fanout", one "delivery" per run. It writes nothing (no connection is gone), and its
// reads come once per run, not once per delivery.
func scaleFanout(ctx context.Context, t *testing.T, env *testenv.AWS, meter *capacityMeter, store *awsstore.Store, announced []live.Announcement) {
	t.Helper()
	setup := awslive.NewRegistry(env.DynamoDB(), env.EventsTable)
	now := time.Now().UTC()
	for i := range *scaleDashboards {
		c := live.Connection{ID: fmt.Sprintf("dashboard-%02d", i), ConnectedAt: now, ExpiresAt: now.Add(live.ConnectionTTL)}
		c.All = true
		if err := setup.Put(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	posts := &postCounter{}
	hub := &live.Hub{Registry: awslive.NewRegistry(env.DynamoDB(meter.option), env.EventsTable), Sender: posts, Pools: store}
	runs := 0
	for batch := range slices.Chunk(announced, max(int(*scaleRate), 1)) {
		meter.charge("fanout")
		if err := hub.Deliver(ctx, batch); err != nil {
			t.Fatal(err)
		}
		runs++
	}
	u := meter.events["fanout"]
	t.Logf("fan-out: %d announcements in %d runs of up to %.0f (one second's worth, one run a second per FanoutFunction instance) for %d dashboards: "+
		"%.1f Queries (WSCONNS), %.1f BatchGetItems (the pools' counts) and %.1f RCU per run, %.1f posts per run, no write",
		len(announced), runs, *scaleRate, *scaleDashboards, float64(u.requests["Query"])/float64(runs), float64(u.requests["BatchGetItem"])/float64(runs),
		u.rcu/float64(runs), float64(posts.n.Load())/float64(runs))
	if u.wcu != 0 || u.requests["Query"] > runs || u.requests["BatchGetItem"] > runs {
		t.Errorf("the fan-out made %d Queries and %d BatchGetItems in %d runs and %.0f WCU; want at most one of each (WSCONNS, the pools' counts) per run, and no write",
			u.requests["Query"], u.requests["BatchGetItem"], runs, u.wcu)
	}
}

// postCounter counts posts to connections.
type postCounter struct{ n atomic.Int64 }

func (c *postCounter) Send(context.Context, string, []byte) error {
	c.n.Add(1)
	return nil
}

func indexName(index string) string {
	if index == "" {
		return "table"
	}
	return index
}

// eventReport prints, per event type, the mean requests and capacity units per delivery.
func (m *capacityMeter) eventReport() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	events := make([]string, 0, len(m.events))
	for e := range m.events {
		events = append(events, e)
	}
	sort.Strings(events)
	var lines []string
	for _, e := range events {
		u := m.events[e]
		if u.deliveries == 0 {
			continue
		}
		n := float64(u.deliveries)
		ops := make([]string, 0, len(u.requests))
		total := 0
		for op, c := range u.requests {
			ops = append(ops, fmt.Sprintf("%s %.2f", op, float64(c)/n))
			total += c
		}
		sort.Strings(ops)
		lines = append(lines, fmt.Sprintf("%-28s %5d deliveries  %5.2f requests (%s)  %5.2f WCU  %5.2f GSI WCU  %5.2f RCU  %d cancelled",
			e, u.deliveries, float64(total)/n, strings.Join(ops, ", "), u.wcu/n, u.gsiWCU/n, u.rcu/n, u.cancelled))
	}
	return strings.Join(lines, "\n")
}

// scaleStream builds the delivery stream of n jobs over repos repositories, and the
// runners each pool needs so that most jobs find one.
func scaleStream(t testing.TB, n, repos int) ([]scaleDelivery, map[string]int) {
	rng := rand.New(rand.NewPCG(14, 2))
	zipf := rand.NewZipf(rng, 1.2, 1, uint64(repos-1))
	runTemplate := readJSON(t, "workflow_run.requested.json")
	base := time.Now().UTC()
	const (
		jobsPerRun = 4
		runEvery   = 2 * time.Second  // a new run starts every 2 s of stream time
		queuedFor  = 5 * time.Second  // a job waits this long for its runner
		runsFor    = 40 * time.Second // and runs this long
	)
	var stream []scaleDelivery
	concurrent := map[string]int{}
	for run := 0; run*jobsPerRun < n; run++ {
		repo := fmt.Sprintf("enterprise/repo-%03d", zipf.Uint64())
		start := time.Duration(run) * runEvery
		runID := int64(900000 + run)
		stream = append(stream, scaleDelivery{at: start, event: "workflow_run.requested", repo: repo,
			payload: runPayload(t, runTemplate, runID, repo, "requested")})
		var end time.Duration
		for j := 0; j < jobsPerRun && run*jobsPerRun+j < n; j++ {
			id := int64(run*jobsPerRun + j + 1)
			pool := pickPool(rng)
			concurrent[pool.Name]++
			labels := append([]string{"self-hosted"}, pool.Labels...)
			queued := start + time.Duration(j)*10*time.Millisecond
			started, done := queued+queuedFor, queued+queuedFor+runsFor
			end = max(end, done)
			job := &scaleJob{id: id, pool: pool.Name, labels: labels,
				queued: base.Add(queued), started: base.Add(started), done: base.Add(done)}
			for _, step := range []struct {
				at     time.Duration
				status jobs.Status
			}{{queued, jobs.StatusQueued}, {started, jobs.StatusInProgress}, {done, jobs.StatusCompleted}} {
				stream = append(stream, scaleDelivery{at: step.at, event: "workflow_job." + string(step.status), repo: repo,
					job: job, status: step.status})
			}
		}
		stream = append(stream, scaleDelivery{at: end + time.Millisecond, event: "workflow_run.completed", repo: repo,
			payload: runPayload(t, runTemplate, runID, repo, "completed")})
	}
	sort.SliceStable(stream, func(i, j int) bool { return stream[i].at < stream[j].at })
	// Runners: enough for the jobs running at once (a job holds one for queuedFor +
	// runsFor; a new one is queued every runEvery/jobsPerRun), at the pool's share.
	window := float64(queuedFor+runsFor) / float64(runEvery) * jobsPerRun
	runners := map[string]int{}
	for pool, c := range concurrent {
		runners[pool] = min(c, int(window*float64(c)/float64(n))+2)
	}
	return stream, runners
}

func pickPool(rng *rand.Rand) jobs.Pool {
	x := rng.Float64()
	for _, p := range scalePools {
		if x < p.share {
			return p.pool
		}
		x -= p.share
	}
	return scalePools[0].pool
}

// jobDelivery is the payload of a job's delivery. GitHub starts the job on the runner
// RunnerHub reserved for it; a job still waiting when it starts went to a runner GitHub
// chose (one RunnerHub does not know yet), as happens when runners are short.
func jobDelivery(ctx context.Context, t testing.TB, store *awsstore.Store, d scaleDelivery, handedOver *int) []byte {
	j := d.job
	p := testenv.Job{ID: j.id, Labels: j.labels, Status: string(d.status), Created: j.queued, At: j.queued, Repository: d.repo}
	switch d.status {
	case jobs.StatusInProgress:
		stored, err := store.Job(ctx, j.id)
		if err != nil {
			t.Fatal(err)
		}
		j.runner = stored.ReservedRunner
		if j.runner == "" {
			j.runner = fmt.Sprintf("%s-gh-%d", j.pool, j.id)
			*handedOver++
		}
		p.Runner, p.At = j.runner, j.started
	case jobs.StatusCompleted:
		p.Runner, p.At, p.Conclusion = j.runner, j.done, "success"
	}
	return testenv.JobPayload(t, p)
}

func readJSON(t testing.TB, file string) []byte {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// runPayload rewrites testdata's workflow_run delivery into run id of repo.
func runPayload(t testing.TB, template []byte, id int64, repo, action string) []byte {
	var p map[string]any
	if err := json.Unmarshal(template, &p); err != nil {
		t.Fatal(err)
	}
	p["action"] = action
	p["repository"].(map[string]any)["full_name"] = repo
	run := p["workflow_run"].(map[string]any)
	run["id"] = id
	if action == "completed" {
		run["status"], run["conclusion"] = "completed", "success"
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
