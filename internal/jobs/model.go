// Package jobs is RunnerHub's job domain: the order-tolerant job state machine, the
// starvation-free pending queue, pools and runners, and race-free allocation of runners
// to jobs. It reads state through the Store port and writes every effect of one delivery
// as one atomic, version-checked Change, so a delivery's effects apply exactly once
// however often and however concurrently it is processed.
package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/provider"
)

// Status is GitHub's workflow_job status. It only moves forward.
type Status string

const (
	StatusWaiting    Status = "waiting"
	StatusQueued     Status = "queued"
	StatusInProgress Status = "in_progress"
	StatusCompleted  Status = "completed"

	// StatusPending is no GitHub status but a ListJobs filter: queued jobs waiting in a
	// pool's pending queue for a runner (Allocation pending), in queue order.
	StatusPending Status = "pending"
)

// Rank orders statuses: waiting < queued < in_progress < completed; unknown is 0.
func (s Status) Rank() int {
	switch s {
	case StatusWaiting:
		return 1
	case StatusQueued:
		return 2
	case StatusInProgress:
		return 3
	case StatusCompleted:
		return 4
	}
	return 0
}

// Allocation says where a job stands with RunnerHub's runners.
type Allocation string

const (
	AllocationNone      Allocation = ""          // not queued yet (waiting), or never seen queued
	AllocationUnmatched Allocation = "unmatched" // no pool fits its labels
	AllocationPending   Allocation = "pending"   // in its pool's pending queue, no runner yet
	AllocationReserved  Allocation = "reserved"  // a runner is reserved for it
	AllocationAssigned  Allocation = "assigned"  // running (or ran) on a runner GitHub named
	AllocationAbandoned Allocation = "abandoned" // finished before it got a runner (e.g. cancelled)
)

// Job is one GitHub workflow job.
type Job struct {
	ID         int64
	RunID      int64
	Repository string
	Name       string
	Labels     []string
	HeadSHA    string
	HTMLURL    string
	Status     Status
	Conclusion string
	Priority   int
	// RunnerID and RunnerName are what GitHub reported (in_progress, completed).
	RunnerID   int64
	RunnerName string
	// Pool, Allocation and ReservedRunner are RunnerHub's allocation.
	Pool           string
	Allocation     Allocation
	ReservedRunner string
	// QueueKey is the job's place in its pool's pending queue (RankKey); set only while
	// Allocation is pending.
	QueueKey string
	// StartedRunner is the runner last started for the job while it waited, so a
	// repeated demand for it starts nothing more (Engine.CheckStart).
	StartedRunner string
	CreatedAt     time.Time
	QueuedAt      time.Time
	StartedAt     time.Time
	CompletedAt   time.Time
	// Deliveries are the ids of the deliveries that changed this job, oldest first.
	Deliveries []string
	// Version is the store's optimistic-concurrency counter: 0 for a job not yet stored.
	Version int64
}

// WaitSeconds is the time from queued to started (0 while unknown).
func (j *Job) WaitSeconds() float64 { return between(j.QueuedAt, j.StartedAt) }

// RunSeconds is the time from started to completed (0 while unknown).
func (j *Job) RunSeconds() float64 { return between(j.StartedAt, j.CompletedAt) }

func between(a, b time.Time) float64 {
	if a.IsZero() || b.IsZero() || b.Before(a) {
		return 0
	}
	return b.Sub(a).Seconds()
}

// RunnerState is the state of a runner RunnerHub manages. Whether it is offline is not a
// state but decided on read, from when it was last seen (Runner.Offline).
type RunnerState string

const (
	RunnerIdle     RunnerState = "idle"
	RunnerReserved RunnerState = "reserved"
	RunnerBusy     RunnerState = "busy"
	// RunnerStarting is a runner RunnerHub asked a provider to start: recorded before the
	// provider's Create, so it counts against maxRunners from the start. It leaves the
	// state when GitHub lists it online (a heartbeat) or a job event names it.
	RunnerStarting RunnerState = "starting"
)

