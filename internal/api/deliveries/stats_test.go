package deliveries_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/api/deliveries"
	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/ingest"
	"github.com/runnerhub/webhooks/internal/jobs"
)

type counts struct {
	Total     int64 `json:"total"`
	Processed int64 `json:"processed"`
	Pending   int64 `json:"pending"`
	Errors    int64 `json:"errors"`
}

type eventCounts struct {
	Event string `json:"event"`
	counts
}

type statistics struct {
	TimeWindow string    `json:"timeWindow"`
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	Summary    struct {
		TotalEvents      int64 `json:"totalEvents"`
		ProcessedEvents  int64 `json:"processedEvents"`
		PendingEvents    int64 `json:"pendingEvents"`
		ProcessingErrors int64 `json:"processingErrors"`
	} `json:"summary"`
	ByEvent []eventCounts `json:"byEvent"`
	ByHour  []struct {
		Hour time.Time `json:"hour"`
		counts
		QueueTime *struct {
			Jobs       int64   `json:"jobs"`
			P50Seconds float64 `json:"p50Seconds"`
			P90Seconds float64 `json:"p90Seconds"`
		} `json:"queueTime"`
	} `json:"byHour"`
	JobConclusions map[string]int64 `json:"jobConclusions"`
}

var recorded atomic.Int64

// record creates a delivery of event received at, processed or not.
func record(t *testing.T, e *env, event string, at time.Time, processed bool) *delivery.Record {
	t.Helper()
	rec := &delivery.Record{
		Key:   delivery.Key{HookID: "7", DeliveryID: newID(int(recorded.Add(1)))},
		Event: event, Repository: "octo-org/secret-project", ReceivedAt: at, Payload: []byte(`{}`), State: delivery.Received,
	}
	if processed { // recorded finished, as the processor would have left it
		rec.State, rec.Outcome, rec.ProcessedAt = delivery.Processed, "processed", at.Add(time.Second)
	}
	if _, err := e.store.Create(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestStatistics(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		hour := e.now.Truncate(time.Hour)
		at := func(hoursAgo int, minute int) time.Time {
			return hour.Add(time.Duration(-hoursAgo)*time.Hour + time.Duration(minute)*time.Minute + time.Duration(hoursAgo)*time.Millisecond)
		}
		record(t, e, "workflow_job", at(0, 0), true)
		record(t, e, "workflow_job", at(0, 1), false)
		record(t, e, "workflow_job", at(0, 2), false)
		record(t, e, "push", at(0, 3), true)
		record(t, e, "workflow_job", at(1, 10), false)
		record(t, e, "workflow_job", at(1, 20), false)
		record(t, e, "pull_request", at(5, 30), false)
		for i := range 4 {
			record(t, e, "workflow_run", at(30, i), true)
		}
		for range 2 {
			if err := e.store.CountError(t.Context(), "workflow_job", at(0, 1)); err != nil {
				t.Fatal(err)
			}
		}

		var st statistics
		e.call(t, "GET", "/api/webhooks/statistics", "").ok(t, http.StatusOK, &st)
		if st.TimeWindow != "24 hours" || !st.From.Equal(hour.Add(-23*time.Hour)) || !st.To.Equal(hour.Add(time.Hour)) {
			t.Errorf("window %q from %v to %v; want 24 hours from %v to %v", st.TimeWindow, st.From, st.To, hour.Add(-23*time.Hour), hour.Add(time.Hour))
		}
		s := st.Summary
		if s.TotalEvents != 7 || s.ProcessedEvents != 2 || s.PendingEvents != 5 || s.ProcessingErrors != 2 {
			t.Errorf("summary %+v, want 7 total, 2 processed, 5 pending, 2 errors", s)
		}
		wantEvents := []eventCounts{
			{"workflow_job", counts{Total: 5, Processed: 1, Pending: 4, Errors: 2}},
			{"pull_request", counts{Total: 1, Pending: 1}},
			{"push", counts{Total: 1, Processed: 1}},
		}
		if !equalEvents(st.ByEvent, wantEvents) {
			t.Errorf("byEvent %+v, want %+v (busiest first, then by name)", st.ByEvent, wantEvents)
		}
		if len(st.ByHour) != 24 {
			t.Fatalf("%d hours, want 24", len(st.ByHour))
		}
		for i, h := range st.ByHour {
			want := map[int]int64{23: 4, 22: 2, 18: 1}[i]
			if !h.Hour.Equal(st.From.Add(time.Duration(i)*time.Hour)) || h.Total != want {
				t.Errorf("hour %d: %v total %d, want %v total %d", i, h.Hour, h.Total, st.From.Add(time.Duration(i)*time.Hour), want)
			}
		}

		e.call(t, "GET", "/api/webhooks/statistics?hours=48", "").ok(t, http.StatusOK, &st)
		if st.TimeWindow != "48 hours" || st.Summary.TotalEvents != 11 || st.ByEvent[1].Event != "workflow_run" {
			t.Errorf("48 hours: %q, %d total, byEvent %+v; want the 4 workflow_run of 30 hours ago too", st.TimeWindow, st.Summary.TotalEvents, st.ByEvent)
		}
		e.call(t, "GET", "/api/webhooks/statistics?hours=1", "").ok(t, http.StatusOK, &st)
		if st.TimeWindow != "1 hour" || st.Summary.TotalEvents != 4 || len(st.ByHour) != 1 {
			t.Errorf("1 hour: %q, %d total, %d hours; want this hour's 4", st.TimeWindow, st.Summary.TotalEvents, len(st.ByHour))
		}
		e.call(t, "GET", "/api/webhooks/statistics?hours=720&unknown=1", "").ok(t, http.StatusOK, nil)

		for _, q := range []string{"hours=0", "hours=721", "hours=-1", "hours=1.5", "hours=day", "hours=", "hours=1&hours=2"} {
			e.call(t, "GET", "/api/webhooks/statistics?"+q, "").failed(t, http.StatusBadRequest, "invalid_parameter", "hours")
		}
		e.call(t, "GET", "/api/webhooks/statistics?hours=0", "").failed(t, http.StatusBadRequest, "invalid_parameter", "1 to 720")
		e.send(t, "GET", "/api/webhooks/statistics", "", false).failed(t, http.StatusUnauthorized, "unauthorized")
	})
}

