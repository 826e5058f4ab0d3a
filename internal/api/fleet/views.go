package fleet

import (
	"time"

	"github.com/runnerhub/webhooks/internal/jobs"
)

// The JSON the endpoints answer with: camelCase like the product description, every
// field present, null where nothing is known yet.

type jobView struct {
	ID         int64    `json:"id"`
	RunID      int64    `json:"runId"`
	Repository string   `json:"repository"`
	Name       string   `json:"name"`
	Labels     []string `json:"labels"`
	HeadSHA    string   `json:"headSha"`
	HTMLURL    string   `json:"htmlUrl"`
	// Status is GitHub's: waiting, queued, in_progress or completed.
	Status     string  `json:"status"`
	Conclusion *string `json:"conclusion"`
	Priority   int     `json:"priority"`
	Pool       *string `json:"pool"`
	// Allocation is RunnerHub's: unmatched, pending, reserved, assigned or abandoned
	// (null before the job was queued).
	Allocation     *string    `json:"allocation"`
	ReservedRunner *string    `json:"reservedRunner"`
	RunnerID       *int64     `json:"runnerId"`
	RunnerName     *string    `json:"runnerName"`
	CreatedAt      *time.Time `json:"createdAt"`
	QueuedAt       *time.Time `json:"queuedAt"`
	StartedAt      *time.Time `json:"startedAt"`
	CompletedAt    *time.Time `json:"completedAt"`
	// WaitSeconds is queued to started, or to now while the job still waits;
	// RunSeconds is started to completed, or to now while it runs.
	WaitSeconds *float64 `json:"waitSeconds"`
	RunSeconds  *float64 `json:"runSeconds"`
}

func newJobView(j *jobs.Job, now time.Time) jobView {
	return jobView{
		ID: j.ID, RunID: j.RunID, Repository: j.Repository, Name: j.Name, Labels: list(j.Labels),
		HeadSHA: j.HeadSHA, HTMLURL: j.HTMLURL,
		Status: string(j.Status), Conclusion: str(j.Conclusion), Priority: j.Priority,
		Pool: str(j.Pool), Allocation: str(string(j.Allocation)), ReservedRunner: str(j.ReservedRunner),
		RunnerID: num(j.RunnerID), RunnerName: str(j.RunnerName),
		CreatedAt: when(j.CreatedAt), QueuedAt: when(j.QueuedAt), StartedAt: when(j.StartedAt), CompletedAt: when(j.CompletedAt),
		WaitSeconds: span(j.QueuedAt, j.StartedAt, now, j.Status == jobs.StatusQueued),
		RunSeconds:  span(j.StartedAt, j.CompletedAt, now, j.Status == jobs.StatusInProgress),
	}
}

type runnerView struct {
	Name      string   `json:"name"`
	Pool      string   `json:"pool"`
	Labels    []string `json:"labels"`
	Ephemeral bool     `json:"ephemeral"`
	// State is idle, reserved or busy, as last written; Offline says whether the runner
	// counts as offline now (not seen for OfflineAfter).
	State     string     `json:"state"`
	Offline   bool       `json:"offline"`
	JobID     *int64     `json:"jobId"`
	LastSeen  *time.Time `json:"lastSeen"`
	UpdatedAt *time.Time `json:"updatedAt"`
}

func (h *handlers) runnerView(r *jobs.Runner) runnerView {
	return runnerView{
		Name: r.Name, Pool: r.Pool, Labels: list(r.Labels), Ephemeral: r.Ephemeral,
		State: string(r.State), Offline: r.Offline(h.Now(), h.OfflineAfter), JobID: num(r.JobID),
		LastSeen: when(r.LastSeen), UpdatedAt: when(r.UpdatedAt),
	}
}

type poolView struct {
	jobs.PoolDocument
	// Source is "config" for a pool of RUNNERHUB_POOLS, "api" for one created here;
	// OverridesConfig marks an API pool that replaces a configured one of its name.
	Source          string `json:"source"`
	OverridesConfig bool   `json:"overridesConfig"`
}

func newPoolView(p jobs.Pool, source string, overrides bool) poolView {
	return poolView{PoolDocument: p.Document(), Source: source, OverridesConfig: overrides}
}

type poolStatusView struct {
	Name        string   `json:"name"`
	Labels      []string `json:"labels"`
	MinIdle     int      `json:"minIdle"`
	MaxRunners  int      `json:"maxRunners"`
	Idle        int      `json:"idle"`
	Reserved    int      `json:"reserved"`
	Busy        int      `json:"busy"`
	Starting    int      `json:"starting"`
	Offline     int      `json:"offline"`
	PendingJobs int      `json:"pendingJobs"`
	// PendingJobsCapped is always false: pendingJobs is counted on write, exactly. It
	// stays for the clients of the time when it was counted on read, up to 1000.
	PendingJobsCapped bool    `json:"pendingJobsCapped"`
	OldestWaitSeconds float64 `json:"oldestWaitSeconds"`
	Demand            int     `json:"demand"`
}

func newPoolStatusView(s jobs.PoolStatus) poolStatusView {
	return poolStatusView{
		Name: s.Name, Labels: list(s.Labels), MinIdle: s.MinIdle, MaxRunners: s.MaxRunners,
		Idle: s.Idle, Reserved: s.Reserved, Busy: s.Busy, Starting: s.Starting, Offline: s.Offline,
		PendingJobs:       s.PendingJobs,
		OldestWaitSeconds: s.OldestWait.Seconds(), Demand: s.Demand,
	}
}

// page is a listing's data: the items under their name, and where the next page starts.
type page struct {
	Limit int `json:"limit"`
	// NextCursor is the cursor parameter of the next page; null on the last page.
	NextCursor *string `json:"nextCursor"`
}

func newPage(limit int, next string) page { return page{Limit: limit, NextCursor: str(next)} }

func str(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func num(n int64) *int64 {
	if n == 0 {
		return nil
	}
	return &n
}

// when is a time as every answer gives it: UTC, to the millisecond, as the stores keep
// times, so an answer made from a record just built (POST /api/runners) says what a
// later read of it will.
func when(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Millisecond)
	return &t
}

// list keeps JSON lists lists, never null.
func list(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// span is the seconds from start to end, or to now when ongoing; null before start.
func span(start, end, now time.Time, ongoing bool) *float64 {
	switch {
	case start.IsZero():
		return nil
	case end.IsZero() && !ongoing:
		return nil
	case end.IsZero():
		end = now
	}
	s := max(0, end.Sub(start).Seconds())
	return &s
}
