package jobs

// The fleet: listing jobs and runners a page at a time, pool status, and the operations
// through which whatever starts runners registers, keeps alive and retires them.
//
// Listings are read from ordered indexes that the stores keep on every Commit, a
// bounded number of entries per page whatever the number of jobs. The layout of those
// indexes (which lists an entity is in, under which key) is defined here once, and
// ListJobsIndexed and ListRunnersIndexed turn a filter into index reads, so the adapters
// only map a ListIndex onto their own structures (a bbolt bucket, a DynamoDB GSI).

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// MaxListLimit is the largest page ListJobs and ListRunners return.
const MaxListLimit = 100

// ErrInvalid marks requests that can never succeed as they are (a malformed filter,
// cursor, name or label): the caller should say what is wrong, not retry.
var ErrInvalid = errors.New("invalid")

// ErrExists is returned when registering a runner whose name is registered already.
var ErrExists = errors.New("already exists")

// ErrUnknownPool is returned when registering a runner in a pool that is neither
// configured nor created through the API.
var ErrUnknownPool = errors.New("no such pool")

// ErrPoolFull is returned when registering a runner in a pool that has maxRunners
// runners already.
var ErrPoolFull = errors.New("pool is full")

// ---------------------------------------------------------------------------- index layout

// ListIndex names an ordered list that a store keeps for the listings. Each is split
// into partitions; entries sort by key as strings.
type ListIndex string

const (
	// IndexJobsByStatus: partition <status>, key ListKey.
	IndexJobsByStatus ListIndex = "jobsByStatus"
	// IndexJobsByRepository: partition <repository>#<status>, key ListKey.
	IndexJobsByRepository ListIndex = "jobsByRepository"
	// IndexJobsByPool: partition <pool>#<status>, key ListKey.
	IndexJobsByPool ListIndex = "jobsByPool"
	// IndexPending is the pending queue PendingJobs reads: partition <pool>, key
	// QueueKey. Stores kept it before the listings existed, so it is not in ListEntries.
	IndexPending ListIndex = "pending"
	// IndexRunners: one partition (""), key Runner.ListKey.
	IndexRunners ListIndex = "runners"
)

// Descending reports whether the index is read from its largest key down: the job
// listings show the newest first, the pending queue and the runners go up.
func (ix ListIndex) Descending() bool {
	switch ix {
	case IndexJobsByStatus, IndexJobsByRepository, IndexJobsByPool:
		return true
	}
	return false
}

// IndexEntry is one entry of an entity in a ListIndex.
type IndexEntry struct {
	Index     ListIndex
	Partition string
	Key       string
}

// statuses are GitHub's job statuses, the partitions of the job listings.
var statuses = []Status{StatusWaiting, StatusQueued, StatusInProgress, StatusCompleted}

// StatusSince is when the job reached its status, as far as known: the time of its
// status, else of the latest earlier one that is known (a job first seen completed may
// lack none, one cancelled while queued has no StartedAt).
func (j *Job) StatusSince() time.Time {
	times := []time.Time{j.CreatedAt, j.QueuedAt, j.StartedAt, j.CompletedAt} // by Rank
	for i := j.Status.Rank() - 1; i >= 0; i-- {
		if !times[i].IsZero() {
			return times[i]
		}
	}
	return time.Time{}
}

// ListKey is the job's key in the job listings: StatusSince, then id. Times are cut to the
// millisecond, as stores keep them, so that the key of a job read back is the key it was
// indexed under (a cursor is the key of the last job of a page).
func (j *Job) ListKey() string { return RankKey(j.StatusSince().Truncate(time.Millisecond), j.ID) }

// ListEntries are the job's entries in the job listings: one per index, in the partition
// of its status (none while its status is unknown).
func (j *Job) ListEntries() []IndexEntry {
	if j.Status.Rank() == 0 {
		return nil
	}
	key, status := j.ListKey(), string(j.Status)
	entries := []IndexEntry{{IndexJobsByStatus, status, key}}
	if j.Repository != "" {
		entries = append(entries, IndexEntry{IndexJobsByRepository, j.Repository + "#" + status, key})
	}
	if j.Pool != "" {
		entries = append(entries, IndexEntry{IndexJobsByPool, j.Pool + "#" + status, key})
	}
	return entries
}

// ListKey is the runner's key in IndexRunners: pool, '#', name. Pool names have no '#'
// and every character they may have sorts after it, so keys sort by pool, then name, and
// one pool's runners are the keys that start with "<pool>#".
func (r *Runner) ListKey() string { return r.Pool + "#" + r.Name }

// ListEntry is the runner's entry in IndexRunners.
func (r *Runner) ListEntry() IndexEntry { return IndexEntry{IndexRunners, "", r.ListKey()} }

