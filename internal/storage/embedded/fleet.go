package embedded

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/runnerhub/webhooks/internal/jobs"
	bolt "go.etcd.io/bbolt"
)

// The listings (jobs.ListIndex) are index buckets like the pending queue: one key per
// entry, <partition>\x00<key> (indexKey), naming the entity's key. Commit keeps them
// from each entity's old and new state (reindexLists).
var (
	bucketJobsByStatus     = []byte("jobsByStatus")     // <status>\x00<ListKey> → job key
	bucketJobsByRepository = []byte("jobsByRepository") // <repository>#<status>\x00<ListKey> → job key
	bucketJobsByPool       = []byte("jobsByPool")       // <pool>#<status>\x00<ListKey> → job key
	bucketRunnerList       = []byte("runnerList")       // \x00<pool>#<name> → runner key

	listBuckets = map[jobs.ListIndex][]byte{
		jobs.IndexJobsByStatus:     bucketJobsByStatus,
		jobs.IndexJobsByRepository: bucketJobsByRepository,
		jobs.IndexJobsByPool:       bucketJobsByPool,
		jobs.IndexPending:          bucketPendingJobs, // same layout: <pool>\x00<QueueKey>
		jobs.IndexRunners:          bucketRunnerList,
	}
)

// The listing buckets join the ones Open creates. (Registered from here, next to their
// use, rather than in embedded.go's list.) A database written before they existed has
// its jobs and runners missing from the listings until they are next written.
func init() {
	buckets = append(buckets, bucketJobsByStatus, bucketJobsByRepository, bucketJobsByPool, bucketRunnerList)
}

// ListJobs implements jobs.Store (see jobs.ListJobsIndexed).
func (s *Store) ListJobs(ctx context.Context, f jobs.JobFilter) ([]*jobs.Job, string, error) {
	return jobs.ListJobsIndexed(ctx, f, func(_ context.Context, ix jobs.ListIndex, partition, after string, n int) ([]*jobs.Job, error) {
		return listRange[jobs.Job](s.db, listBuckets[ix], bucketJobs, partition, after, ix.Descending(), n)
	})
}

// ListRunners implements jobs.Store (see jobs.ListRunnersIndexed).
func (s *Store) ListRunners(ctx context.Context, pool, cursor string, limit int) ([]*jobs.Runner, string, error) {
	return jobs.ListRunnersIndexed(ctx, pool, cursor, limit, func(_ context.Context, ix jobs.ListIndex, partition, after string, n int) ([]*jobs.Runner, error) {
		return listRange[jobs.Runner](s.db, listBuckets[ix], bucketRunners, partition, after, ix.Descending(), n)
	})
}

// listRange returns up to n entities of bucket named by the entries of one partition of
// index, in key order (desc: from the largest down), starting after the key after (""
// from the partition's first, or last, entry).
func listRange[T any](db *bolt.DB, index, bucket []byte, partition, after string, desc bool, n int) ([]*T, error) {
	prefix := indexKey(partition, "")
	var out []*T
	err := db.View(func(tx *bolt.Tx) error {
		entities := tx.Bucket(bucket)
		c := tx.Bucket(index).Cursor()
		var k, ref []byte
		step := c.Next
		switch {
		case !desc && after == "":
			k, ref = c.Seek(prefix)
		case !desc:
			k, ref = c.Seek(append(indexKey(partition, after), 0)) // the smallest key above after
		default:
			// Down from the largest key below after, or below the partition's end
			// (<partition>\x01: partitions hold no control characters).
			from := indexKey(partition, after)
			if after == "" {
				from = append([]byte(partition), 1)
			}
			if k, _ = c.Seek(from); k == nil {
				k, ref = c.Last()
			} else {
				k, ref = c.Prev()
			}
			step = c.Prev
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < n; k, ref = step() {
			v := new(T)
			found, err := getJSON(entities, ref, v)
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("index %s entry %q names a missing entity", index, k)
			}
			out = append(out, v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", index, err)
	}
	return out, nil
}

// reindexLists moves an entity's listing entries from those of its old state to those of
// its new one (ref: the entity's key; both may be empty).
func reindexLists(tx *bolt.Tx, from, to []jobs.IndexEntry, ref []byte) error {
	for _, e := range from {
		if !slices.Contains(to, e) {
			if err := tx.Bucket(listBuckets[e.Index]).Delete(indexKey(e.Partition, e.Key)); err != nil {
				return err
			}
		}
	}
	for _, e := range to {
		if !slices.Contains(from, e) {
			if err := tx.Bucket(listBuckets[e.Index]).Put(indexKey(e.Partition, e.Key), ref); err != nil {
				return err
			}
		}
	}
	return nil
}

// jobEntries and runnerEntries are an entity's listing entries, none for no entity.
func jobEntries(j *jobs.Job) []jobs.IndexEntry {
	if j == nil {
		return nil
	}
	return j.ListEntries()
}

func runnerEntries(r *jobs.Runner) []jobs.IndexEntry {
	if r == nil {
		return nil
	}
	return []jobs.IndexEntry{r.ListEntry()}
}
