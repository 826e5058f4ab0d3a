package jobs

import (
	"errors"
	"fmt"
	"testing"
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
