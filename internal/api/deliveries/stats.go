package deliveries

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/httpjson"
)

// Statistics windows, in hours.
const (
	defaultHours = 24
	maxHours     = 720 // 30 days: the default retention
)

// count is the counters of one event type or one hour. Pending is Total − Processed;
// Errors counts failed processing attempts, not deliveries.
type count struct {
	Total     int64 `json:"total"`
	Processed int64 `json:"processed"`
	Pending   int64 `json:"pending"`
	Errors    int64 `json:"errors"`
}

func (c *count) add(h delivery.HourlyCount) {
	c.Total += h.Total
	c.Processed += h.Processed
	c.Errors += h.Errors
	c.Pending = max(0, c.Total-c.Processed)
}

type eventCount struct {
	Event string `json:"event"`
	count
}

type hourCount struct {
	Hour time.Time `json:"hour"`
	count
	// QueueTime is the queue times of the jobs that started in the hour; null when none
	// did (or no job counters are kept).
	QueueTime *queueTime `json:"queueTime"`
}

// queueTime is an hour's queue-time quantiles, estimated from its fixed-bucket histogram
// (jobs.QueueTimeBounds): each is known to within its bucket.
type queueTime struct {
	Jobs       int64   `json:"jobs"`
	P50Seconds float64 `json:"p50Seconds"`
	P90Seconds float64 `json:"p90Seconds"`
}

type summary struct {
	TotalEvents      int64 `json:"totalEvents"`
	ProcessedEvents  int64 `json:"processedEvents"`
	PendingEvents    int64 `json:"pendingEvents"`
	ProcessingErrors int64 `json:"processingErrors"`
}

// statistics is the description's shape (timeWindow, summary, byEvent), with the exact
// window and the hours of it.
type statistics struct {
	TimeWindow string       `json:"timeWindow"`
	From       time.Time    `json:"from"`
	To         time.Time    `json:"to"`
	Summary    summary      `json:"summary"`
	ByEvent    []eventCount `json:"byEvent"`
	ByHour     []hourCount  `json:"byHour"`
	// JobConclusions counts the jobs completed in the window by conclusion (success,
	// failure, cancelled...).
	JobConclusions map[string]int64 `json:"jobConclusions"`
}

// window is the hours counted for "the last n hours": n whole UTC hours ending with
// the current one, which is still filling.
func window(now time.Time, hours int) (from, to time.Time) {
	to = delivery.Hour(now).Add(time.Hour)
	return to.Add(-time.Duration(hours) * time.Hour), to
}

// statistics serves GET /api/webhooks/statistics?hours=N: one read of the hourly
// counters (one Query per UTC day on DynamoDB), whatever the number of deliveries.
func (h *handlers) statistics(r *http.Request) (int, any, error) {
	p := httpjson.NewQuery(r)
	hours := p.Int("hours", defaultHours, 1, maxHours)
	if err := p.Err(); err != nil {
		return 0, nil, err
	}
	from, to := window(h.Now(), hours)
	counts, err := h.Counters.HourlyCounts(r.Context(), from, to)
	if err != nil {
		return 0, nil, h.unavailable(r, "store_unavailable", "the statistics store", err)
	}
	unit := "hours"
	if hours == 1 {
		unit = "hour"
	}
	st := statistics{TimeWindow: fmt.Sprintf("%d %s", hours, unit), From: from, To: to, ByEvent: byEvent(counts)}
	st.ByHour = make([]hourCount, hours)
	for i := range st.ByHour {
		st.ByHour[i].Hour = from.Add(time.Duration(i) * time.Hour)
	}
	for _, c := range counts {
		if i := int(c.Hour.Sub(from) / time.Hour); i >= 0 && i < hours {
			st.ByHour[i].add(c)
		}
	}
	for _, e := range st.ByEvent {
		st.Summary.TotalEvents += e.Total
		st.Summary.ProcessedEvents += e.Processed
		st.Summary.ProcessingErrors += e.Errors
	}
	st.Summary.PendingEvents = max(0, st.Summary.TotalEvents-st.Summary.ProcessedEvents)
	if err := h.addJobCounts(r, &st); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, st, nil
}

// addJobCounts adds the hourly job counters of the window (one more bounded read).
func (h *handlers) addJobCounts(r *http.Request, st *statistics) error {
	st.JobConclusions = map[string]int64{}
	if h.JobCounters == nil {
		return nil
	}
	counts, err := h.JobCounters.HourlyJobCounts(r.Context(), st.From, st.To)
	if err != nil {
		return h.unavailable(r, "store_unavailable", "the statistics store", err)
	}
	for _, c := range counts {
		for conclusion, n := range c.Conclusions {
			st.JobConclusions[conclusion] += n
		}
		i := int(c.Hour.Sub(st.From) / time.Hour)
		if n := c.Started(); n > 0 && i >= 0 && i < len(st.ByHour) {
			st.ByHour[i].QueueTime = &queueTime{Jobs: n,
				P50Seconds: c.QueueTimeQuantile(0.5).Seconds(), P90Seconds: c.QueueTimeQuantile(0.9).Seconds()}
		}
	}
	return nil
}

// byEvent sums counters per event, busiest first.
func byEvent(counts []delivery.HourlyCount) []eventCount {
	index := map[string]int{}
	out := []eventCount{}
	for _, c := range counts {
		i, ok := index[c.Event]
		if !ok {
			i = len(out)
			index[c.Event] = i
			out = append(out, eventCount{Event: c.Event})
		}
		out[i].add(c)
	}
	slices.SortFunc(out, func(a, b eventCount) int {
		return cmp.Or(cmp.Compare(b.Total, a.Total), cmp.Compare(a.Event, b.Event))
	})
	return out
}

