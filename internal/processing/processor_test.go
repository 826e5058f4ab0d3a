package processing_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/jobs/jobstest"
	"github.com/runnerhub/webhooks/internal/processing"
	"github.com/runnerhub/webhooks/internal/storage/awsstore"
	"github.com/runnerhub/webhooks/internal/testenv"
)

func embeddedStores(t testing.TB) Stores {
	s := testenv.Embedded(t).Store()
	return Stores{Deliveries: s, Counters: s, Jobs: s}
}

func TestModelEmbedded(t *testing.T) {
	modelTest(t, func(t *testing.T) Stores { return embeddedStores(t) })
}

// flakyJobs fails reads of one job, as a store would under throttling.
type flakyJobs struct {
	jobs.Store
	failJob int64
}

func (f *flakyJobs) Job(ctx context.Context, id int64) (*jobs.Job, error) {
	if id == f.failJob {
		return nil, errors.New("throttled")
	}
	return f.Store.Job(ctx, id)
}

func newProcessor(t *testing.T, s Stores) (*processing.Processor, *jobstest.Signals) {
	sig := &jobstest.Signals{}
	log := slog.New(slog.DiscardHandler)
	return &processing.Processor{
		Deliveries: s.Deliveries, Counters: s.Counters,
		Engine: &jobs.Engine{Store: s.Jobs, Deliveries: s.Deliveries, Pools: modelPools, Step: time.Minute,
			Subscribers: []jobs.Subscriber{&jobs.SignalSender{Signals: sig, Log: log}}},
		Signals: sig, Log: log, Now: time.Now,
	}, sig
}

func record(t *testing.T, s Stores, id, event string, payload []byte) *delivery.Record {
	rec := &delivery.Record{Key: delivery.Key{HookID: "1", DeliveryID: id}, Event: event,
		ReceivedAt: time.Now().UTC(), Payload: payload, State: delivery.Received, Repository: "octo/repo"}
	if _, err := s.Deliveries.Create(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestOutcomesByEvent(t *testing.T) {
	s := embeddedStores(t)
	p, _ := newProcessor(t, s)
	ctx := context.Background()
	cases := []struct {
		event   string
		payload string
		state   delivery.State
	}{
		{"ping", `{"zen":"x"}`, delivery.Processed},
		{"star", `{"action":"created"}`, delivery.Ignored},
		{"workflow_job", `{"action":"queued","workflow_job":{"name":"no id"}}`, delivery.Ignored},
		{"workflow_job", `not json`, delivery.Ignored},
	}
	for i, c := range cases {
		rec := record(t, s, "o-"+string(rune('a'+i)), c.event, []byte(c.payload))
		if err := p.Process(ctx, delivery.Message{Key: rec.Key, Event: c.event}); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Deliveries.Get(ctx, rec.Key)
		if got.State != c.state || got.Outcome == "" {
			t.Errorf("%s %s: %s %q", c.event, c.payload, got.State, got.Outcome)
		}
	}
}

// A store error mid-batch fails only that record; a poison message fails alone; the rest
// of the batch is applied, and a retry of the failed record applies it exactly once.
func TestHandleSQSFaults(t *testing.T) {
	s := embeddedStores(t)
	flaky := &flakyJobs{Store: s.Jobs, failJob: 1002}
	p, _ := newProcessor(t, Stores{Deliveries: s.Deliveries, Counters: s.Counters, Jobs: flaky})
	ctx := context.Background()
	h := generate(t, 7, 3)
	var msgs []events.SQSMessage
	for i, d := range h.deliveries {
		rec := *d
		if _, err := s.Deliveries.Create(ctx, &rec); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, events.SQSMessage{MessageId: d.DeliveryID,
			Body: `{"hookId":"1","deliveryId":"` + d.DeliveryID + `","event":"workflow_job"}`})
		if i == 1 {
			msgs = append(msgs, events.SQSMessage{MessageId: "poison", Body: `{"hookId":`})
		}
	}
	resp, err := p.HandleSQS(ctx, events.SQSEvent{Records: msgs})
	if err != nil {
		t.Fatal(err)
	}
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	if !failed["poison"] {
		t.Fatal("poison message not reported")
	}
	for _, d := range h.deliveries {
		rec, _ := s.Deliveries.Get(ctx, d.Key)
		touchesFlaky := jobIDOf(t, d) == 1002
		if failed[d.DeliveryID] != touchesFlaky || rec.State.Done() == touchesFlaky {
			t.Fatalf("delivery %s (job %d): failed=%v state=%s", d.DeliveryID, jobIDOf(t, d), failed[d.DeliveryID], rec.State)
		}
	}
	at := h.deliveries[0].ReceivedAt
	counts, _ := s.Counters.HourlyCounts(ctx, at.Add(-time.Hour), at.Add(time.Hour))
	var errorsCounted int64
	for _, c := range counts {
		errorsCounted += c.Errors
	}
	if errorsCounted == 0 {
		t.Fatal("processing errors were not counted")
	}
	// The store recovers; SQS redelivers the failed records (twice, even).
	flaky.failJob = 0
	var retry []events.SQSMessage
	for _, m := range msgs {
		if failed[m.MessageId] && m.MessageId != "poison" {
			retry = append(retry, m, m)
		}
	}
	if resp, _ := p.HandleSQS(ctx, events.SQSEvent{Records: retry}); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("retry failed: %+v", resp.BatchItemFailures)
	}
	job, err := s.Jobs.Job(ctx, 1002)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, d := range h.deliveries {
		if jobIDOf(t, d) == 1002 {
			want++
		}
	}
	if len(job.Deliveries) != want {
		t.Fatalf("job 1002 touched by %v, want %d deliveries applied once each", job.Deliveries, want)
	}
}