// Runner is a self-hosted runner RunnerHub manages. Name is the runner name GitHub
// reports in workflow_job.runner_name.
type Runner struct {
	Name      string
	Pool      string
	Labels    []string
	Ephemeral bool
	State     RunnerState
	// JobID is the job it is reserved for or running, or, while starting, the job it was
	// started for; 0 when none (a warm runner).
	JobID     int64
	UpdatedAt time.Time
	// LastSeen is when the runner last registered or sent a heartbeat; a runner not seen
	// for a while counts as offline (see Offline), whatever its State.
	LastSeen time.Time
	// ProviderID is the pool's provider's id for the runner's machine; "" for a runner
	// registered through the API, or one whose Create has not answered yet.
	ProviderID string
	// GitHubID is GitHub's id of a runner RunnerHub registered with a just-in-time
	// configuration, so that removing it also removes it from GitHub; 0 otherwise.
	GitHubID int64
	Version  int64
}

// Provisioned says whether RunnerHub started r through a provider, so that retiring it
// means deleting its machine and its GitHub registration too.
func (r *Runner) Provisioned() bool { return r.ProviderID != "" || r.GitHubID != 0 }

// Pool is a group of interchangeable runners. Its JSON form is PoolDocument's.
type Pool struct {
	Name       string
	Labels     []string
	MinIdle    int
	MaxRunners int
	// Provider starts the pool's runners. Without one the pool behaves as before there
	// were providers: runners register through the API, and demands are only signals.
	Provider *provider.Config
	// BootTimeout is how long a runner may stay starting before it is replaced.
	BootTimeout time.Duration
	// IdleTimeout is how long a runner above MinIdle may stay idle (an ephemeral one too:
	// it is one no job came for).
	IdleTimeout time.Duration
	Ephemeral   bool // runners take one job each, and are then deleted
	// Prewarm is how many runners a push or pull request may start ahead of its jobs.
	Prewarm int
	// RunnerScope is where the pool's runners register (githubconfig.ParseScope); empty
	// for RUNNERHUB_GITHUB_RUNNER_SCOPE.
	RunnerScope   string
	RunnerGroupID int64 // GitHub's runner group; 1 is the default group
}

// Run is a workflow run (the description's workflow_runs columns).
type Run struct {
	ID           int64
	Repository   string
	WorkflowName string
	HeadBranch   string
	HeadSHA      string
	Event        string
	Status       string
	Conclusion   string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	Version      int64
}

// Profile remembers which pools a repository's jobs used, so a push can pre-warm them.
type Profile struct {
	Repository string
	// PoolUses maps each pool the repository's jobs ran in (or waited in until they ended)
	// to the day of the latest of them, by creation (ProfileDay). Only the most recent few
	// pools are kept. Pre-warming names them, most recent first.
	PoolUses map[string]int
	Version  int64
}

// Gate is one of a pool's gate counters (GateSide), which order the plans that decide
// something about the pool's idle runners, pending queue or runner count.
//
// Allocation has two sides. A plan that leaves a job pending must not miss a runner being
// freed at the same moment, nor a plan that leaves a runner idle miss a job being queued:
// both would commit, and the job would wait beside the idle runner (with a needless
// scale-up demand). So a plan that leaves a job pending checks, unwritten (Change.
// GateChecks), the runners side of every pool whose idle runners it read, at the version
// it read before reading them, and increments (Change.GateBumps) the jobs side of the
// pool the job waits in; a plan that leaves a runner idle does the mirror. Of a job plan
// and a runner plan that read before the other committed, the one committing second
// fails its check and is planned again, now seeing the other's effect. Two plans that
// each only leave jobs waiting (a burst of queued jobs in a dry pool), or each only
// runners idle, check nothing the other writes: they commute, and never conflict on the
// gate. A plan that only reserves needs no gate (planner.collectGates). A plan that
// both checks and increments one side writes it version checked (Change.Gates).
//
// The capacity side serialises the plans that count a pool's runners against maxRunners
// (registration, starting): they write it version checked, and nothing else does, so
// starting runners does not contend with allocation.
type Gate struct {
	Pool    string
	Side    GateSide
	Version int64
}

// GateSide names one of a pool's gate counters.
type GateSide string

const (
	GateCapacity GateSide = ""        // runner counts: read and written version checked
	GateJobs     GateSide = "jobs"    // incremented when a plan leaves a job pending
	GateRunners  GateSide = "runners" // incremented when a plan leaves a runner idle
)

// GateKey names a gate counter that a Change increments without a version check.
type GateKey struct {
	Pool string
	Side GateSide
}

// Finish marks the delivery whose effects a Change carries as done, in the same atomic
// write. It fails the whole Change (ErrConflict) if the delivery is already finished:
// that is what makes effects apply exactly once.
type Finish struct {
	Key     delivery.Key
	Event   string
	State   delivery.State
	Outcome string
	At      time.Time
	// ReceivedAt places the processed count in the same hourly counter as the total.
	ReceivedAt time.Time
}