// The statistics show each hour's queue-time p50 and p90 and the window's jobs by
// conclusion from the job counters that commits keep, not from the jobs.
func TestStatisticsJobFigures(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		hour := e.now.Truncate(time.Hour)
		var queueTimes []jobs.QueueTime
		// This hour: nine jobs that waited a second, one that waited 40 minutes.
		for i := range 10 {
			wait := time.Second
			if i == 9 {
				wait = 40 * time.Minute
			}
			queueTimes = append(queueTimes, jobs.QueueTime{JobID: int64(i + 1), StartedAt: hour.Add(time.Minute), Wait: wait})
		}
		// Two hours ago: one job in (30s, 1m]; 30 hours ago, outside the window: one more.
		queueTimes = append(queueTimes, jobs.QueueTime{JobID: 11, StartedAt: hour.Add(-2 * time.Hour), Wait: 40 * time.Second},
			jobs.QueueTime{JobID: 12, StartedAt: hour.Add(-30 * time.Hour), Wait: time.Second})
		conclusions := []jobs.Concluded{
			{JobID: 1, CompletedAt: hour.Add(2 * time.Minute), Conclusion: "success"},
			{JobID: 2, CompletedAt: hour.Add(-time.Hour), Conclusion: "success"},
			{JobID: 3, CompletedAt: hour.Add(-3 * time.Hour), Conclusion: "failure"},
			{JobID: 4, CompletedAt: hour.Add(-30 * time.Hour), Conclusion: "cancelled"},
		}
		if err := e.store.Commit(t.Context(), &jobs.Change{QueueTimes: queueTimes, Conclusions: conclusions}); err != nil {
			t.Fatal(err)
		}

		var st statistics
		e.call(t, "GET", "/api/webhooks/statistics", "").ok(t, http.StatusOK, &st)
		if got := fmt.Sprint(st.JobConclusions); got != "map[failure:1 success:2]" {
			t.Errorf("jobConclusions %s, want 2 success and 1 failure (the cancelled job is outside the window)", got)
		}
		for i, h := range st.ByHour {
			var got string
			if q := h.QueueTime; q != nil {
				got = fmt.Sprintf("%d jobs, p50 %.2fs, p90 %.2fs", q.Jobs, q.P50Seconds, q.P90Seconds)
			}
			want := map[int]string{23: "10 jobs, p50 0.56s, p90 1.00s", 21: "1 jobs, p50 45.00s, p90 57.00s"}[i]
			if got != want {
				t.Errorf("hour %d queueTime %q, want %q", i, got, want)
			}
		}
	})
}

