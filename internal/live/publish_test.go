package live_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/jobs/jobstest"
	"github.com/runnerhub/webhooks/internal/live"
	"github.com/runnerhub/webhooks/internal/live/localhub"
	"github.com/runnerhub/webhooks/internal/processing"
	"github.com/runnerhub/webhooks/internal/storage/embedded"
	"github.com/runnerhub/webhooks/internal/testenv"
)

// sent records what a Sender was given, per connection.
type sent struct {
	mu  sync.Mutex
	msg map[string][][]byte
}

func (s *sent) Send(_ context.Context, id string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msg[id] = append(s.msg[id], data)
	return nil
}

// take returns and forgets what connection id received, decoded.
func (s *sent) take(t *testing.T, id string) []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []received
	for _, b := range s.msg[id] {
		out = append(out, unbatch(t, b)...)
	}
	delete(s.msg, id)
	return out
}

// unbatch decodes one post: an envelope, or a JSON array of them.
func unbatch(t *testing.T, post []byte) []received {
	t.Helper()
	if len(post) > 0 && post[0] == '[' {
		var rs []received
		if err := json.Unmarshal(post, &rs); err != nil {
			t.Fatal(err)
		}
		return rs
	}
	var r received
	if err := json.Unmarshal(post, &r); err != nil {
		t.Fatal(err)
	}
	return []received{r}
}

// deliverNow is an Outbox that runs the fan-out at once, so that a test sees each
// commit's messages as soon as it is processed.
type deliverNow struct{ hub *live.Hub }

func (d deliverNow) Publish(ctx context.Context, a live.Announcement) error {
	return d.hub.Deliver(ctx, []live.Announcement{a})
}

type received struct {
	Event string          `json:"event"`
	Room  string          `json:"room"`
	Data  json.RawMessage `json:"data"`
	At    time.Time       `json:"at"`
}

// countingReader counts the pool reads, which must not happen with nobody connected,
// and keeps the pools each one asked for.
type countingReader struct {
	live.PoolReader
	mu    sync.Mutex
	reads int
	asked [][]string
}

func (c *countingReader) PoolCounts(ctx context.Context, pools []string) ([]jobs.PoolCounts, error) {
	c.mu.Lock()
	c.reads++
	c.asked = append(c.asked, slices.Clone(pools))
	c.mu.Unlock()
	return c.PoolReader.PoolCounts(ctx, pools)
}

type publishFixture struct {
	store   *embedded.Store
	proc    *processing.Processor
	hub     *live.Hub
	sent    *sent
	reader  *countingReader
	pending int // deliveries sent so far, for unique ids
}

func newPublishFixture(t *testing.T) *publishFixture {
	db := testenv.Embedded(t)
	store := db.Store()
	f := &publishFixture{store: store, sent: &sent{msg: map[string][][]byte{}}, reader: &countingReader{PoolReader: store}}
	f.hub = &live.Hub{Registry: localhub.NewRegistry(), Sender: f.sent, Pools: f.reader}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.proc = &processing.Processor{
		Deliveries: store, Counters: store,
		Engine: &jobs.Engine{Store: store, Deliveries: store, Step: time.Minute, Pools: []jobs.Pool{
			{Name: "ubuntu", Labels: []string{"ubuntu-latest"}, MaxRunners: 5},
			{Name: "gpu", Labels: []string{"gpu", "db-app", "dc-03"}, MaxRunners: 1},
		}, Subscribers: []jobs.Subscriber{&live.Announcer{Outbox: deliverNow{f.hub}}}},
		Log: log, Now: time.Now,
	}
	return f
}

// deliver records a testdata fixture as a new delivery and processes it.
func (f *publishFixture) deliver(t *testing.T, fixture string) *delivery.Record {
	t.Helper()
	payload, err := os.ReadFile(filepath.Join("..", "..", "testdata", fixture))
	if err != nil {
		t.Fatal(err)
	}
	event, _, _ := strings.Cut(fixture, ".")
	return f.deliverPayload(t, event, fixture, payload)
}

