package jobs

import (
	"encoding/json"
	"fmt"
	"time"
)

// jobEvent is the part of a workflow_job payload the state machine reads.
type jobEvent struct {
	Action      string `json:"action"`
	WorkflowJob struct {
		ID          int64     `json:"id"`
		RunID       int64     `json:"run_id"`
		Name        string    `json:"name"`
		Labels      []string  `json:"labels"`
		HeadSHA     string    `json:"head_sha"`
		HTMLURL     string    `json:"html_url"`
		Status      Status    `json:"status"`
		Conclusion  *string   `json:"conclusion"`
		CreatedAt   time.Time `json:"created_at"`
		StartedAt   time.Time `json:"started_at"`
		CompletedAt time.Time `json:"completed_at"`
		RunnerID    *int64    `json:"runner_id"`
		RunnerName  *string   `json:"runner_name"`
	} `json:"workflow_job"`
	Repository struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
}

// runEvent is the part of a workflow_run payload kept in the run record.
type runEvent struct {
	WorkflowRun struct {
		ID         int64     `json:"id"`
		Name       string    `json:"name"`
		HeadBranch string    `json:"head_branch"`
		HeadSHA    string    `json:"head_sha"`
		Event      string    `json:"event"`
		Status     string    `json:"status"`
		Conclusion *string   `json:"conclusion"`
		CreatedAt  time.Time `json:"created_at"`
		UpdatedAt  time.Time `json:"updated_at"`
	} `json:"workflow_run"`
	Repository struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
}

// ErrBadPayload marks payloads the processor can never apply (retrying cannot help).
var ErrBadPayload = fmt.Errorf("payload cannot be applied")

func decodeJobEvent(payload []byte) (*jobEvent, error) {
	var ev jobEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("%w: workflow_job: %v", ErrBadPayload, err)
	}
	if ev.WorkflowJob.ID == 0 {
		return nil, fmt.Errorf("%w: workflow_job without workflow_job.id", ErrBadPayload)
	}
	// GitHub names the job's state in the action ("The job state is included in the
	// webhook payload as the action property"), and workflow_job.status usually agrees. It
	// can lag: a job behind an environment's protection rule is delivered as "queued" once
	// approved, with its status still "waiting". Statuses only move forward, so the
	// later of the two is what the job has reached; holding such a job as waiting would
	// never give it a runner, nor send its demand.
	if action := Status(ev.Action); action.Rank() > ev.WorkflowJob.Status.Rank() {
		ev.WorkflowJob.Status = action
	}
	if ev.WorkflowJob.Status.Rank() == 0 {
		return nil, fmt.Errorf("%w: workflow_job with unknown status %q", ErrBadPayload, ev.WorkflowJob.Status)
	}
	return &ev, nil
}

func decodeRunEvent(payload []byte) (*runEvent, error) {
	var ev runEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("%w: workflow_run: %v", ErrBadPayload, err)
	}
	if ev.WorkflowRun.ID == 0 {
		return nil, fmt.Errorf("%w: workflow_run without workflow_run.id", ErrBadPayload)
	}
	return &ev, nil
}
