package testenv

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Job describes one workflow_job delivery to make from the real payload in testdata/.
type Job struct {
	ID         int64
	Labels     []string
	Status     string // waiting, queued, in_progress, completed
	Runner     string // runner_name, set from in_progress on
	Conclusion string // set on completed
	Repository string // repository.full_name; the fixture's when empty
	Created    time.Time
	At         time.Time // when this event happened (started_at / completed_at)
	// Started is started_at once a runner has started the job (At when zero): GitHub's
	// completed repeats the in_progress's started_at.
	Started time.Time
}

// JobPayload returns testdata/workflow_job.queued.json rewritten into j: a realistic
// workflow_job delivery body for tests that need a job's life cycle.
func JobPayload(t testing.TB, j Job) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(RepoRoot(t), "testdata", "workflow_job.queued.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	p["action"] = j.Status
	wj := p["workflow_job"].(map[string]any)
	wj["id"], wj["run_id"], wj["labels"], wj["status"] = j.ID, 5000+j.ID%7, j.Labels, j.Status
	wj["name"] = fmt.Sprintf("job-%d", j.ID)
	wj["created_at"] = j.Created.UTC().Format(time.RFC3339)
	wj["runner_name"], wj["runner_id"], wj["conclusion"], wj["completed_at"] = nil, nil, nil, nil
	wj["started_at"] = j.Created.UTC().Format(time.RFC3339) // GitHub's value until a runner starts it
	if j.Runner != "" {
		wj["runner_name"], wj["runner_id"] = j.Runner, 7
		wj["started_at"] = cmp.Or(j.Started, j.At).UTC().Format(time.RFC3339)
	}
	if j.Conclusion != "" {
		wj["conclusion"], wj["completed_at"] = j.Conclusion, j.At.UTC().Format(time.RFC3339)
	}
	if j.Repository != "" {
		p["repository"].(map[string]any)["full_name"] = j.Repository
	}
	body, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return body
}
