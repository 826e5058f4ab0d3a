package reconcile

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	gh "github.com/google/go-github/v88/github"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/github"
	"github.com/runnerhub/webhooks/internal/jobs"
)

// jobsCheckpoint remembers when jobs were last asked about, so that each is asked at
// most once per interval even when cycles come closer (a restart, a manual run).
type jobsCheckpoint struct {
	Checked map[int64]time.Time `json:"checked,omitempty"`
}

const jobsCheckpointName = "jobs"

// ConclusionAbandoned is the conclusion recorded for a job GitHub no longer has.
const ConclusionAbandoned = "abandoned"

// StatusGone labels StrandedJob for a job GitHub answered 404 for.
const StatusGone = "gone"

func (r *Reconciler) reconcileJobs(ctx context.Context, rep *Report) error {
	now := r.Now().UTC()
	var cp jobsCheckpoint
	if err := r.loadCheckpoint(ctx, jobsCheckpointName, &cp); err != nil {
		return err
	}
	if cp.Checked == nil {
		cp.Checked = map[int64]time.Time{}
	}
	for id, at := range cp.Checked {
		if now.Sub(at) >= r.Interval {
			delete(cp.Checked, id)
		}
	}
	stale, err := r.staleJobs(ctx, now.Add(-r.After))
	if err != nil {
		return err
	}
	var failed error
	asked := 0
	for _, j := range stale {
		if asked == r.Limits.JobsPerCycle {
			break
		}
		if _, recent := cp.Checked[j.ID]; recent {
			continue
		}
		owner, repo, ok := strings.Cut(j.Repository, "/")
		if !ok {
			continue
		}
		asked++
		rep.JobsChecked++
		cp.Checked[j.ID] = now
		theirs, err := r.GitHub.Job(ctx, owner, repo, j.ID)
		var rec *delivery.Record
		var status string
		switch {
		case errors.Is(err, github.ErrNotFound):
			rec, status = r.goneRecord(j, now), StatusGone
		case err != nil:
			delete(cp.Checked, j.ID) // not answered: ask again next cycle
			failed = err
		case jobs.Status(theirs.GetStatus()).Rank() > j.Status.Rank():
			status = theirs.GetStatus()
			rec, err = r.jobRecord(j, theirs, now)
			if err != nil {
				failed = err
			}
		}
		if failed != nil {
			break
		}
		if rec == nil {
			continue
		}
		if err := r.record(ctx, rec); err != nil {
			failed = err
			break
		}
		rep.JobsApplied++
		r.Metrics.StrandedJob(status)
		r.Log.WarnContext(ctx, "stranded job found: applying GitHub's view", "job_id", j.ID, "repository", j.Repository,
			"ours", string(j.Status), "github", status, "since", j.StatusSince(), "delivery_id", rec.DeliveryID)
	}
	if err := r.saveCheckpoint(ctx, jobsCheckpointName, &cp); err != nil {
		return errors.Join(failed, err)
	}
	return failed
}

// staleJobs returns the queued and in-progress jobs whose status is older than cutoff,
// oldest first. The listings are newest first, so the stale ones are at their end: up
// to JobPages pages of each are read.
func (r *Reconciler) staleJobs(ctx context.Context, cutoff time.Time) ([]*jobs.Job, error) {
	var stale []*jobs.Job
	for _, status := range []jobs.Status{jobs.StatusQueued, jobs.StatusInProgress} {
		cursor := ""
		for range r.Limits.JobPages {
			page, next, err := r.Jobs.ListJobs(ctx, jobs.JobFilter{Status: status, Cursor: cursor, Limit: jobs.MaxListLimit})
			if err != nil {
				return nil, fmt.Errorf("listing %s jobs: %w", status, err)
			}
			for _, j := range page {
				if since := j.StatusSince(); !since.IsZero() && since.Before(cutoff) {
					stale = append(stale, j)
				}
			}
			if next == "" {
				break
			}
			cursor = next
		}
	}
	slices.SortFunc(stale, func(a, b *jobs.Job) int {
		return cmp.Or(a.StatusSince().Compare(b.StatusSince()), cmp.Compare(a.ID, b.ID))
	})
	return stale, nil
}

// reconciliation is added to the payloads the reconciler makes, for the audit trail.
type reconciliation struct {
	Reason     string    `json:"reason"`
	OurStatus  string    `json:"ourStatus"`
	StaleSince time.Time `json:"staleSince"`
}

// jobRecord is GitHub's view of job j as a workflow_job delivery: the job object the
// REST API returned is what a webhook's workflow_job carries.
func (r *Reconciler) jobRecord(j *jobs.Job, theirs *gh.WorkflowJob, now time.Time) (*delivery.Record, error) {
	payload, err := json.Marshal(map[string]any{
		"action":       theirs.GetStatus(),
		"workflow_job": theirs,
		"repository":   map[string]string{"full_name": j.Repository},
		"reconciliation": reconciliation{Reason: "GitHub reports a later status than RunnerHub recorded",
			OurStatus: string(j.Status), StaleSince: j.StatusSince()},
	})
	if err != nil {
		return nil, err
	}
	return newRecord(j, theirs.GetStatus(), payload, now), nil
}

// goneRecord finishes a job GitHub answers 404 for (its run or repository was deleted):
// completed, abandoned, releasing the runner it held.
func (r *Reconciler) goneRecord(j *jobs.Job, now time.Time) *delivery.Record {
	payload, _ := json.Marshal(map[string]any{
		"action": "completed",
		"workflow_job": map[string]any{
			"id": j.ID, "run_id": j.RunID, "name": j.Name, "labels": j.Labels, "status": "completed",
			"conclusion": ConclusionAbandoned, "completed_at": now,
		},
		"repository": map[string]string{"full_name": j.Repository},
		"reconciliation": reconciliation{Reason: "GitHub answers 404 for the job: its run or repository is gone",
			OurStatus: string(j.Status), StaleSince: j.StatusSince()},
	})
	return newRecord(j, StatusGone, payload, now)
}

func newRecord(j *jobs.Job, status string, payload []byte, now time.Time) *delivery.Record {
	action := status
	if status == StatusGone {
		action = string(jobs.StatusCompleted)
	}
	return &delivery.Record{
		Key:        delivery.Key{HookID: Hook, DeliveryID: fmt.Sprintf("%s-%d-%s", Hook, j.ID, status)},
		Event:      "workflow_job",
		Action:     action,
		Repository: j.Repository,
		// Marks the record as RunnerHub's own in the audit trail, not GitHub's.
		InstallationTargetType: "reconciliation",
		ReceivedAt:             now,
		Payload:                payload,
		State:                  delivery.Received,
	}
}
