package jobs

import (
	"fmt"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// jobEvent is the part of a workflow_job payload the state machine reads.
type jobEvent struct {
	Action      string
	WorkflowJob workflowJobFields
	Repository  repositoryFields
}

type workflowJobFields struct {
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
}

type repositoryFields struct {
	FullName string `json:"full_name"`
}

// runEvent is the part of a workflow_run payload kept in the run record.
type runEvent struct {
	WorkflowRun workflowRunFields
	Repository  repositoryFields
}

type workflowRunFields struct {
	ID         int64     `json:"id"`
	Name       string    `json:"name"`
	HeadBranch string    `json:"head_branch"`
	HeadSHA    string    `json:"head_sha"`
	Event      string    `json:"event"`
	Status     string    `json:"status"`
	Conclusion *string   `json:"conclusion"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// The processor must read a payload as the ingest scan (webhook.Summarize) read it when it
// recorded the delivery, or one signed payload would be listed as one thing and applied
// as another. So it decodes with json/v2 set to the scan's rules rather than with
// encoding/json, which matches names case-insensitively ("Action", "workflow_JOB"):
//   - names match exactly (v2's default);
//   - duplicate names are allowed, and of several the last member counts, whole (v2 alone
//     would merge a later object into an earlier one: see whole);
//   - invalid UTF-8 is read as U+FFFD, as encoding/json and the scan do.
//
// Nesting is bounded at 10,000 levels, as in encoding/json and the scan.
var payloadOptions = json.JoinOptions(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))

// whole decodes a member's value into a fresh T, so that of duplicate members the last
// one counts whole, not merged field by field into what an earlier one set.
type whole[T any] struct{ v T }

func (w *whole[T]) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	var v T
	if err := json.UnmarshalDecode(dec, &v); err != nil {
		return err
	}
	w.v = v
	return nil
}

func decodePayload(payload []byte, into any) error {
	return json.Unmarshal(payload, into, payloadOptions)
}

// ErrBadPayload marks payloads the processor can never apply (retrying cannot help).
var ErrBadPayload = fmt.Errorf("payload cannot be applied")

func decodeJobEvent(payload []byte) (*jobEvent, error) {
	var wire struct {
		Action      string                   `json:"action"`
		WorkflowJob whole[workflowJobFields] `json:"workflow_job"`
		Repository  whole[repositoryFields]  `json:"repository"`
	}
	if err := decodePayload(payload, &wire); err != nil {
		return nil, fmt.Errorf("%w: workflow_job: %v", ErrBadPayload, err)
	}
	ev := jobEvent{Action: wire.Action, WorkflowJob: wire.WorkflowJob.v, Repository: wire.Repository.v}
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
	var wire struct {
		WorkflowRun whole[workflowRunFields] `json:"workflow_run"`
		Repository  whole[repositoryFields]  `json:"repository"`
	}
	if err := decodePayload(payload, &wire); err != nil {
		return nil, fmt.Errorf("%w: workflow_run: %v", ErrBadPayload, err)
	}
	ev := runEvent{WorkflowRun: wire.WorkflowRun.v, Repository: wire.Repository.v}
	if ev.WorkflowRun.ID == 0 {
		return nil, fmt.Errorf("%w: workflow_run without workflow_run.id", ErrBadPayload)
	}
	return &ev, nil
}

// unknownIdentity says why a workflow_job names no job RunnerHub can keep, or "" when it
// names one. GitHub's job ids are positive, and its repositories are "owner/name"; anything
// else would be queued under an id the API cannot address, or a name that is a path.
func (ev *jobEvent) unknownIdentity() string {
	if id := ev.WorkflowJob.ID; id <= 0 {
		return fmt.Sprintf("workflow_job.id %d is not a GitHub job id", id)
	}
	if name := ev.Repository.FullName; !validRepository(name) {
		return fmt.Sprintf("repository %.100q is not a GitHub owner/name", name)
	}
	return ""
}

// The lengths GitHub allows for an account (user or organisation) and a repository name.
const (
	maxOwnerLength      = 39
	maxRepositoryLength = 100
)

// validRepository reports whether fullName is "owner/name" in GitHub's characters: an
// owner of letters, digits, '-' (and '_', which enterprise managed users' names carry),
// and a name of letters, digits, '-', '_' and '.', other than "." and "..".
func validRepository(fullName string) bool {
	owner, name, ok := strings.Cut(fullName, "/")
	if !ok || len(owner) == 0 || len(owner) > maxOwnerLength || len(name) == 0 || len(name) > maxRepositoryLength ||
		name == "." || name == ".." {
		return false
	}
	for _, part := range [...]struct {
		s    string
		dots bool
	}{{owner, false}, {name, true}} {
		for _, c := range []byte(part.s) {
			ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || part.dots && c == '.'
			if !ok {
				return false
			}
		}
	}
	return true
}