func jobIDOf(t *testing.T, d *delivery.Record) int64 {
	var p struct {
		WorkflowJob struct {
			ID int64 `json:"id"`
		} `json:"workflow_job"`
	}
	if err := json.Unmarshal(d.Payload, &p); err != nil {
		t.Fatal(err)
	}
	return p.WorkflowJob.ID
}

func dynamoStores(t *testing.T) Stores {
	env := testenv.SharedAWS(t)
	s := awsStore(env, env.DynamoDB())
	return Stores{Deliveries: s, Counters: s, Jobs: s}
}

// awsStore is the store on env's table and bucket, through the DynamoDB client db.
func awsStore(env *testenv.AWS, db *dynamodb.Client) *awsstore.Store {
	return awsstore.NewStore(db, env.S3(), env.EventsTable, env.PayloadBucket, 24*time.Hour)
}

// bareProcessor processes on store for pools with nothing around the engine's commits
// (no subscriber but what a test adds, no re-read store after a conflict), so that the
// scale measurements count the processing's own DynamoDB requests.
func bareProcessor(store *awsstore.Store, pools []jobs.Pool) *processing.Processor {
	return &processing.Processor{Deliveries: store, Counters: store,
		Engine:  &jobs.Engine{Store: store, Pools: pools, Step: time.Minute},
		Signals: &jobstest.Signals{}, Log: slog.New(slog.DiscardHandler), Now: time.Now}
}

// commitRunners stores new runners, with their pools' counts, in Changes of at most 90
// entities, within DynamoDB's 100 items per transaction.
func commitRunners(t testing.TB, s jobs.Store, runners []*jobs.Runner) {
	t.Helper()
	for len(runners) > 0 {
		n := min(len(runners), 90)
		if err := s.Commit(context.Background(), jobstest.CountNew(t, &jobs.Change{Runners: runners[:n]})); err != nil {
			t.Fatal(err)
		}
		runners = runners[n:]
	}
}

func TestModelDynamoDB(t *testing.T) { modelTest(t, dynamoStores) }