func equalEvents(got, want []eventCounts) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// health asks without a token, as a load balancer or uptime check would.
func (e *env) health(t *testing.T) deliveries.Health {
	t.Helper()
	var h deliveries.Health
	a := e.send(t, "GET", "/api/webhooks/health", "", false)
	a.ok(t, http.StatusOK, &h)
	if strings.Contains(a.Body, "octo-org") || strings.Contains(a.Body, "secret-project") {
		t.Errorf("health names a repository: %s", a.Body)
	}
	return h
}

// queued is the queue.queued of a decoded health answer (nil when it has none).
func queued(wire map[string]any) any {
	q, _ := wire["queue"].(map[string]any)
	return q["queued"]
}

// degradedBy checks that h is degraded for reasons that mention each of words.
func degradedBy(t *testing.T, h deliveries.Health, words ...string) {
	t.Helper()
	if h.Status != "degraded" {
		t.Errorf("status %q, want degraded: %v", h.Status, h.Reasons)
	}
	for _, w := range words {
		found := false
		for _, r := range h.Reasons {
			found = found || strings.Contains(r, w)
		}
		if !found {
			t.Errorf("reasons %q do not mention %q", h.Reasons, w)
		}
	}
}

func TestHealth(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		// A fresh installation has received nothing yet: that is not degraded.
		t.Run("NoDeliveriesEver", func(t *testing.T) {
			h := e.health(t)
			if h.Status != "healthy" || len(h.Reasons) != 0 || h.LastEventTime != nil || h.RecentEvents != 0 || len(h.HourlyStats) != 0 {
				t.Errorf("%+v, want healthy with no reasons", h)
			}
		})

		// Deliveries that stopped are.
		stale := record(t, e, "push", e.now.Add(-30*time.Hour).Truncate(time.Millisecond), true)
		t.Run("NoDeliveryFor24Hours", func(t *testing.T) {
			h := e.health(t)
			degradedBy(t, h, "last event age", "24 hours", stale.ReceivedAt.UTC().Format(time.RFC3339))
			if h.LastEventTime == nil || !h.LastEventTime.Equal(stale.ReceivedAt) {
				t.Errorf("lastEventTime %v, want %v", h.LastEventTime, stale.ReceivedAt)
			}
		})

		last := record(t, e, "workflow_job", e.now.Add(-10*time.Minute).Truncate(time.Millisecond), false)
		record(t, e, "push", e.now.Add(-20*time.Minute), true)
		record(t, e, "push", e.now.Add(-3*time.Hour), true) // not recent
		e.drain(t)

		t.Run("Healthy", func(t *testing.T) {
			// The description's fields (status, recentEvents, lastEventTime, hourlyStats)
			// and the others, by their JSON names.
			var wire map[string]any
			e.send(t, "GET", "/api/webhooks/health", "", false).ok(t, http.StatusOK, &wire)
			want := map[string]any{
				"status": "healthy", "reasons": []any{}, "recentEvents": 2.0, "lastEventTime": last.ReceivedAt,
				"hourlyStats": []any{
					map[string]any{"event": "push", "total": 1.0, "processed": 1.0, "pending": 0.0, "errors": 0.0},
					map[string]any{"event": "workflow_job", "total": 1.0, "processed": 0.0, "pending": 1.0, "errors": 0.0},
				},
				// Only the name of queued: what the embedded queue counts as queued includes
				// messages received but not yet deleted.
				"queue":     map[string]any{"queued": queued(wire), "deadLettered": 0.0},
				"checkedAt": e.now.Truncate(time.Millisecond),
			}
			if !sameFields(wire, want) {
				t.Errorf("health %v, want %v", wire, want)
			}
			h := e.health(t)
			if h.Status != "healthy" || len(h.Reasons) != 0 || h.Queue == nil || h.Queue.DeadLettered != 0 {
				t.Errorf("%+v, want healthy with no reasons and an empty dead-letter queue", h)
			}
			if h.LastEventTime == nil || !h.LastEventTime.Equal(last.ReceivedAt) {
				t.Errorf("lastEventTime %v, want %v", h.LastEventTime, last.ReceivedAt)
			}
			// The previous hour and this one hold the deliveries of 10 and 20 minutes ago,
			// not the one of 3 hours ago.
			if h.RecentEvents != 2 {
				t.Errorf("recentEvents %d, want 2", h.RecentEvents)
			}
		})

		t.Run("Backlog", func(t *testing.T) {
			e.deps.Health.MaxQueued = 1
			e.rebuild(t)
			defer func() { e.deps.Health.MaxQueued = 0; e.rebuild(t) }()
			for range 3 {
				rec := record(t, e, "workflow_job", e.now.Add(-time.Minute), false)
				if err := e.deps.Queue.Enqueue(t.Context(), delivery.Message{Key: rec.Key, Event: rec.Event}); err != nil {
					t.Fatal(err)
				}
			}
			degradedBy(t, e.health(t), "queue backlog", "more than 1")
			e.drain(t)
		})

		t.Run("DeadLetters", func(t *testing.T) {
			e.deadLetter(t, delivery.Message{Key: last.Key, Event: last.Event})
			h := e.health(t)
			degradedBy(t, h, "dead-letter queue: 1 deliveries")
			if h.Queue == nil || h.Queue.DeadLettered != 1 {
				t.Errorf("queue %+v, want 1 dead-lettered", h.Queue)
			}
		})
	})
}