// ---------------------------------------------------------------------------- validation

var (
	runnerName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)
	repoName   = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$`)
	// jobCursorKey is the shape of ListKey and QueueKey (RankKey).
	jobCursorKey = regexp.MustCompile(`^[0-9]{20}#[0-9]{20}$`)
)

// invalidError is an ErrInvalid whose message is only what is wrong, fit to show a client.
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

func invalid(format string, args ...any) error {
	return &invalidError{fmt.Sprintf(format, args...)}
}

// ValidatePoolName says what is wrong with a pool name, if anything.
func ValidatePoolName(name string) error {
	if !poolName.MatchString(name) {
		return invalid("pool %q: name must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// ValidateRunnerName says what is wrong with a runner name, if anything.
func ValidateRunnerName(name string) error {
	if !runnerName.MatchString(name) {
		return invalid("runner %q: name must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// ValidateRepository says what is wrong with an owner/name repository, if anything.
func ValidateRepository(repo string) error {
	if !repoName.MatchString(repo) {
		return invalid("repository %q: want owner/name (letters, digits, '.', '_' or '-')", repo)
	}
	return nil
}

// maxRunnerLabels bounds a runner's labels.
const maxRunnerLabels = 50

// maxLabelLength bounds a pool's or runner's label, in bytes.
const maxLabelLength = 100

func validateRunnerLabels(labels []string) error {
	if len(labels) > maxRunnerLabels {
		return invalid("a runner has at most %d labels, not %d", maxRunnerLabels, len(labels))
	}
	for i, l := range labels {
		if l == "" || len(l) > maxLabelLength || !utf8.ValidString(l) {
			return invalid("label %d must be 1-%d characters", i, maxLabelLength)
		}
	}
	return nil
}

func validateLimit(limit int) error {
	if limit < 1 || limit > MaxListLimit {
		return invalid("limit must be from 1 to %d, not %d", MaxListLimit, limit)
	}
	return nil
}

// Validate says what is wrong with f, if anything (errors wrap ErrInvalid).
func (f JobFilter) Validate() error {
	if f.Status != "" && f.Status != StatusPending && f.Status.Rank() == 0 {
		return invalid("status %q: want waiting, queued, in_progress, completed or pending", f.Status)
	}
	if f.Repository != "" {
		if err := ValidateRepository(f.Repository); err != nil {
			return err
		}
	}
	for _, p := range append([]string{f.Pool}, f.Pools...) {
		if p != "" {
			if err := ValidatePoolName(p); err != nil {
				return err
			}
		}
	}
	if _, err := decodeCursor(f.Cursor, jobCursorKey.MatchString); err != nil {
		return err
	}
	return validateLimit(f.Limit)
}

// ---------------------------------------------------------------------------- cursors

// A cursor is the key of the last entry of a page, base64url-encoded: opaque to clients,
// and the same in every store, so that pages of several partitions merge on it.
func encodeCursor(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }

// maxCursorKey bounds the key a cursor may carry: more than any key a listing makes (a
// runner's is at most 164 bytes), so a larger one was not made by a listing.
const maxCursorKey = 512

func decodeCursor(cursor string, valid func(string) bool) (string, error) {
	if cursor == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) > maxCursorKey || !utf8.Valid(b) || !valid(string(b)) {
		return "", invalid("cursor %q is not one this listing returned", cursor)
	}
	return string(b), nil
}

// ---------------------------------------------------------------------------- listing

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

type keyed[T any] struct {
	key string
	v   T
}

// readMerged reads up to n entries after `after` from each partition of ix, at the same
// time, and merges them in the index's order.
func readMerged[T any](ctx context.Context, ix ListIndex, partitions []string, after string, n int, read RangeReader[T], key func(T) string) ([]keyed[T], error) {
	got := make([][]T, len(partitions))
	errs := make([]error, len(partitions))
	var wg sync.WaitGroup
	for i, part := range partitions {
		wg.Go(func() { got[i], errs[i] = read(ctx, ix, part, after, n) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("list %s: %w", ix, err)
	}
	var out []keyed[T]
	for _, vs := range got {
		for _, v := range vs {
			out = append(out, keyed[T]{key(v), v})
		}
	}
	slices.SortStableFunc(out, func(a, b keyed[T]) int {
		if ix.Descending() {
			return strings.Compare(b.key, a.key)
		}
		return strings.Compare(a.key, b.key)
	})
	return out, nil
}

// cut returns the first limit entries, and the cursor after them if more were read.
// Each partition was read limit+1 deep, so the first limit of the merge are the first
// limit of the whole, and one more entry means there is a next page.
func cut[T any](entries []keyed[T], limit int) ([]keyed[T], string) {
	if len(entries) <= limit {
		return entries, ""
	}
	return entries[:limit], encodeCursor(entries[limit-1].key)
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

// ---------------------------------------------------------------------------- pool status

// DefaultOfflineAfter is how long a runner may go unseen before it counts as offline
// (RUNNERHUB_RUNNER_OFFLINE_AFTER).
const DefaultOfflineAfter = 5 * time.Minute

// Offline reports whether the runner counts as offline at now: not seen (registered,
// heartbeat, or named by a job event) for longer than after. Offline is decided on read,
// so no write is needed when a runner goes silent.
func (r *Runner) Offline(now time.Time, after time.Duration) bool {
	return r.LastSeen.IsZero() || now.Sub(r.LastSeen) > after
}

// maxStatusPending bounds how much of a pending queue PoolStatus reads.
const maxStatusPending = 1000

// PoolStatus is one pool's runners and queue at one moment.
type PoolStatus struct {
	Pool
	// Runners by what they can do now; an offline runner counts only as Offline.
	Idle, Reserved, Busy, Offline int
	// PendingJobs counts the pool's pending queue, up to maxStatusPending (then
	// PendingCapped is set); OldestWait is the longest wait among them.
	PendingJobs   int
	PendingCapped bool
	OldestWait    time.Duration
	// Demand is how many more runners the pool needs now: its pending jobs plus MinIdle,
	// less its idle runners, at most MaxRunners less the runners online.
	Demand int
}

// PoolStatus reads every pool's status at now. It reads each pool's runners (a page per
// MaxListLimit runners) and up to maxStatusPending of its pending queue.
func (e *Engine) PoolStatus(ctx context.Context, now time.Time, offlineAfter time.Duration) ([]PoolStatus, error) {
	pools, err := e.AllPools(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]PoolStatus, len(pools))
	for i, pl := range pools {
		st := PoolStatus{Pool: pl}
		for cursor := ""; ; {
			runners, next, err := e.Store.ListRunners(ctx, pl.Name, cursor, MaxListLimit)
			if err != nil {
				return nil, fmt.Errorf("runners of pool %s: %w", pl.Name, err)
			}
			for _, r := range runners {
				switch {
				case r.Offline(now, offlineAfter):
					st.Offline++
				case r.State == RunnerIdle:
					st.Idle++
				case r.State == RunnerReserved:
					st.Reserved++
				default:
					st.Busy++
				}
			}
			if cursor = next; cursor == "" {
				break
			}
		}
		pending, err := e.Store.PendingJobs(ctx, pl.Name, "", maxStatusPending+1)
		if err != nil {
			return nil, fmt.Errorf("pending jobs of pool %s: %w", pl.Name, err)
		}
		st.PendingCapped = len(pending) > maxStatusPending
		st.PendingJobs = min(len(pending), maxStatusPending)
		for _, j := range pending[:st.PendingJobs] {
			if !j.QueuedAt.IsZero() {
				st.OldestWait = max(st.OldestWait, now.Sub(j.QueuedAt))
			}
		}
		online := st.Idle + st.Reserved + st.Busy
		st.Demand = max(0, min(st.PendingJobs+pl.MinIdle-st.Idle, pl.MaxRunners-online))
		out[i] = st
	}
	return out, nil
}

// ---------------------------------------------------------------------------- runners

// RunnerSpec is what registers a runner.
type RunnerSpec struct {
	Name      string
	Pool      string
	Labels    []string
	Ephemeral bool
}

// maxFleetAttempts is how often a fleet operation is planned again after concurrent
// changes before it gives up with ErrConflict.
const maxFleetAttempts = 8

// RegisterRunner adds an idle runner to a pool at now and gives it at once the
// highest-ranked pending job of the pool that it can run, if any (it is then reserved).
// It returns the runner as committed and the plan (for its outcome).
func (e *Engine) RegisterRunner(ctx context.Context, spec RunnerSpec, now time.Time) (*Runner, *Plan, error) {
	if err := ValidateRunnerName(spec.Name); err != nil {
		return nil, nil, err
	}
	if err := ValidatePoolName(spec.Pool); err != nil {
		return nil, nil, err
	}
	if err := validateRunnerLabels(spec.Labels); err != nil {
		return nil, nil, err
	}
	return e.fleetChange(ctx, now, func(p *planner) (*Runner, error) {
		pl, ok, err := p.pool(spec.Pool)
		if err != nil || !ok {
			return nil, cmp.Or(err, fmt.Errorf("pool %q: %w", spec.Pool, ErrUnknownPool))
		}
		existing, err := p.runner(spec.Name)
		if err != nil || existing != nil {
			return nil, cmp.Or(err, fmt.Errorf("runner %s: %w", spec.Name, ErrExists))
		}
		// Counted under the pool's gate, so two registrations at once cannot both take
		// the last place.
		if err := p.gate(pl.Name); err != nil {
			return nil, err
		}
		if n, err := p.countRunners(pl.Name, pl.MaxRunners); err != nil || n >= pl.MaxRunners {
			return nil, cmp.Or(err, fmt.Errorf("pool %s has its %d runners: %w", pl.Name, pl.MaxRunners, ErrPoolFull))
		}
		r := &Runner{Name: spec.Name, Pool: spec.Pool, Labels: spec.Labels, Ephemeral: spec.Ephemeral,
			State: RunnerIdle, UpdatedAt: p.at, LastSeen: p.at}
		p.runners[r.Name] = r
		p.touch(r)
		p.plan.Outcome = fmt.Sprintf("runner %s registered in pool %s", r.Name, r.Pool)
		return r, p.matchIdle(r, anyQueues)
	})
}

// countRunners counts the runners of pool, stopping once it has seen atLeast of them:
// registration only needs to know whether the pool is full.
func (p *planner) countRunners(pool string, atLeast int) (int, error) {
	n, cursor := 0, ""
	for n < atLeast {
		page, next, err := p.e.Store.ListRunners(p.ctx, pool, cursor, min(atLeast-n, MaxListLimit))
		if err != nil {
			return 0, err
		}
		n += len(page)
		if next == "" {
			break
		}
		cursor = next
	}
	return n, nil
}

// RemoveRunner retires a runner at now. A job reserved for it goes back to its pool's
// pending queue (with a scale-up demand); a job running on it keeps its assignment, as
// GitHub will report how it ends. It returns the runner as it was.
func (e *Engine) RemoveRunner(ctx context.Context, name string, now time.Time) (*Runner, *Plan, error) {
	return e.fleetChange(ctx, now, func(p *planner) (*Runner, error) {
		r, err := p.managedRunner(name)
		if err != nil {
			return nil, err
		}
		if err := p.requeueReserved(r); err != nil {
			return nil, err
		}
		delete(p.runners, name)
		p.deleted[name] = r
		p.plan.Outcome = "runner " + name + " removed"
		return r, nil
	})
}

// Heartbeat records that a runner is alive at now. An idle runner is also matched with
// the pending jobs of its pool, and, when it comes back from being offline, of every
// pool: allocation passed it over meanwhile, so jobs it fits may wait anywhere. (An
// online idle runner has already been offered every job it fits, so looking at the
// other pools on each heartbeat would only cost reads and contention.)
func (e *Engine) Heartbeat(ctx context.Context, name string, now time.Time) (*Runner, *Plan, error) {
	return e.fleetChange(ctx, now, func(p *planner) (*Runner, error) {
		r, err := p.managedRunner(name)
		if err != nil {
			return nil, err
		}
		returning := p.e.OfflineAfter > 0 && r.Offline(p.at, p.e.OfflineAfter)
		r.LastSeen = p.at
		p.touch(r)
		p.plan.Outcome = "heartbeat of runner " + name
		if r.State != RunnerIdle {
			return r, nil
		}
		return r, p.matchIdle(r, returning)
	})
}

// managedRunner reads a runner that must exist.
func (p *planner) managedRunner(name string) (*Runner, error) {
	if err := ValidateRunnerName(name); err != nil {
		return nil, err
	}
	r, err := p.runner(name)
	if err == nil && r == nil {
		err = fmt.Errorf("runner %s: %w", name, ErrNotFound)
	}
	return r, err
}

// matchIdle gives the idle runner r the next pending job it fits, if any (see match).
func (p *planner) matchIdle(r *Runner, acrossPools bool) error {
	job, err := p.match(r, acrossPools)
	if job != nil {
		p.plan.Outcome += fmt.Sprintf("; reserved for job %d", job.ID)
	}
	return err
}

// fleetChange plans a fleet operation with build and commits it, planning again from
// fresh reads when something it read changed concurrently (a processor reserving the
// same runner, another request).
func (e *Engine) fleetChange(ctx context.Context, now time.Time, build func(p *planner) (*Runner, error)) (*Runner, *Plan, error) {
	for attempt := 1; ; attempt++ {
		p := e.newPlanner(ctx, now)
		r, err := build(p)
		if err != nil {
			return nil, nil, err
		}
		p.collect()
		err = e.Store.Commit(ctx, &p.plan.Change)
		if err == nil {
			if e.Committed != nil {
				e.Committed(ctx, p.plan)
			}
			return r, p.plan, nil
		}
		if !errors.Is(err, ErrConflict) || attempt == maxFleetAttempts {
			return nil, nil, err
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(time.Duration(rand.IntN(1<<attempt)) * time.Millisecond):
		}
	}
}
