package jobs

// Listing jobs and runners a page at a time. Listings are read from ordered indexes that
// the stores keep on every Commit (see index.go), a bounded number of entries per page
// whatever the number of jobs.

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// MaxListLimit is the largest page ListJobs and ListRunners return.
const MaxListLimit = 100

// RangeReader reads one partition of a ListIndex for ListJobsIndexed and
// ListRunnersIndexed: up to n entities whose keys follow after ("" from the start) in
// the index's order (see Descending), in that order.
type RangeReader[T any] func(ctx context.Context, ix ListIndex, partition, after string, n int) ([]T, error)

// ListJobsIndexed implements Store.ListJobs on a store's ListIndexes, which read
// supplies. A page reads at most Limit+1 entries from each partition it merges:
//
//   - a status: the status's partition of IndexJobsByStatus, or of IndexJobsByRepository
//     with a repository, or of IndexJobsByPool with a pool; without a status, the four
//     status partitions merged, newest first;
//   - StatusPending: the pending queue of the pool, or of each of f.Pools, merged in
//     queue order;
//   - a repository with a pool, or with StatusPending: the repository's index (or the
//     queues), the other filter applied to the entries read. Such a page may hold fewer
//     than Limit jobs while more follow: follow the cursor until it is "".
func ListJobsIndexed(ctx context.Context, f JobFilter, read RangeReader[*Job]) ([]*Job, string, error) {
	if err := f.Validate(); err != nil {
		return nil, "", err
	}
	after, _ := decodeCursor(f.Cursor, jobCursorKey.MatchString) // validated above
	ix, partitions, keep := f.plan()
	key := (*Job).ListKey
	if ix == IndexPending {
		key = func(j *Job) string { return j.QueueKey }
	}
	entries, err := readMerged(ctx, ix, partitions, after, f.Limit+1, read, key)
	if err != nil {
		return nil, "", err
	}
	// An index that is eventually consistent (DynamoDB's) may briefly list a job that
	// just moved in both its old and its new partition.
	seen := map[int64]bool{}
	entries = slices.DeleteFunc(entries, func(e keyed[*Job]) bool {
		dup := seen[e.v.ID]
		seen[e.v.ID] = true
		return dup
	})
	page, next := cut(entries, f.Limit)
	var out []*Job
	for _, e := range page {
		if keep(e.v) {
			out = append(out, e.v)
		}
	}
	return out, next, nil
}

// plan picks the index and partitions a filter reads, and the test of what it keeps.
func (f JobFilter) plan() (ListIndex, []string, func(*Job) bool) {
	keep := func(*Job) bool { return true }
	if f.Status == StatusPending {
		pools := f.Pools
		if f.Pool != "" {
			pools = []string{f.Pool}
		}
		if f.Repository != "" {
			keep = func(j *Job) bool { return j.Repository == f.Repository }
		}
		return IndexPending, pools, keep
	}
	wanted := statuses
	if f.Status != "" {
		wanted = []Status{f.Status}
	}
	ix, prefix := IndexJobsByStatus, ""
	switch {
	case f.Repository != "":
		ix, prefix = IndexJobsByRepository, f.Repository+"#"
		if f.Pool != "" {
			keep = func(j *Job) bool { return j.Pool == f.Pool }
		}
	case f.Pool != "":
		ix, prefix = IndexJobsByPool, f.Pool+"#"
	}
	partitions := make([]string, len(wanted))
	for i, s := range wanted {
		partitions[i] = prefix + string(s)
	}
	return ix, partitions, keep
}

// ListRunnersIndexed implements Store.ListRunners on a store's IndexRunners, which read
// supplies. A page reads at most limit+1 entries.
func ListRunnersIndexed(ctx context.Context, pool, cursor string, limit int, read RangeReader[*Runner]) ([]*Runner, string, error) {
	if pool != "" {
		if err := ValidatePoolName(pool); err != nil {
			return nil, "", err
		}
	}
	if err := validateLimit(limit); err != nil {
		return nil, "", err
	}
	after, err := decodeCursor(cursor, func(k string) bool { return strings.Contains(k, "#") })
	if err != nil {
		return nil, "", err
	}
	// One pool's runners are the keys from "<pool>#" up to the first without that prefix.
	prefix := ""
	if pool != "" {
		prefix = pool + "#"
		after = max(after, prefix)
	}
	entries, err := readMerged(ctx, IndexRunners, []string{""}, after, limit+1, read, (*Runner).ListKey)
	if err != nil {
		return nil, "", err
	}
	if end := slices.IndexFunc(entries, func(e keyed[*Runner]) bool { return !strings.HasPrefix(e.key, prefix) }); end >= 0 {
		entries = entries[:end]
	}
	page, next := cut(entries, limit)
	out := make([]*Runner, len(page))
	for i, e := range page {
		out[i] = e.v
	}
	return out, next, nil
}

// ListJobs is Store.ListJobs with f.Pools filled in: StatusPending without a pool merges
// the queues of every pool, configured or created through the API.
func (e *Engine) ListJobs(ctx context.Context, f JobFilter) ([]*Job, string, error) {
	if f.Status == StatusPending && f.Pool == "" && f.Pools == nil {
		pools, err := e.AllPools(ctx)
		if err != nil {
			return nil, "", err
		}
		f.Pools = make([]string, len(pools))
		for i, p := range pools {
			f.Pools[i] = p.Name
		}
	}
	return e.Store.ListJobs(ctx, f)
}

// maxRunnerPages bounds AllRunners: MaxListLimit runners a page.
const maxRunnerPages = 100

// AllRunners reads every runner of pool ("" for every pool), a page at a time, and fails
// past maxRunnerPages pages rather than read without end.
func (e *Engine) AllRunners(ctx context.Context, pool string) ([]*Runner, error) {
	var out []*Runner
	cursor := ""
	for range maxRunnerPages {
		page, next, err := e.Store.ListRunners(ctx, pool, cursor, MaxListLimit)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if next == "" {
			return out, nil
		}
		cursor = next
	}
	return nil, fmt.Errorf("more than %d pages of runners", maxRunnerPages)
}
