package jobstest

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/testenv/suite"
)

// CountersSuite runs every behaviour delivery.Counters and jobs.Counters promise, and
// the counting that delivery.Store and jobs.Store do on write, against fresh stores from newStores. Every
// subtest counts events of its own (made-up event names in hours long past), so
// newStores may hand out the same stores each time.
func CountersSuite(t *testing.T, newStores func(t *testing.T) Stores) {
	suite.Run(t, newStores, suite.Cases[Stores]{
		{"CreateCountsTotalOnce", testCreateCountsTotalOnce},
		{"CreateFinishedCountsProcessed", testCreateFinishedCountsProcessed},
		{"ChangeFinishCountsProcessedOnce", testChangeFinishCountsProcessedOnce},
		{"ConflictCountsNothing", testConflictCountsNothing},
		{"CountError", testCountError},
		{"HourlyCountsRange", testHourlyCountsRange},
		{"JobCounts", testJobCounts},
		{"JobCountsConflictCountsNothing", testJobCountsConflict},
	})
}

// counting is one subtest's event and hour, neither shared with any other subtest.
type counting struct {
	event string
	hour  time.Time // an hour between 2001 and 2018
}

func newCounting() *counting {
	var b [4]byte
	rand.Read(b[:]) // never fails since Go 1.24
	hours := time.Duration(binary.BigEndian.Uint32(b[:]) % 150_000)
	return &counting{
		event: newName("event"),
		hour:  time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).Add(hours * time.Hour),
	}
}

// at is a time in the nth hour after c.hour, in a zone other than UTC: the hour it is
// counted in must be the UTC hour.
func (c *counting) at(n int, within time.Duration) time.Time {
	return c.hour.Add(time.Duration(n)*time.Hour + within).In(zone)
}

// create records a delivery of c's event received at receivedAt.
func (c *counting) create(t *testing.T, s delivery.Store, receivedAt time.Time) *delivery.Record {
	t.Helper()
	rec := newDelivery(c.event, receivedAt)
	mustCreate(t, s, rec)
	return rec
}

// count is the counters of c's event in its nth hour.
func (c *counting) count(n int, total, processed, errs int64) delivery.HourlyCount {
	return delivery.HourlyCount{Hour: c.hour.Add(time.Duration(n) * time.Hour), Event: c.event,
		Total: total, Processed: processed, Errors: errs}
}

// check compares the counters of c's event in hours [first, first+hours) of c with want.
func (c *counting) check(t *testing.T, s delivery.Counters, what string, first, hours int, want ...delivery.HourlyCount) {
	t.Helper()
	from := c.hour.Add(time.Duration(first) * time.Hour)
	checkCounts(t, what, eventCounts(t, s, c.event, from, from.Add(time.Duration(hours)*time.Hour)), want...)
}

// eventCounts returns the counters of event in [from, to), checking on the way that
// everything HourlyCounts returns, of any event, is in range and oldest first.
func eventCounts(t *testing.T, s delivery.Counters, event string, from, to time.Time) []delivery.HourlyCount {
	t.Helper()
	all, err := s.HourlyCounts(t.Context(), from, to)
	if err != nil {
		t.Fatalf("HourlyCounts: %v", err)
	}
	var out []delivery.HourlyCount
	for i, hc := range all {
		if hc.Hour.Before(from) || !hc.Hour.Before(to) || !hc.Hour.Equal(delivery.Hour(hc.Hour)) || hc.Hour.Location() != time.UTC {
			t.Errorf("HourlyCounts [%v, %v): hour %v is not a UTC hour in range", from, to, hc.Hour)
		}
		if i > 0 && hc.Hour.Before(all[i-1].Hour) {
			t.Errorf("HourlyCounts: hour %v after %v, want oldest first", hc.Hour, all[i-1].Hour)
		}
		if hc.Event == event {
			out = append(out, hc)
		}
	}
	return out
}

func checkCounts(t *testing.T, what string, got []delivery.HourlyCount, want ...delivery.HourlyCount) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: counters\n %v\nwant\n %v", what, got, want)
	}
}

func testCreateCountsTotalOnce(t *testing.T, s Stores) {
	c := newCounting()
	// The last millisecond of the hour, in another zone: still counted in that UTC hour.
	first := c.create(t, s.Deliveries, c.at(0, time.Hour-time.Millisecond))
	c.check(t, s.Counters, "after one Create", 0, 2, c.count(0, 1, 0, 0))

	again := newDelivery(c.event, c.at(1, 0))
	again.Key = first.Key
	if existing, err := s.Deliveries.Create(t.Context(), again); err != nil || existing == nil {
		t.Fatalf("Create of a recorded delivery: existing %v, err %v", existing, err)
	}
	c.check(t, s.Counters, "after a duplicate Create", 0, 2, c.count(0, 1, 0, 0))

	c.create(t, s.Deliveries, c.at(0, 0))
	c.create(t, s.Deliveries, c.at(1, 0))
	c.check(t, s.Counters, "after more Creates", 0, 2, c.count(0, 2, 0, 0), c.count(1, 1, 0, 0))
}