// deliverPayload records payload as a new delivery of event and processes it.
func (f *publishFixture) deliverPayload(t *testing.T, event, name string, payload []byte) *delivery.Record {
	t.Helper()
	var routing struct {
		Action     string `json:"action"`
		Repository struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
	}
	if err := json.Unmarshal(payload, &routing); err != nil {
		t.Fatal(err)
	}
	f.pending++
	rec := &delivery.Record{
		Key:   delivery.Key{HookID: "109948940", DeliveryID: name + "-" + string(rune('a'+f.pending))},
		Event: event, Action: routing.Action, Repository: routing.Repository.FullName,
		ReceivedAt: time.Now().UTC(), Payload: payload, State: delivery.Received,
	}
	ctx := context.Background()
	if _, err := f.store.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := f.proc.Process(ctx, delivery.Message{Key: rec.Key, Event: event}); err != nil {
		t.Fatal(err)
	}
	return rec
}

func (f *publishFixture) connect(t *testing.T, id string, repos ...string) {
	t.Helper()
	connect(t, f.hub, id, repos...)
}

// connect opens connection id on hub and subscribes it to repos (nil: everything).
func connect(t *testing.T, hub *live.Hub, id string, repos ...string) {
	t.Helper()
	ctx := context.Background()
	if err := hub.Connect(ctx, live.Connection{ID: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := hub.Subscribe(ctx, id, repos); err != nil {
		t.Fatal(err)
	}
}

// field reads a dotted path of a message's data.
func field(t *testing.T, r received, path string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(r.Data, &v); err != nil {
		t.Fatal(err)
	}
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func events(rs []received) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Event+"@"+r.Room)
	}
	return out
}

// TestNobodyToTellReadsNothing holds Hub.Deliver to the rule for messages without a
// room: the Registry lists every connection for them, and only those subscribed to
// something are told. With nobody else connected, the fan-out has nobody to tell, so it
// reads no pool counts and sends nothing: neither for a delivery through the processor
// nor for a run of an organisation's ping (no room) and a pool-status handed to Deliver.
func TestNobodyToTellReadsNothing(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		connect func(t *testing.T, hub *live.Hub)
	}{
		{"nobody connected", func(*testing.T, *live.Hub) {}},
		{"connected, never subscribed", func(t *testing.T, hub *live.Hub) {
			if err := hub.Connect(ctx, live.Connection{ID: "idle"}); err != nil {
				t.Fatal(err)
			}
		}},
		{"unsubscribed from everything", func(t *testing.T, hub *live.Hub) {
			connect(t, hub, "left")
			if _, err := hub.Unsubscribe(ctx, "left", nil); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newPublishFixture(t)
			tc.connect(t, f.hub)
			f.deliver(t, "workflow_job.queued.json")
			ping, err := live.Encode(live.Message{Event: live.EventPing, At: time.Now().UTC(), Data: map[string]any{"zen": "z"}})
			if err != nil {
				t.Fatal(err)
			}
			ann := live.Announcement{At: time.Now().UTC(), Frames: []live.Frame{{Data: ping}}, Pools: []string{"ubuntu"}}
			if err := f.hub.Deliver(ctx, []live.Announcement{ann}); err != nil {
				t.Fatal(err)
			}
			if f.reader.reads != 0 || len(f.sent.msg) != 0 {
				t.Errorf("%d pool reads and %d connections sent to, with nobody subscribed", f.reader.reads, len(f.sent.msg))
			}
		})
	}
}