// TestHealthSeesWriteFailures: when the store or the queue fails a delivery's write,
// ingest answers 503 and health says degraded, naming what failed, for the failure
// window after the last failure; then healthy again.
func TestHealthSeesWriteFailures(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		for _, c := range []struct {
			name   string
			break_ func(ing *ingest.Handler)
			code   string
			reason string
		}{
			{"store", func(ing *ingest.Handler) { ing.Store = failing{} }, "store_unavailable", "store errors: writes of deliveries failed 2 times"},
			{"queue", func(ing *ingest.Handler) { ing.Queue = failing{} }, "queue_unavailable", "queue errors: sends to the events queue failed 2 times"},
		} {
			t.Run(c.name, func(t *testing.T) {
				broken := *e
				now := e.now
				broken.deps.Now = func() time.Time { return now }
				failures := &deliveries.WriteFailures{Now: func() time.Time { return now }}
				built := e.deps.Ingest.(*ingest.Handler)
				ing := &ingest.Handler{Parser: built.Parser, Store: built.Store, Queue: built.Queue, MaxBodyBytes: built.MaxBodyBytes, Log: built.Log, Now: built.Now}
				c.break_(ing)
				ing.Store, ing.Queue = failures.Store(ing.Store), failures.Queue(ing.Queue)
				broken.deps.Ingest, broken.deps.Failures = ing, failures
				broken.rebuild(t)
				if h := broken.health(t); h.Status != "healthy" {
					t.Fatalf("before any failure: %+v, want healthy", h)
				}
				for range 2 {
					broken.call(t, "POST", "/api/webhooks/test", `{"eventType": "push"}`).failed(t, http.StatusServiceUnavailable, c.code)
				}
				now = now.Add(deliveries.DefaultFailureWindow) // the window runs from the last failure
				degradedBy(t, broken.health(t), c.reason, "5 minutes")
				now = now.Add(time.Second)
				if h := broken.health(t); h.Status != "healthy" || len(h.Reasons) != 0 {
					t.Errorf("after the window: %+v, want healthy", h)
				}
			})
		}
	})
}

