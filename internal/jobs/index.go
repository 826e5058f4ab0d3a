package jobs

// The layout of the indexes the stores keep for the listings, defined here once: which
// lists an entity is in, under which key. ListJobsIndexed and ListRunnersIndexed turn a
// filter into reads of these indexes, so the adapters only map a ListIndex onto their own
// structures (a bbolt bucket, a DynamoDB GSI).

import (
	"time"
)

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