// TestDeliverReadsExactCountsOncePerRun: the pool-status messages of one fan-out run
// carry each pool's exact pending and idle counts, however many (the index reads they
// replace stopped at 100 and said "capped"), from one PoolCounts call that names every
// pool of the run once.
func TestDeliverReadsExactCountsOncePerRun(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name          string
		pending, idle int
	}{
		{"a few", 3, 2},
		{"past the old cap of 100", 150, 120},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newPublishFixture(t)
			now := time.Now().UTC()
			change := &jobs.Change{Runners: []*jobs.Runner{{Name: "gpu-idle", Pool: "gpu", State: jobs.RunnerIdle, UpdatedAt: now}}}
			for i := range tc.pending {
				id := int64(1000 + i)
				change.Jobs = append(change.Jobs, &jobs.Job{ID: id, RunID: id, Repository: "octo-org/many", Name: "build",
					Labels: []string{"ubuntu-latest"}, Status: jobs.StatusQueued, Allocation: jobs.AllocationPending, Pool: "ubuntu",
					CreatedAt: now, QueuedAt: now, QueueKey: jobs.RankKey(jobs.Rank(now, 0, jobs.DefaultPriorityStep), id)})
			}
			for i := range tc.idle {
				change.Runners = append(change.Runners, &jobs.Runner{Name: fmt.Sprintf("ubuntu-%03d", i), Pool: "ubuntu",
					State: jobs.RunnerIdle, UpdatedAt: now})
			}
			if err := f.store.Commit(ctx, jobstest.CountNew(t, change)); err != nil {
				t.Fatal(err)
			}
			f.connect(t, "all")
			// One run of three commits, naming the ubuntu pool three times and gpu once.
			run := []live.Announcement{
				{At: now, DeliveryID: "d1", Pools: []string{"ubuntu"}},
				{At: now.Add(time.Millisecond), DeliveryID: "d2", Pools: []string{"gpu", "ubuntu"}},
				{At: now.Add(2 * time.Millisecond), Pools: []string{"ubuntu"}},
			}
			if err := f.hub.Deliver(ctx, run); err != nil {
				t.Fatal(err)
			}
			if want := [][]string{{"gpu", "ubuntu"}}; f.reader.reads != 1 || fmt.Sprint(f.reader.asked) != fmt.Sprint(want) {
				t.Errorf("%d pool count reads asking for %v, want one asking for %v", f.reader.reads, f.reader.asked, want)
			}
			var got []string
			for _, r := range f.sent.take(t, "all") {
				var d map[string]any
				if err := json.Unmarshal(r.Data, &d); err != nil {
					t.Fatal(err)
				}
				if _, ok := d["capped"]; ok {
					t.Errorf("pool-status %s says capped; its counts are exact", r.Data)
				}
				got = append(got, fmt.Sprintf("%s %v %v/%v", r.Event, d["pool"], d["pending"], d["idle"]))
			}
			ubuntu := fmt.Sprintf("pool-status ubuntu %d/%d", tc.pending, tc.idle)
			if want := []string{ubuntu, "pool-status gpu 0/1", ubuntu, ubuntu}; !slices.Equal(got, want) {
				t.Errorf("received\n %q\nwant\n %q", got, want)
			}
		})
	}
}