// A job that fits two pools waits in one of them; a runner freed in the other takes it,
// as the model test's invariant demands, here spelled out on one history.
func TestFreedRunnerTakesAJobWaitingInAnotherPool(t *testing.T) {
	s := embeddedStores(t)
	p, sig := newProcessor(t, s)
	ctx := context.Background()
	err := s.Jobs.Commit(ctx, &jobs.Change{Runners: []*jobs.Runner{{Name: "linux-1", Pool: "linux", State: jobs.RunnerIdle}}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	deliver := func(id string, j testenv.Job) {
		t.Helper()
		j.Created, j.At = now, now
		rec := record(t, s, id, "workflow_job", testenv.JobPayload(t, j))
		if err := p.Process(ctx, delivery.Message{Key: rec.Key, Event: "workflow_job"}); err != nil {
			t.Fatal(err)
		}
	}
	x64 := []string{"self-hosted", "linux", "x64"} // the linux pool only
	both := []string{"self-hosted", "linux"}       // the gpu and the linux pool
	deliver("d1", testenv.Job{ID: 1, Labels: x64, Status: "queued"})
	deliver("d2", testenv.Job{ID: 1, Labels: x64, Status: "in_progress", Runner: "linux-1"})
	deliver("d3", testenv.Job{ID: 2, Labels: both, Status: "queued"})
	if j, _ := s.Jobs.Job(ctx, 2); j.Allocation != jobs.AllocationPending || j.Pool != "gpu" {
		t.Fatalf("job 2 with every runner busy: %+v, want pending in gpu, the first pool it fits", j)
	}
	if d := sig.Demands(); len(d) != 1 || d[0].Pool != "gpu" || d[0].JobID != 2 {
		t.Fatalf("demands %+v, want one for job 2 in gpu", d)
	}
	deliver("d4", testenv.Job{ID: 1, Labels: x64, Status: "completed", Runner: "linux-1", Conclusion: "success"})
	j, _ := s.Jobs.Job(ctx, 2)
	r, _ := s.Jobs.Runner(ctx, "linux-1")
	if j.Allocation != jobs.AllocationReserved || j.ReservedRunner != "linux-1" || j.Pool != "linux" ||
		r.State != jobs.RunnerReserved || r.JobID != 2 {
		t.Fatalf("after linux-1 was freed: job 2 %+v, runner %+v; want job 2 reserved on linux-1", j, r)
	}
}

// slowJobs answers job reads only when the context ends, as a store that is too slow
// for the invocation's remaining time.
type slowJobs struct{ jobs.Store }

func (s slowJobs) Job(ctx context.Context, _ int64) (*jobs.Job, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// An attempt that fails because its invocation ran out of time is still counted as an
// error: the count does not share the spent context (which DynamoDB's client honours).
func TestAnAttemptOutOfTimeIsStillCounted(t *testing.T) {
	for name, stores := range map[string]func(t *testing.T) Stores{
		"bbolt":    func(t *testing.T) Stores { return embeddedStores(t) },
		"DynamoDB": dynamoStores,
	} {
		t.Run(name, func(t *testing.T) {
			s := stores(t)
			p, _ := newProcessor(t, Stores{Deliveries: s.Deliveries, Counters: s.Counters, Jobs: slowJobs{s.Jobs}})
			rec := fixtureRecord(t, "workflow_job.queued.json", "out-of-time-"+fmt.Sprint(time.Now().UnixNano()))
			if _, err := s.Deliveries.Create(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			if err := p.Process(ctx, delivery.Message{Key: rec.Key}); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Process: %v, want the deadline's error", err)
			}
			hour := delivery.Hour(rec.ReceivedAt)
			counts, err := s.Counters.HourlyCounts(context.Background(), hour, hour.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			var errs int64
			for _, c := range counts {
				errs += c.Errors
			}
			if errs != 1 {
				t.Fatalf("counters %+v, want one error", counts)
			}
		})
	}
}