// failing stands in for every port and fails, with an error that names things no
// answer may show.
type failing struct{}

var errBackend = errors.New("operation error DynamoDB: Query, arn:aws:dynamodb:us-east-1:123456789012:table/runnerhub-EventsTable: throttled")

func (failing) Create(context.Context, *delivery.Record) (*delivery.Record, error) {
	return nil, errBackend
}
func (failing) Get(context.Context, delivery.Key) (*delivery.Record, error) { return nil, errBackend }
func (failing) MarkRedelivered(context.Context, delivery.Key) error         { return errBackend }
func (failing) List(context.Context, delivery.ListQuery) (delivery.Page, error) {
	return delivery.Page{}, errBackend
}
func (failing) HourlyCounts(context.Context, time.Time, time.Time) ([]delivery.HourlyCount, error) {
	return nil, errBackend
}
func (failing) CountError(context.Context, string, time.Time) error { return errBackend }
func (failing) Enqueue(context.Context, delivery.Message) error     { return errBackend }
func (failing) Depths(context.Context) (delivery.Depths, error)     { return delivery.Depths{}, errBackend }
func (failing) Redrive(context.Context) (int, error)                { return 0, errBackend }

// Store and queue failures are 503s that name what failed and nothing of its details;
// health stays 200 and says what it could not check.
func TestBackendFailures(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		rec := record(t, e, "workflow_job", e.now.Add(-time.Minute), false)
		id := "7:" + rec.DeliveryID
		cases := []struct {
			name         string
			break_       func(d *env)
			method, path string
			code         string
		}{
			{"list", func(d *env) { d.deps.Lister = failing{} }, "GET", "/api/webhooks/events", "store_unavailable"},
			{"get", func(d *env) { d.deps.Store = failing{} }, "GET", "/api/webhooks/events/" + id, "store_unavailable"},
			{"replay, store", func(d *env) { d.deps.Store = failing{} }, "POST", "/api/webhooks/events/" + id + "/replay", "store_unavailable"},
			{"replay, queue", func(d *env) { d.deps.Queue = failing{} }, "POST", "/api/webhooks/events/" + id + "/replay", "queue_unavailable"},
			{"dlq replay", func(d *env) { d.deps.DeadLetters = failing{} }, "POST", "/api/webhooks/dlq/replay", "queue_unavailable"},
			{"statistics", func(d *env) { d.deps.Counters = failing{} }, "GET", "/api/webhooks/statistics", "store_unavailable"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				broken := *e
				c.break_(&broken)
				broken.rebuild(t)
				a := broken.call(t, c.method, c.path, "")
				a.failed(t, http.StatusServiceUnavailable, c.code, "unavailable")
				if strings.Contains(a.Body, "arn:") || strings.Contains(a.Body, "DynamoDB") {
					t.Errorf("the answer shows the backend's error: %s", a.Body)
				}
			})
		}
		t.Run("health", func(t *testing.T) {
			broken := *e
			broken.deps.Lister, broken.deps.Counters, broken.deps.DeadLetters = failing{}, failing{}, failing{}
			broken.rebuild(t)
			h := broken.health(t)
			degradedBy(t, h, "store errors: the hourly counters", "store errors: the latest delivery", "queue errors")
			if h.Queue != nil {
				t.Errorf("queue depths %+v reported although they could not be read", h.Queue)
			}
		})
	})
}