// TestPublish follows deliveries through the processor and checks what each kind of
// subscriber receives after each commit.
func TestPublish(t *testing.T) {
	f := newPublishFixture(t)
	f.connect(t, "repo", "codertocat/hello-world") // the description's room, in another case
	f.connect(t, "all")
	f.connect(t, "other", "octo-org/other")
	const room = "repo:Codertocat/Hello-World"

	type check struct{ path, want string }
	steps := []struct {
		fixture string
		// what the room's subscriber receives, as event@room
		repo []string
		// checks on the room subscriber's messages, by index
		checks map[int][]check
		// what a subscriber of another repository receives (global messages only)
		other []string
	}{
		{
			fixture: "workflow_job.queued.json",
			repo:    []string{"workflow-job@" + room, "webhook-event@" + room, "pool-status@"},
			checks: map[int][]check{
				0: {{"action", "queued"}, {"repository.full_name", "Codertocat/Hello-World"}, {"job.id", "289782451"},
					{"job.status", "queued"}, {"job.allocation", "pending"}, {"job.pool", "ubuntu"}, {"transition.applied", "true"}},
				1: {{"event", "workflow_job"}, {"action", "queued"}, {"repository", "Codertocat/Hello-World"}, {"state", "processed"}, {"processed", "true"}},
				2: {{"pool", "ubuntu"}, {"pending", "1"}, {"idle", "0"}, {"jobs", `[{"allocation":"pending","id":289782451,"status":"queued"}]`}},
			},
			other: []string{"pool-status@"},
		},
		{
			fixture: "workflow_job.completed.json",
			repo:    []string{"workflow-job@" + room, "webhook-event@" + room, "pool-status@"},
			checks: map[int][]check{
				0: {{"action", "completed"}, {"job.status", "completed"}, {"job.allocation", "assigned"}, {"transition.applied", "true"}},
				2: {{"pool", "ubuntu"}, {"pending", "0"}},
			},
			other: []string{"pool-status@"},
		},
		{
			// A late queued for a completed job: announced, not applied, no count changed.
			fixture: "workflow_job.queued.json",
			repo:    []string{"workflow-job@" + room, "webhook-event@" + room},
			checks:  map[int][]check{0: {{"action", "queued"}, {"job.status", "completed"}, {"transition.applied", "false"}}},
		},
		{
			fixture: "push.json",
			repo:    []string{"push-event@" + room, "webhook-event@" + room},
			checks: map[int][]check{0: {{"repository.full_name", "Codertocat/Hello-World"}, {"ref", "refs/tags/simple-tag"},
				{"prewarm", `["ubuntu"]`}, {"commits", "0"}}},
		},
		{
			fixture: "pull_request.opened.json",
			repo:    []string{"pull-request@" + room, "webhook-event@" + room},
			checks: map[int][]check{0: {{"action", "opened"}, {"number", "2"}, {"pullRequest.state", "open"},
				{"pullRequest.title", "Update the README with new information."}}},
		},
		{fixture: "workflow_run.requested.json"}, // octo-org/octo-repo: only "all" hears of it
		{fixture: "ping.json"},                   // Octocoders/Hello-World: likewise
	}
	for _, s := range steps {
		rec := f.deliver(t, s.fixture)
		got := f.sent.take(t, "repo")
		if !slices.Equal(events(got), s.repo) {
			t.Fatalf("%s: the room's subscriber received %v, want %v", s.fixture, events(got), s.repo)
		}
		for i, checks := range s.checks {
			for _, c := range checks {
				v := field(t, got[i], c.path)
				b, _ := json.Marshal(v)
				if s, ok := v.(string); ok {
					b = []byte(s)
				}
				if string(b) != c.want {
					t.Errorf("%s: %s data.%s = %s, want %s", s.fixture, got[i].Event, c.path, b, c.want)
				}
			}
		}
		all := f.sent.take(t, "all")
		if n := len(all); n == 0 || all[n-1].Event != "webhook-event" && all[n-1].Event != "pool-status" {
			t.Errorf("%s: the subscriber of everything received %v", s.fixture, events(all))
		}
		for _, r := range all {
			if wantRoom := live.Room(rec.Repository); r.Event != "pool-status" && r.Room != wantRoom {
				t.Errorf("%s: %s in room %q, want %q", s.fixture, r.Event, r.Room, wantRoom)
			}
			if !r.At.Equal(all[0].At) || r.At.IsZero() {
				t.Errorf("%s: messages of one commit carry different times: %v", s.fixture, r.At)
			}
		}
		if got := events(f.sent.take(t, "other")); !slices.Equal(got, s.other) {
			t.Errorf("%s: the other repository's subscriber received %v, want %v", s.fixture, got, s.other)
		}
	}
}

