package jobs_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/testenv"
)

// A job's queue time is counted once, when it starts after RunnerHub saw it queued, and
// its conclusion once, when it completes, whatever order and repetition the events come
// in; a queued event that arrives after the start tells no wait and counts none.
func TestPlanCountsQueueTimeAndConclusion(t *testing.T) {
	type event struct {
		status string
		at     time.Duration // after t0: when RunnerHub receives it, and its started/completed_at
	}
	queued, started, completed := event{"queued", 0}, event{"in_progress", 90 * time.Second}, event{"completed", 5 * time.Minute}
	tests := []struct {
		name   string
		events []event
		// cancelled: no runner ever takes the job (GitHub's started_at stays its creation time).
		cancelled   bool
		queueTimes  string
		conclusions string
	}{
		{"in order", []event{queued, started, completed}, false, "[{1 2026-03-01 12:01:30 +0000 UTC 1m30s}]", "[{1 2026-03-01 12:05:00 +0000 UTC failure}]"},
		{"repeated", []event{queued, queued, started, started, completed, completed}, false, "[{1 2026-03-01 12:01:30 +0000 UTC 1m30s}]", "[{1 2026-03-01 12:05:00 +0000 UTC failure}]"},
		{"no in_progress", []event{queued, completed}, false, "[{1 2026-03-01 12:05:00 +0000 UTC 5m0s}]", "[{1 2026-03-01 12:05:00 +0000 UTC failure}]"},
		{"queued late", []event{started, {"queued", 2 * time.Minute}, completed}, false, "[]", "[{1 2026-03-01 12:05:00 +0000 UTC failure}]"},
		{"completed first", []event{completed, queued, started}, false, "[]", "[{1 2026-03-01 12:05:00 +0000 UTC failure}]"},
		{"cancelled while queued", []event{queued, {"completed", 5 * time.Minute}}, true, "[]", "[{1 2026-03-01 12:05:00 +0000 UTC cancelled}]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t)
			var queueTimes []jobs.QueueTime
			var conclusions []jobs.Concluded
			for i, ev := range tc.events {
				at := t0.Add(ev.at)
				job := testenv.Job{ID: 1, Labels: []string{"linux"}, Status: ev.status, Runner: "r1", Conclusion: "failure", Created: t0, At: at}
				if tc.cancelled {
					job.Runner, job.Conclusion = "", "cancelled"
				}
				body := testenv.JobPayload(t, job)
				rec := &delivery.Record{Key: delivery.Key{HookID: "1", DeliveryID: fmt.Sprint(i)}, Event: "workflow_job",
					Action: ev.status, Payload: body, ReceivedAt: at}
				plan, err := e.Plan(t.Context(), rec)
				if err != nil {
					t.Fatal(err)
				}
				commit(t, e, &plan.Change)
				queueTimes = append(queueTimes, plan.Change.QueueTimes...)
				conclusions = append(conclusions, plan.Change.Conclusions...)
			}
			if got := fmt.Sprint(queueTimes); got != tc.queueTimes {
				t.Errorf("queue times %s, want %s", got, tc.queueTimes)
			}
			if got := fmt.Sprint(conclusions); got != tc.conclusions {
				t.Errorf("conclusions %s, want %s", got, tc.conclusions)
			}
		})
	}
}

func TestQueueTimeQuantile(t *testing.T) {
	hour := func(buckets map[time.Duration]int64) jobs.HourlyJobCount {
		var c jobs.HourlyJobCount
		for wait, n := range buckets {
			c.QueueTimes[jobs.QueueTimeBucket(wait)] += n
		}
		return c
	}
	tests := []struct {
		name     string
		count    jobs.HourlyJobCount
		p50, p90 time.Duration
	}{
		{"no job", hour(nil), 0, 0},
		// One job in (30s, 1m]: the median is halfway through the bucket.
		{"one job", hour(map[time.Duration]int64{40 * time.Second: 1}), 45 * time.Second, 57 * time.Second},
		// Nine quick jobs and one slow one: p50 among the quick, p90 at the end of them.
		{"a slow tail", hour(map[time.Duration]int64{time.Second: 9, 40 * time.Minute: 1}), 555555555, time.Second},
		// Past the last bound the estimate stops at that bound.
		{"open-ended bucket", hour(map[time.Duration]int64{24 * time.Hour: 2}), 6 * time.Hour, 6 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.count.QueueTimeQuantile(0.5); got != tc.p50 {
				t.Errorf("p50 = %v, want %v", got, tc.p50)
			}
			if got := tc.count.QueueTimeQuantile(0.9); got != tc.p90 {
				t.Errorf("p90 = %v, want %v", got, tc.p90)
			}
		})
	}
}
