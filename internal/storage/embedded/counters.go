package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	bolt "go.etcd.io/bbolt"
)

// tally is the stored form of one hour's counters of one event.
type tally struct {
	Total     int64 `json:"total,omitempty"`
	Processed int64 `json:"processed,omitempty"`
	Errors    int64 `json:"errors,omitempty"`
}

// hourLayout has a fixed width for UTC hours, so counter keys sort by hour.
const hourLayout = time.RFC3339

func counterKey(hour time.Time, event string) []byte {
	return []byte(hour.Format(hourLayout) + "\x00" + event)
}

// count adds add to the counters of event in the hour of receivedAt, in the transaction
// of the write being counted, so that a count can neither be lost nor doubled.
func count(tx *bolt.Tx, event string, receivedAt time.Time, add tally) error {
	counters := tx.Bucket(bucketCounters)
	key := counterKey(delivery.Hour(receivedAt), event)
	var t tally
	if _, err := getJSON(counters, key, &t); err != nil {
		return err
	}
	t.Total += add.Total
	t.Processed += add.Processed
	t.Errors += add.Errors
	return putJSON(counters, key, t)
}

func (s *Store) CountError(ctx context.Context, event string, receivedAt time.Time) error {
	err := s.writes.update(func(tx *bolt.Tx) error { return count(tx, event, receivedAt, tally{Errors: 1}) })
	if err != nil {
		return fmt.Errorf("count %s error: %w", event, err)
	}
	return nil
}

// HourlyCounts reads the counter keys from the first hour at or after from up to the
// first hour at or after to: a range of at most (hours × events) keys.
func (s *Store) HourlyCounts(ctx context.Context, from, to time.Time) ([]delivery.HourlyCount, error) {
	out, err := readHours(s.db, bucketCounters, from, to, func(hour time.Time, key, value []byte) (delivery.HourlyCount, error) {
		_, event, _ := bytes.Cut(key, []byte{0})
		var t tally
		if err := json.Unmarshal(value, &t); err != nil {
			return delivery.HourlyCount{}, fmt.Errorf("counter %q: %w", key, err)
		}
		return delivery.HourlyCount{Hour: hour, Event: string(event), Total: t.Total, Processed: t.Processed, Errors: t.Errors}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read hourly counts: %w", err)
	}
	return out, nil
}

// readHours decodes, in key order, the entries of an hour-keyed bucket (keys that start
// with an hour in hourLayout, the counters' and the job counters') whose hours start in
// [from, to). It seeks the first hour at or after from and stops at the first key of
// hour to or later.
func readHours[T any](db *bolt.DB, bucket []byte, from, to time.Time, decode func(hour time.Time, key, value []byte) (T, error)) ([]T, error) {
	var out []T
	err := db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		for k, v := c.Seek([]byte(firstHour(from).Format(hourLayout))); k != nil; k, v = c.Next() {
			hourText, _, _ := bytes.Cut(k, []byte{0})
			hour, err := time.Parse(hourLayout, string(hourText))
			if err != nil {
				return fmt.Errorf("counter key %q: %w", k, err)
			}
			if !hour.Before(to) {
				return nil
			}
			entry, err := decode(hour.UTC(), k, v)
			if err != nil {
				return err
			}
			out = append(out, entry)
		}
		return nil
	})
	return out, err
}

// firstHour is the start of the first hour that begins at or after t.
func firstHour(t time.Time) time.Time {
	h := delivery.Hour(t)
	if h.Before(t) {
		h = h.Add(time.Hour)
	}
	return h
}

// jobTally is the stored form of one hour's job counters.
type jobTally struct {
	QueueTimes  [jobs.QueueTimeBuckets]int64 `json:"queueTimes"`
	Conclusions map[string]int64             `json:"conclusions,omitempty"`
}

// countJobs adds a Change's queue times and conclusions to the job counters of their
// hours, in the Change's transaction.
func countJobs(tx *bolt.Tx, c *jobs.Change) error {
	counts := tx.Bucket(bucketJobCounts)
	add := func(at time.Time, f func(t *jobTally)) error {
		key := []byte(delivery.Hour(at).Format(hourLayout))
		var t jobTally
		if _, err := getJSON(counts, key, &t); err != nil {
			return err
		}
		f(&t)
		return putJSON(counts, key, t)
	}
	for _, q := range c.QueueTimes {
		if err := add(q.StartedAt, func(t *jobTally) { t.QueueTimes[jobs.QueueTimeBucket(q.Wait)]++ }); err != nil {
			return err
		}
	}
	for _, d := range c.Conclusions {
		err := add(d.CompletedAt, func(t *jobTally) {
			if t.Conclusions == nil {
				t.Conclusions = map[string]int64{}
			}
			t.Conclusions[d.Conclusion]++
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// HourlyJobCounts reads the job counter keys of the hours that start in [from, to).
func (s *Store) HourlyJobCounts(ctx context.Context, from, to time.Time) ([]jobs.HourlyJobCount, error) {
	out, err := readHours(s.db, bucketJobCounts, from, to, func(hour time.Time, key, value []byte) (jobs.HourlyJobCount, error) {
		var t jobTally
		if err := json.Unmarshal(value, &t); err != nil {
			return jobs.HourlyJobCount{}, fmt.Errorf("job counter %q: %w", key, err)
		}
		return jobs.HourlyJobCount{Hour: hour, QueueTimes: t.QueueTimes, Conclusions: t.Conclusions}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read hourly job counts: %w", err)
	}
	return out, nil
}
