package jobs_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/jobs"
)

// logLines decodes JSON log output.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, raw := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		if len(raw) == 0 {
			continue
		}
		var l map[string]any
		if err := json.Unmarshal(raw, &l); err != nil {
			t.Fatalf("log line %s: %v", raw, err)
		}
		lines = append(lines, l)
	}
	return lines
}

// A fleet operation that hands a job over — a heartbeat reserving a runner for it, a
// removal sending it back to the queue — logs the handover from the post-commit event
// (issue 13: such moves used to leave no trace); a plain heartbeat logs at debug only.
func TestFleetHandoversAreLogged(t *testing.T) {
	tests := []struct {
		name string
		// act runs the fleet operation on an engine with runner linux-1 reserved for job 1
		// (reserve: true) or idle, and job 1 pending in linux.
		reserve bool
		act     func(t *testing.T, e *jobs.Engine) error
		// the handover line's operation and the job's allocation; "" for no handover
		op         jobs.Operation
		allocation jobs.Allocation
	}{
		{"heartbeat reserves the idle runner", false, func(t *testing.T, e *jobs.Engine) error {
			_, _, err := e.Heartbeat(t.Context(), "linux-1", t0.Add(time.Minute))
			return err
		}, jobs.OpHeartbeat, jobs.AllocationReserved},
		{"removal passes the job back to the queue", true, func(t *testing.T, e *jobs.Engine) error {
			_, _, err := e.RemoveRunner(t.Context(), "linux-1", t0.Add(time.Minute))
			return err
		}, jobs.OpRemove, jobs.AllocationPending},
		{"heartbeat of a reserved runner hands nothing over", true, func(t *testing.T, e *jobs.Engine) error {
			_, _, err := e.Heartbeat(t.Context(), "linux-1", t0.Add(time.Minute))
			return err
		}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t)
			if tc.reserve {
				register(t, e, "linux-1", "linux", t0)
				pending(t, e, 1, "linux", t0, 0)
				if _, _, err := e.Heartbeat(t.Context(), "linux-1", t0); err != nil { // takes job 1
					t.Fatal(err)
				}
			} else {
				pending(t, e, 1, "linux", t0, 0) // before the runner: it waits
				commit(t, e, &jobs.Change{Runners: []*jobs.Runner{{Name: "linux-1", Pool: "linux", State: jobs.RunnerIdle, LastSeen: t0}}})
			}
			var buf bytes.Buffer
			e.Subscribe(jobs.Log{Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			if err := tc.act(t, e); err != nil {
				t.Fatal(err)
			}
			var handovers []map[string]any
			for _, l := range logLines(t, &buf) {
				switch l["msg"] {
				case "fleet handover":
					handovers = append(handovers, l)
				case "fleet change":
					if want := map[bool]string{true: "INFO", false: "DEBUG"}[tc.op != ""]; l["level"] != want {
						t.Errorf("fleet change logged at %v, want %s", l["level"], want)
					}
				}
			}
			if tc.op == "" {
				if len(handovers) != 0 {
					t.Errorf("handovers logged: %v", handovers)
				}
				return
			}
			if len(handovers) != 1 {
				t.Fatalf("%d handover lines, want 1: %s", len(handovers), buf.String())
			}
			h := handovers[0]
			if h["operation"] != string(tc.op) || h["job_id"] != 1.0 || h["runner"] != "linux-1" ||
				h["allocation"] != string(tc.allocation) || h["level"] != "INFO" {
				t.Errorf("handover %v, want %s of job 1 from runner linux-1, now %s", h, tc.op, tc.allocation)
			}
		})
	}
}
