package jobs

import (
	"context"
	"time"
)

// Demand asks whatever starts runners for one more runner in Pool, for a job that found
// no idle runner. Signals are sent after the change that caused them is committed, at
// least once: a consumer should treat a repeated (Pool, JobID) as the same request.
type Demand struct {
	Pool       string    `json:"pool"`
	JobID      int64     `json:"jobId"`
	Repository string    `json:"repository"`
	Labels     []string  `json:"labels"`
	Priority   int       `json:"priority"`
	At         time.Time `json:"at"`
	// Resent marks a demand sent again because its job is still waiting (StaleDemands).
	Resent bool `json:"resent,omitempty"`
}

// demandFor is the demand of the pending job j, at at.
func demandFor(j *Job, at time.Time) Demand {
	return Demand{Pool: j.Pool, JobID: j.ID, Repository: j.Repository, Labels: j.Labels, Priority: j.Priority, At: at}
}

// Prewarm says a repository just pushed or updated a pull request, so jobs for the pools
// its recent jobs used will probably follow soon.
type Prewarm struct {
	Repository string    `json:"repository"`
	Pools      []string  `json:"pools"`
	Reason     string    `json:"reason"`
	At         time.Time `json:"at"`
}

// Retire says a committed change deleted a runner RunnerHub started through a provider
// (Runner.Provisioned): whatever starts runners deletes its machine and its GitHub
// registration. Sent at least once, after the commit; deleting twice is harmless, and a
// lost Retire leaves an orphan that reaping finds.
type Retire struct {
	Pool       string    `json:"pool"`
	Runner     string    `json:"runner"`
	ProviderID string    `json:"providerId,omitempty"`
	GitHubID   int64     `json:"githubId,omitempty"`
	JobID      int64     `json:"jobId,omitempty"` // the job it ran or was started for
	Reason     string    `json:"reason"`          // RetireCompleted or RetireRemoved
	At         time.Time `json:"at"`
}

// Retire reasons.
const (
	RetireCompleted = "completed" // an ephemeral runner's job completed
	RetireRemoved   = "removed"   // removed through the API, the reconciler or the provisioner
)

// Signals carries demand, pre-warm and retire signals to whatever starts runners (an SQS
// queue on AWS; the provisioner's loop locally).
type Signals interface {
	Demand(ctx context.Context, d Demand) error
	Prewarm(ctx context.Context, p Prewarm) error
	Retire(ctx context.Context, r Retire) error
}
