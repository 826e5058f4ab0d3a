package jobs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/runnerhub/webhooks/internal/webhook"
)

// The status a workflow_job delivery moves its job to is the later of the action and
// workflow_job.status.
func TestDecodeJobEventStatus(t *testing.T) {
	cases := []struct {
		action, status string
		want           Status
		bad            bool
	}{
		{"queued", "queued", StatusQueued, false},
		{"queued", "waiting", StatusQueued, false}, // approved, the status not updated yet (testdata/workflow_job.queued.2.json)
		{"waiting", "waiting", StatusWaiting, false},
		{"in_progress", "in_progress", StatusInProgress, false},
		{"completed", "completed", StatusCompleted, false},
		{"queued", "in_progress", StatusInProgress, false}, // the status is ahead: keep it
		{"", "queued", StatusQueued, false},
		{"queued", "", StatusQueued, false},
		{"requested", "pending", "", true}, // neither names a status the state machine knows
	}
	for _, c := range cases {
		payload := fmt.Sprintf(`{"action":%q,"workflow_job":{"id":7,"status":%q}}`, c.action, c.status)
		ev, err := decodeJobEvent([]byte(payload))
		switch {
		case c.bad:
			if !errors.Is(err, ErrBadPayload) {
				t.Errorf("action %q status %q: err = %v, want ErrBadPayload", c.action, c.status, err)
			}
		case err != nil:
			t.Errorf("action %q status %q: %v", c.action, c.status, err)
		case ev.WorkflowJob.Status != c.want:
			t.Errorf("action %q status %q: status %q, want %q", c.action, c.status, ev.WorkflowJob.Status, c.want)
		}
	}
}

// The processor reads the fields the ingest scan listed the delivery under with the same
// rules: exact names, and of duplicates the last counts, whole. Each case is one of the
// hardening review's signed payloads that meant one thing to ingest and another here.
func TestPayloadReadAsIngestReadIt(t *testing.T) {
	const job = `"workflow_job":{"id":7,"status":"queued"}`
	cases := []struct {
		name, payload string
		action, repo  string
		noJob         bool // the processor must find no job in it
	}{
		{"extra Action", `{"action":"queued","Action":"completed",` + job + `,"repository":{"full_name":"octo/repo"}}`, "queued", "octo/repo", false},
		{"extra Repository", `{"action":"queued",` + job + `,"repository":{"full_name":"octo/repo"},"Repository":{"full_name":"evil/other"}}`, "queued", "octo/repo", false},
		{"workflow_JOB", `{"action":"queued","workflow_JOB":{"id":8,"status":"queued"},"repository":{"full_name":"octo/repo"}}`, "queued", "octo/repo", true},
		{"later action", `{"action":"queued","action":"completed",` + job + `}`, "completed", "", false},
		{"later repository, whole", `{` + job + `,"repository":{"full_name":"octo/repo"},"repository":{"name":"other"}}`, "", "", false},
		{"later workflow_job, whole", `{"workflow_job":{"id":7,"status":"queued","labels":["gpu"]},"workflow_job":{"id":7,"status":"queued"}}`, "", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := webhook.Summarize([]byte(c.payload))
			if err != nil || s.Action != c.action || s.Repository != c.repo {
				t.Fatalf("ingest reads %+v (%v), want action %q repository %q", s, err, c.action, c.repo)
			}
			ev, err := decodeJobEvent([]byte(c.payload))
			if err != nil {
				t.Fatal(err)
			}
			if c.noJob && ev.unknownIdentity() == "" {
				t.Fatalf("found job %d in it", ev.WorkflowJob.ID)
			}
			if ev.Action != s.Action || ev.Repository.FullName != s.Repository {
				t.Fatalf("processor reads action %q repository %q, ingest %+v", ev.Action, ev.Repository.FullName, s)
			}
			if c.name == "later workflow_job, whole" && ev.WorkflowJob.Labels != nil {
				t.Fatalf("an earlier duplicate's labels %v were merged into the later one", ev.WorkflowJob.Labels)
			}
		})
	}
}

// FuzzPayloadReadAsIngestReadIt is the differential test: for any payload both accept,
// the processor's action and repository (workflow_job and workflow_run) are the ingest
// scan's. Run longer with: go test ./internal/jobs -run '^$' -fuzz FuzzPayloadReadAsIngestReadIt
func FuzzPayloadReadAsIngestReadIt(f *testing.F) {
	for _, name := range []string{"workflow_job.queued.json", "workflow_job.completed.json", "workflow_run.completed.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, seed := range []string{
		`{"action":"queued","Action":"completed","workflow_job":{"id":1,"status":"queued"},"repository":{"full_name":"a/b"},"Repository":{"full_name":"c/d"}}`,
		`{"action":"queued","action":null,"workflow_job":{"id":1},"repository":{"full_name":"a/b"},"repository":{"full_name":"c\u0000d"}}`,
		`{"workflow_run":{"id":1},"repository":{"full_name":"a/b","full_name":"\ud800"},"repository":{"full_name":"a/b\xff"}}`,
		`{"\u0061ction":"queued","workflow_job":{"id":1,"id":2},"repository":null}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		s, err := webhook.Summarize(payload)
		if err != nil {
			return // refused at ingest: the processor never sees it
		}
		if ev, err := decodeJobEvent(payload); err == nil {
			if ev.Action != s.Action || ev.Repository.FullName != s.Repository {
				t.Fatalf("workflow_job: processor reads action %q repository %q, ingest %+v", ev.Action, ev.Repository.FullName, s)
			}
		}
		if ev, err := decodeRunEvent(payload); err == nil && ev.Repository.FullName != s.Repository {
			t.Fatalf("workflow_run: processor reads repository %q, ingest %q", ev.Repository.FullName, s.Repository)
		}
	})
}