// Change is everything one delivery does, written atomically by Store.Commit. Each
// entity carries the Version it was read at (0: must not exist yet); the store checks it
// and stores Version+1. Any failed check fails the whole Change with ErrConflict.
type Change struct {
	Jobs          []*Job
	Runners       []*Runner
	DeleteRunners []*Runner
	Runs          []*Run
	Profiles      []*Profile
	// Gates are written at Version+1 if stored at Version; GateChecks are only checked
	// (a failed check fails the Change with ErrConflict); GateBumps are incremented
	// whatever their version, so that concurrent Changes bumping one gate commute. A
	// Change names each gate at most once in all three.
	Gates      []*Gate
	GateChecks []*Gate
	GateBumps  []GateKey
	Finish     *Finish
	// QueueTimes and Conclusions are added to the hourly job counters (Counters) in the
	// same write, so that a count is neither lost nor doubled.
	QueueTimes  []QueueTime
	Conclusions []Concluded
	// Counts are the changes to the pools' counts (PoolCounts) that writing this Change
	// makes, one per pool, added in the same write. The engine derives them from the
	// entities' states as read and as written (planner.countChange); being part of the
	// version-checked Change, they apply exactly when the entities do.
	Counts []PoolCounts
}

// ErrConflict means a Change was not written because something it read has changed
// since (or its delivery was already finished): read again and retry.
var ErrConflict = errors.New("state changed concurrently")

// ErrNotFound is returned for unknown jobs, runners, runs, profiles and pools.
var ErrNotFound = errors.New("not found")

// JobFilter selects a page of ListJobs. Zero fields select everything.
type JobFilter struct {
	// Status is a GitHub status (jobs in it, newest first by StatusSince) or StatusPending
	// (the pending queues, in queue order).
	Status     Status
	Repository string
	Pool       string
	// Pools are the pools whose pending queues StatusPending merges when Pool is empty:
	// the store only knows the pools created through the API, the caller also the
	// configured ones (Engine.ListJobs fills it in).
	Pools []string
	// Cursor is "" for the first page, else the cursor the previous page returned.
	Cursor string
	Limit  int // 1 to MaxListLimit
}

// Store is what the job domain needs from storage. Every read is a key lookup or an
// ordered index range; nothing scans.
type Store interface {
	Job(ctx context.Context, id int64) (*Job, error)
	Runner(ctx context.Context, name string) (*Runner, error)
	// IdleRunners returns up to limit idle runners of a pool, by name, from the first
	// whose name follows after ("" from the start): the next page is after the last name.
	IdleRunners(ctx context.Context, pool, after string, limit int) ([]*Runner, error)
	// PendingJobs returns up to limit pending jobs of a pool in queue order (QueueKey),
	// from the first whose QueueKey follows after ("" from the start).
	PendingJobs(ctx context.Context, pool, after string, limit int) ([]*Job, error)
	Run(ctx context.Context, id int64) (*Run, error)
	Profile(ctx context.Context, repository string) (*Profile, error)
	// Pools returns the pools kept in the store (those created through the API), by name.
	Pools(ctx context.Context) ([]Pool, error)
	PutPool(ctx context.Context, p Pool) error
	DeletePool(ctx context.Context, name string) error
	// PoolCounts returns the counts of each of pools, in that order (zeros for a pool
	// nothing was counted in), as every Commit's Counts left them: a fixed number of
	// reads, whatever the number of runners and jobs.
	PoolCounts(ctx context.Context, pools []string) ([]PoolCounts, error)
	// Gate returns one side of a pool's gate; one never written has Version 0 (never
	// ErrNotFound).
	Gate(ctx context.Context, pool string, side GateSide) (*Gate, error)
	// Commit writes a Change atomically, or nothing and ErrConflict.
	Commit(ctx context.Context, c *Change) error
	// ListJobs returns a page of the jobs f selects and the cursor of the next page (""
	// after the last), reading a bounded number of index entries whatever the number of
	// jobs (ListJobsIndexed says how). An invalid f is an error wrapping ErrInvalid.
	ListJobs(ctx context.Context, f JobFilter) ([]*Job, string, error)
	// ListRunners returns a page of the runners of pool ("" for all), by pool then name,
	// and the cursor of the next page ("" after the last).
	ListRunners(ctx context.Context, pool, cursor string, limit int) ([]*Runner, string, error)
}