// A delivery recorded finished is never pending: it counts as processed at once.
func testCreateFinishedCountsProcessed(t *testing.T, s Stores) {
	c := newCounting()
	rec := newDelivery(c.event, c.at(0, time.Minute))
	rec.State, rec.Outcome, rec.ProcessedAt = delivery.Ignored, "ignored: recorded finished", rec.ReceivedAt
	mustCreate(t, s.Deliveries, rec)
	c.check(t, s.Counters, "after Create", 0, 1, c.count(0, 1, 1, 0))
}

// The processed count goes to the hour the delivery was received in, not finished in.
func testChangeFinishCountsProcessedOnce(t *testing.T, s Stores) {
	c := newCounting()
	rec := c.create(t, s.Deliveries, c.at(0, time.Minute))
	fin := finishOf(rec, delivery.Processed, "processed")
	fin.At = c.at(1, time.Minute)
	mustCommit(t, s.Jobs, &jobs.Change{Finish: fin})
	c.check(t, s.Counters, "after Commit", 0, 2, c.count(0, 1, 1, 0))

	commitConflict(t, s.Jobs, &jobs.Change{Finish: fin})
	c.check(t, s.Counters, "after a second Commit", 0, 2, c.count(0, 1, 1, 0))
}

func testConflictCountsNothing(t *testing.T, s Stores) {
	c := newCounting()
	rec := c.create(t, s.Deliveries, c.at(0, time.Minute))
	stale := &jobs.Runner{Name: newName("runner"), State: jobs.RunnerIdle, Version: 1} // never stored
	fin := finishOf(rec, delivery.Processed, "processed")
	commitConflict(t, s.Jobs, &jobs.Change{Runners: []*jobs.Runner{stale}, Finish: fin})
	c.check(t, s.Counters, "after a conflicting Commit", 0, 1, c.count(0, 1, 0, 0))

	mustCommit(t, s.Jobs, &jobs.Change{Finish: fin})
	c.check(t, s.Counters, "after the Commit again", 0, 1, c.count(0, 1, 1, 0))
}

func testCountError(t *testing.T, s Stores) {
	c := newCounting()
	countError := func(receivedAt time.Time) {
		t.Helper()
		if err := s.Counters.CountError(t.Context(), c.event, receivedAt); err != nil {
			t.Fatalf("CountError: %v", err)
		}
	}
	countError(c.at(0, time.Minute))
	countError(c.at(0, time.Hour-time.Millisecond))
	countError(c.at(1, 0))
	c.check(t, s.Counters, "after CountError", 0, 2, c.count(0, 0, 0, 2), c.count(1, 0, 0, 1))
	c.create(t, s.Deliveries, c.at(0, 0))
	c.check(t, s.Counters, "after Create", 0, 2, c.count(0, 1, 0, 2), c.count(1, 0, 0, 1))
}

// Counters in hours 0, 1, 3 and 4 of one event and hour 1 of another, read in [1, 4).
func testHourlyCountsRange(t *testing.T, s Stores) {
	c := newCounting()
	other := &counting{event: newName("event"), hour: c.hour}
	for _, n := range []int{0, 1, 1, 3, 4} {
		c.create(t, s.Deliveries, c.at(n, time.Duration(n)*time.Minute))
	}
	rec := other.create(t, s.Deliveries, other.at(1, 59*time.Minute))
	mustCommit(t, s.Jobs, &jobs.Change{Finish: finishOf(rec, delivery.Processed, "processed")})

	c.check(t, s.Counters, "hours [1, 4)", 1, 3, c.count(1, 2, 0, 0), c.count(3, 1, 0, 0))
	other.check(t, s.Counters, "hours [1, 4), other event", 1, 3, other.count(1, 1, 1, 0))
	c.check(t, s.Counters, "hours [0, 5)", 0, 5, c.count(0, 1, 0, 0), c.count(1, 2, 0, 0), c.count(3, 1, 0, 0), c.count(4, 1, 0, 0))
	c.check(t, s.Counters, "hour [2, 3), no counters", 2, 1)
	c.check(t, s.Counters, "empty range [1, 1)", 1, 0)
	// An hour is in [from, to) when it starts there: bounds within hours 1 and 3 leave
	// hour 1 out and take hour 3 in.
	from, to := c.hour.Add(time.Hour+30*time.Minute), c.hour.Add(3*time.Hour+30*time.Minute)
	checkCounts(t, "hours starting in [1:30, 3:30)", eventCounts(t, s.Counters, c.event, from, to), c.count(3, 1, 0, 0))
}