// TestPublishReservation: a queued job that takes an idle runner changes the pool's
// idle count and names the runner.
func TestPublishReservation(t *testing.T) {
	f := newPublishFixture(t)
	ctx := context.Background()
	runner := &jobs.Runner{Name: "gpu-1", Pool: "gpu", State: jobs.RunnerIdle, UpdatedAt: time.Now().UTC()}
	if err := f.store.Commit(ctx, jobstest.CountNew(t, &jobs.Change{Runners: []*jobs.Runner{runner}})); err != nil {
		t.Fatal(err)
	}
	f.connect(t, "all")
	// testdata has no queued job with the gpu pool's labels: the in_progress fixture's
	// job, delivered as queued.
	payload, err := os.ReadFile(filepath.Join("..", "..", "testdata", "workflow_job.in_progress.json"))
	if err != nil {
		t.Fatal(err)
	}
	queued := strings.Replace(string(payload), `"action":"in_progress"`, `"action":"queued"`, 1)
	queued = strings.Replace(queued, `"status":"in_progress"`, `"status":"queued"`, 1)
	rec := &delivery.Record{
		Key: delivery.Key{HookID: "1", DeliveryID: "reserve"}, Event: "workflow_job", Action: "queued",
		Repository: "octo-org/example-workflow", ReceivedAt: time.Now().UTC(), Payload: []byte(queued), State: delivery.Received,
	}
	if _, err := f.store.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := f.proc.Process(ctx, delivery.Message{Key: rec.Key, Event: rec.Event}); err != nil {
		t.Fatal(err)
	}
	got := f.sent.take(t, "all")
	if want := []string{"workflow-job@repo:octo-org/example-workflow", "webhook-event@repo:octo-org/example-workflow", "pool-status@"}; !slices.Equal(events(got), want) {
		t.Fatalf("received %v, want %v", events(got), want)
	}
	status := got[2]
	for path, want := range map[string]string{"pool": "gpu", "pending": "0", "idle": "0", "runners": `[{"jobId":2832853555,"name":"gpu-1","state":"reserved"}]`} {
		v := field(t, status, path)
		b, _ := json.Marshal(v)
		if s, ok := v.(string); ok {
			b = []byte(s)
		}
		if string(b) != want {
			t.Errorf("pool-status %s = %s, want %s", path, b, want)
		}
	}
	if a := field(t, got[0], "job.allocation"); a != "reserved" {
		t.Errorf("job allocation %v, want reserved", a)
	}
}

// "applied" is the plan's, not a guess from the action: a repeated completed (an
// organisation's hook and a repository's hook both fire) did not move the job, and a
// queued whose payload already says in_progress (GitHub's status ran ahead of the
// action) did.
func TestPublishAppliedIsThePlans(t *testing.T) {
	read := func(t *testing.T, fixture string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", fixture))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	queuedInProgress := func(t *testing.T) string {
		return strings.Replace(read(t, "workflow_job.in_progress.json"), `"action":"in_progress"`, `"action":"queued"`, 1)
	}
	tests := []struct {
		name     string
		payloads []func(t *testing.T) string
		// the last delivery's workflow-job: action, job.status, transition.applied and
		// transition.outcomeCode
		action, status string
		applied        bool
		code           jobs.OutcomeCode
	}{
		{"completed twice", []func(*testing.T) string{
			func(t *testing.T) string { return read(t, "workflow_job.completed.json") },
			func(t *testing.T) string { return read(t, "workflow_job.completed.json") },
		}, "completed", "completed", false, jobs.OutcomeJobLate},
		{"completed once", []func(*testing.T) string{
			func(t *testing.T) string { return read(t, "workflow_job.completed.json") },
		}, "completed", "completed", true, jobs.OutcomeJobCompleted},
		{"queued with status in_progress", []func(*testing.T) string{queuedInProgress}, "queued", "in_progress", true, jobs.OutcomeJobUnmanaged},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newPublishFixture(t)
			f.connect(t, "all")
			for _, payload := range tc.payloads {
				f.sent.take(t, "all")
				f.deliverPayload(t, "workflow_job", "applied", []byte(payload(t)))
			}
			got := f.sent.take(t, "all")
			if len(got) == 0 || got[0].Event != live.EventWorkflowJob {
				t.Fatalf("received %v, want a workflow-job first", events(got))
			}
			for path, want := range map[string]any{"action": tc.action, "job.status": tc.status, "transition.applied": tc.applied,
				"transition.outcomeCode": string(tc.code)} {
				if v := field(t, got[0], path); v != want {
					t.Errorf("data.%s = %v, want %v", path, v, want)
				}
			}
		})
	}
}
