package jobstest_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/jobs/jobstest"
)

func TestFleetSuite(t *testing.T) { onMem(t, jobstest.FleetSuite) }

// The reference store lists through the same helpers as the real ones, reading its
// "indexes" by scanning every entity for its entries.

func (m *mem) ListJobs(ctx context.Context, f jobs.JobFilter) ([]*jobs.Job, string, error) {
	return jobs.ListJobsIndexed(ctx, f, func(_ context.Context, ix jobs.ListIndex, partition, after string, n int) ([]*jobs.Job, error) {
		entries := func(j jobs.Job) []jobs.IndexEntry {
			if ix == jobs.IndexPending && j.Allocation == jobs.AllocationPending {
				return []jobs.IndexEntry{{Index: jobs.IndexPending, Partition: j.Pool, Key: j.QueueKey}}
			}
			return j.ListEntries()
		}
		return scanRange(m, m.jobs, entries, ix, partition, after, n, cloneJob), nil
	})
}

func (m *mem) ListRunners(ctx context.Context, pool, cursor string, limit int) ([]*jobs.Runner, string, error) {
	return jobs.ListRunnersIndexed(ctx, pool, cursor, limit, func(_ context.Context, ix jobs.ListIndex, partition, after string, n int) ([]*jobs.Runner, error) {
		entries := func(r jobs.Runner) []jobs.IndexEntry { return []jobs.IndexEntry{r.ListEntry()} }
		return scanRange(m, m.runners, entries, ix, partition, after, n, cloneRunner), nil
	})
}

// scanRange returns up to n copies of the entities with an entry in the partition of ix
// after the key after, in the index's order.
func scanRange[K comparable, V any](m *mem, entities map[K]V, entries func(V) []jobs.IndexEntry, ix jobs.ListIndex, partition, after string, n int, clone func(V) V) []*V {
	type entry struct {
		key string
		v   V
	}
	m.mu.Lock()
	var found []entry
	for _, v := range entities {
		for _, e := range entries(v) {
			if e.Index == ix && e.Partition == partition && (after == "" || (ix.Descending() && e.Key < after) || (!ix.Descending() && e.Key > after)) {
				found = append(found, entry{e.Key, clone(v)})
			}
		}
	}
	m.mu.Unlock()
	slices.SortFunc(found, func(a, b entry) int {
		if ix.Descending() {
			return strings.Compare(b.key, a.key)
		}
		return strings.Compare(a.key, b.key)
	})
	out := make([]*V, 0, min(n, len(found)))
	for _, e := range found[:min(n, len(found))] {
		out = append(out, &e.v)
	}
	return out
}