// jobCount is the job counters of c's nth hour: queue-time buckets and conclusions.
func (c *counting) jobCount(n int, buckets map[int]int64, conclusions map[string]int64) jobs.HourlyJobCount {
	hc := jobs.HourlyJobCount{Hour: c.hour.Add(time.Duration(n) * time.Hour), Conclusions: conclusions}
	for b, count := range buckets {
		hc.QueueTimes[b] = count
	}
	return hc
}

// checkJobs compares the job counters of hours [first, first+hours) of c with want.
func (c *counting) checkJobs(t *testing.T, s jobs.Counters, what string, first, hours int, want ...jobs.HourlyJobCount) {
	t.Helper()
	from := c.hour.Add(time.Duration(first) * time.Hour)
	got, err := s.HourlyJobCounts(t.Context(), from, from.Add(time.Duration(hours)*time.Hour))
	if err != nil {
		t.Fatalf("HourlyJobCounts: %v", err)
	}
	for i := range got {
		if got[i].Hour.Location() != time.UTC {
			t.Errorf("%s: hour %v is not UTC", what, got[i].Hour)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: job counters\n %v\nwant\n %v", what, got, want)
	}
}

// A Change's queue times count in the hour the job started, by bucket, and its
// conclusions in the hour the job completed; two of them for one job in one hour (a
// transaction touches a counter item once) count twice. Hours are UTC hours and a read
// returns only the hours in range, oldest first.
func testJobCounts(t *testing.T, s Stores) {
	c := newCounting()
	job := newID()
	mustCommit(t, s.Jobs, &jobs.Change{
		QueueTimes: []jobs.QueueTime{
			{JobID: job, StartedAt: c.at(1, time.Hour-time.Millisecond), Wait: 3 * time.Second},
			{JobID: newID(), StartedAt: c.at(1, 0), Wait: 3 * time.Minute},
			{JobID: newID(), StartedAt: c.at(3, 0), Wait: 24 * time.Hour},
		},
		Conclusions: []jobs.Concluded{
			{JobID: job, CompletedAt: c.at(1, time.Hour-time.Millisecond), Conclusion: "success"},
			{JobID: newID(), CompletedAt: c.at(0, 0), Conclusion: "failure"},
		},
	})
	mustCommit(t, s.Jobs, &jobs.Change{
		QueueTimes:  []jobs.QueueTime{{JobID: job, StartedAt: c.at(1, time.Minute), Wait: 5 * time.Second}},
		Conclusions: []jobs.Concluded{{JobID: job, CompletedAt: c.at(1, 2*time.Minute), Conclusion: "success"}},
	})
	// 3 s and 5 s share a bucket (up to 5 s).
	seconds, minutes := jobs.QueueTimeBucket(3*time.Second), jobs.QueueTimeBucket(3*time.Minute)
	c.checkJobs(t, s.JobCounters, "hours [0, 4)", 0, 4,
		c.jobCount(0, nil, map[string]int64{"failure": 1}),
		c.jobCount(1, map[int]int64{seconds: 2, minutes: 1}, map[string]int64{"success": 2}),
		c.jobCount(3, map[int]int64{jobs.QueueTimeBuckets - 1: 1}, nil))
	c.checkJobs(t, s.JobCounters, "hours [1, 3)", 1, 2,
		c.jobCount(1, map[int]int64{seconds: 2, minutes: 1}, map[string]int64{"success": 2}))
	c.checkJobs(t, s.JobCounters, "hour [2, 3), nothing counted", 2, 1)
}

func testJobCountsConflict(t *testing.T, s Stores) {
	c := newCounting()
	stale := &jobs.Runner{Name: newName("runner"), State: jobs.RunnerIdle, Version: 1} // never stored
	commitConflict(t, s.Jobs, &jobs.Change{Runners: []*jobs.Runner{stale},
		QueueTimes:  []jobs.QueueTime{{JobID: newID(), StartedAt: c.at(0, 0), Wait: time.Second}},
		Conclusions: []jobs.Concluded{{JobID: newID(), CompletedAt: c.at(0, 0), Conclusion: "cancelled"}}})
	c.checkJobs(t, s.JobCounters, "after a conflicting Commit", 0, 1)
}