// ---------------------------------------------------------------------------- health

// HealthLimits say when health reports degraded.
type HealthLimits struct {
	// MaxQueued deliveries may wait for processing before it is a backlog (default 1000).
	MaxQueued int64
	// MaxDead dead-lettered deliveries are tolerated (default 0: any is a problem).
	MaxDead int64
	// MaxEventAge without any delivery, after an earlier one, is suspicious: GitHub
	// stopped sending, or its deliveries are refused (default 24 hours). Never having
	// received one is not.
	MaxEventAge time.Duration
}

func (l HealthLimits) withDefaults() HealthLimits {
	if l.MaxQueued <= 0 {
		l.MaxQueued = 1000
	}
	if l.MaxEventAge <= 0 {
		l.MaxEventAge = 24 * time.Hour
	}
	return l
}

// Health statuses.
const (
	statusHealthy  = "healthy"
	statusDegraded = "degraded"
)

// health is the description's shape (status, recentEvents, lastEventTime, hourlyStats)
// with the reasons for a degraded status and the queue depths. It is public, so it holds
// counts per event type and nothing that names a repository.
type health struct {
	Status  string   `json:"status"`
	Reasons []string `json:"reasons"`
	// RecentEvents and HourlyStats cover the previous UTC hour and the current one.
	RecentEvents  int64        `json:"recentEvents"`
	LastEventTime *time.Time   `json:"lastEventTime"`
	HourlyStats   []eventCount `json:"hourlyStats"`
	Queue         *queueDepths `json:"queue,omitempty"`
	CheckedAt     time.Time    `json:"checkedAt"`
}

type queueDepths struct {
	Queued       int64 `json:"queued"`
	DeadLettered int64 `json:"deadLettered"`
}

// health serves GET /api/webhooks/health: the counters of two hours, a one-delivery
// listing of the last MaxEventAge and the queue depths; a read that fails is a reason,
// not an error, so the answer is always 200 and says what it could not check.
func (h *handlers) health(r *http.Request) (int, any, error) {
	ctx := r.Context()
	now := h.Now()
	out := health{Status: statusHealthy, Reasons: []string{}, HourlyStats: []eventCount{}, CheckedAt: now.UTC().Truncate(time.Millisecond)}
	problem := func(format string, args ...any) {
		out.Status = statusDegraded
		out.Reasons = append(out.Reasons, fmt.Sprintf(format, args...))
	}

	from, to := window(now, 2)
	if counts, err := h.Counters.HourlyCounts(ctx, from, to); err != nil {
		h.Log.ErrorContext(ctx, "health: reading counters failed", "error", err)
		problem("store errors: the hourly counters could not be read")
	} else {
		out.HourlyStats = byEvent(counts)
		for _, e := range out.HourlyStats {
			out.RecentEvents += e.Total
		}
	}

	// The newest delivery kept, however old: an installation that never received one
	// (or none within the retention) is new or idle, not failing; one whose deliveries
	// stopped is suspicious. On an active installation this is one read of today's
	// index; a quiet one walks back one read per empty day, at most the retention.
	last, err := h.Lister.List(ctx, delivery.ListQuery{Since: now.Add(-h.Retention), Until: now.Add(untilMargin), Limit: 1})
	switch {
	case err != nil:
		h.Log.ErrorContext(ctx, "health: listing deliveries failed", "error", err)
		problem("store errors: the latest delivery could not be read")
	case len(last.Records) == 1:
		out.LastEventTime = &last.Records[0].ReceivedAt
		if age := now.Sub(last.Records[0].ReceivedAt); age > h.Health.MaxEventAge {
			problem("last event age: no delivery received in the last %s (the last at %s)",
				hoursText(h.Health.MaxEventAge), last.Records[0].ReceivedAt.UTC().Format(time.RFC3339))
		}
	}
	for _, r := range h.Failures.reasons(now) {
		problem("%s", r)
	}

	if d, err := h.DeadLetters.Depths(ctx); err != nil {
		h.Log.ErrorContext(ctx, "health: reading queue depths failed", "error", err)
		problem("queue errors: the queue depths could not be read")
	} else {
		out.Queue = &queueDepths{Queued: d.Queued, DeadLettered: d.Dead}
		if d.Queued > h.Health.MaxQueued {
			problem("queue backlog: %d deliveries wait for processing (more than %d)", d.Queued, h.Health.MaxQueued)
		}
		if d.Dead > h.Health.MaxDead {
			problem("dead-letter queue: %d deliveries failed repeatedly; fix the cause, then POST /api/webhooks/dlq/replay", d.Dead)
		}
	}
	if h.GivenUp != nil {
		n, err := h.GivenUp(ctx)
		switch {
		case err != nil:
			h.Log.ErrorContext(ctx, "health: reading given-up deliveries failed", "error", err)
			problem("store errors: the reconciler's checkpoints could not be read")
		case n > 0:
			problem("deliveries given up: %d deliveries never arrived although redelivered; see webhook_deliveries_given_up_total and the reconciler's log", n)
		}
	}
	if h.Problems != nil {
		reasons, err := h.Problems(ctx)
		if err != nil {
			h.Log.ErrorContext(ctx, "health: reading the provisioner's JIT failures failed", "error", err)
			problem("store errors: the provisioner's JIT failures could not be read")
		}
		for _, r := range reasons {
			problem("%s", r)
		}
	}
	return http.StatusOK, out, nil
}

// hoursText says a duration the way people do: "24 hours", "90 minutes".
func hoursText(d time.Duration) string {
	switch {
	case d == time.Hour:
		return "hour"
	case d%time.Hour == 0:
		return fmt.Sprintf("%d hours", d/time.Hour)
	default:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
}
