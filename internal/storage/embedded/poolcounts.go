package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/runnerhub/webhooks/internal/jobs"
	bolt "go.etcd.io/bbolt"
)

// bucketPoolCounts holds each pool's counts: pool name → jobs.PoolCounts (JSON). One
// process writes the file, so there is no hot item to spread: one key per pool.
var bucketPoolCounts = []byte("poolCounts")

// addCounts adds a Change's counts to the pools' counts, in the transaction that writes
// what they count.
func addCounts(tx *bolt.Tx, deltas []jobs.PoolCounts) error {
	b := tx.Bucket(bucketPoolCounts)
	for _, d := range deltas {
		c := jobs.PoolCounts{Pool: d.Pool}
		if _, err := getJSON(b, []byte(d.Pool), &c); err != nil {
			return fmt.Errorf("counts of pool %s: %w", d.Pool, err)
		}
		c.Add(d, 1)
		if err := putJSON(b, []byte(d.Pool), c); err != nil {
			return fmt.Errorf("counts of pool %s: %w", d.Pool, err)
		}
	}
	return nil
}

// PoolCounts implements jobs.Store: one key per pool.
func (s *Store) PoolCounts(ctx context.Context, pools []string) ([]jobs.PoolCounts, error) {
	out := make([]jobs.PoolCounts, len(pools))
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPoolCounts)
		for i, pool := range pools {
			out[i] = jobs.PoolCounts{Pool: pool}
			if _, err := getJSON(b, []byte(pool), &out[i]); err != nil {
				return fmt.Errorf("counts of pool %s: %w", pool, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read pool counts: %w", err)
	}
	return out, nil
}

// ensurePoolCounts creates the pool counts of a database made before they existed, once:
// it counts every stored runner and every entry of the pending index, in the transaction
// that opens the database, so no commit can come between the count and its use.
func ensurePoolCounts(tx *bolt.Tx) error {
	if tx.Bucket(bucketPoolCounts) != nil {
		return nil
	}
	if _, err := tx.CreateBucket(bucketPoolCounts); err != nil {
		return err
	}
	t := jobs.Tally{}
	err := tx.Bucket(bucketRunners).ForEach(func(k, v []byte) error {
		var r jobs.Runner
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("count runner %q: %w", k, err)
		}
		t.Add(r.Counts(), 1)
		return nil
	})
	if err != nil {
		return err
	}
	err = tx.Bucket(bucketPendingJobs).ForEach(func(k, _ []byte) error {
		pool, _, _ := bytes.Cut(k, []byte{0}) // <pool>\x00<QueueKey>
		t.Add(jobs.PoolCounts{Pool: string(pool), Pending: 1}, 1)
		return nil
	})
	if err != nil {
		return err
	}
	return addCounts(tx, t.Counts())
}
