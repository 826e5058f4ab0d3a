package jobs

import (
	"context"
	"time"
)

// QueueTimeBounds are the upper bounds of the queue-time histogram's buckets: a job that
// waited w is counted in the first bucket whose bound is at least w, or in the last,
// open-ended one (QueueTimeBuckets in all). Fixed buckets keep the counter of an hour a
// fixed handful of numbers that concurrent commits can add to, whatever the number of
// jobs; the price is that a quantile is known to within its bucket.
var QueueTimeBounds = [...]time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 20 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 6 * time.Hour,
}

// QueueTimeBuckets is the number of buckets of the queue-time histogram.
const QueueTimeBuckets = len(QueueTimeBounds) + 1

// QueueTimeBucket is the bucket a queue time is counted in.
func QueueTimeBucket(wait time.Duration) int {
	for i, bound := range QueueTimeBounds {
		if wait <= bound {
			return i
		}
	}
	return len(QueueTimeBounds)
}

// QueueTime is a job's queue time (queued to started), counted in the hour it started.
type QueueTime struct {
	JobID     int64
	StartedAt time.Time
	Wait      time.Duration
}

// Concluded is a completed job's conclusion, counted in the hour it completed.
type Concluded struct {
	JobID       int64
	CompletedAt time.Time
	Conclusion  string
}

// HourlyJobCount is the job counters of one UTC hour.
type HourlyJobCount struct {
	Hour time.Time // truncated to the hour, UTC
	// QueueTimes counts the jobs that started in the hour by queue-time bucket.
	QueueTimes [QueueTimeBuckets]int64
	// Conclusions counts the jobs that completed in the hour by conclusion.
	Conclusions map[string]int64
}

// Started is the number of jobs counted in the queue-time histogram.
func (c HourlyJobCount) Started() int64 {
	var n int64
	for _, b := range c.QueueTimes {
		n += b
	}
	return n
}

// QueueTimeQuantile estimates the q-quantile (0 < q ≤ 1) of the hour's queue times the
// way Prometheus' histogram_quantile does: linearly within the bucket it falls in. A
// quantile in the open-ended last bucket is reported as that bucket's lower bound. It is
// 0 for an hour in which no job started.
func (c HourlyJobCount) QueueTimeQuantile(q float64) time.Duration {
	total := c.Started()
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var below int64
	for i, n := range c.QueueTimes {
		if n == 0 || float64(below+n) < rank {
			below += n
			continue
		}
		if i == len(QueueTimeBounds) {
			return QueueTimeBounds[i-1]
		}
		var lower time.Duration
		if i > 0 {
			lower = QueueTimeBounds[i-1]
		}
		within := (rank - float64(below)) / float64(n)
		return lower + time.Duration(within*float64(QueueTimeBounds[i]-lower))
	}
	return QueueTimeBounds[len(QueueTimeBounds)-1]
}

// Counters are the hourly job counters, maintained by Store.Commit from each Change's
// QueueTimes and Conclusions in the same atomic write, so that the statistics read a
// bounded number of counter items and never the jobs.
type Counters interface {
	// HourlyJobCounts returns the counters of the hours that start in [from, to), oldest
	// first, leaving out hours with nothing counted.
	HourlyJobCounts(ctx context.Context, from, to time.Time) ([]HourlyJobCount, error)
}

// countJob adds the counts a job's move earns to the plan's Change: its queue time when
// a runner starts it after RunnerHub saw it queued (wasQueued: a queued time and no
// started time before this event; a queued event that arrives after the start tells no
// wait), its conclusion when it completes. A job cancelled before any runner took it
// has a started_at too (GitHub's creation time): it never waited its turn out, so it
// counts no queue time.
func (p *planner) countJob(job *Job, wasQueued, completed bool) {
	if wasQueued && !job.StartedAt.IsZero() && job.RunnerName != "" {
		wait := max(0, job.StartedAt.Sub(job.QueuedAt))
		p.plan.Change.QueueTimes = append(p.plan.Change.QueueTimes, QueueTime{JobID: job.ID, StartedAt: job.StartedAt, Wait: wait})
	}
	if completed {
		at := job.CompletedAt
		if at.IsZero() {
			at = p.at
		}
		conclusion := job.Conclusion
		if conclusion == "" {
			conclusion = "unknown"
		}
		p.plan.Change.Conclusions = append(p.plan.Change.Conclusions, Concluded{JobID: job.ID, CompletedAt: at, Conclusion: conclusion})
	}
}
