package testenv

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// TestStartLambda runs the webhook function under the emulator without any AWS service:
// a delivery refused before anything is stored never reaches one. It also checks that
// cleanup leaves neither the emulator nor the bootstrap running.
func TestStartLambda(t *testing.T) {
	bootstrap := BuildFunction(t, "WebhookFunction")
	var pids []int
	t.Run("invoke", func(t *testing.T) {
		fn := StartLambda(t, bootstrap, []string{
			"AWS_ENDPOINT_URL=http://127.0.0.1:1", // never called, and nothing listens there
			"AWS_REGION=us-east-1",
			"AWS_ACCESS_KEY_ID=test",
			"AWS_SECRET_ACCESS_KEY=test",
			"RUNNERHUB_EVENTS_TABLE=events",
			"RUNNERHUB_EVENTS_QUEUE_URL=http://127.0.0.1:1/000000000000/events",
			"RUNNERHUB_PAYLOAD_BUCKET=payloads",
			"GITHUB_WEBHOOK_SECRET=" + EventsSecret,
		})
		badSignature, err := os.ReadFile(filepath.Join(RepoRoot(t), "events", "webhook-bad-signature.json"))
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name       string
			event      []byte
			wantStatus int
			wantCode   string
		}{
			{"bad signature", badSignature, http.StatusUnauthorized, "bad_signature"},
			{"unknown route", []byte(`{"version":"2.0","rawPath":"/nope","requestContext":{"http":{"method":"GET","path":"/nope"}}}`),
				http.StatusNotFound, "not_found"},
		}
		for _, tt := range tests {
			var resp events.APIGatewayV2HTTPResponse
			if err := json.Unmarshal(fn.Invoke(t, tt.event), &resp); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if resp.StatusCode != tt.wantStatus || !strings.Contains(resp.Body, `"code":"`+tt.wantCode+`"`) {
				t.Errorf("%s: %d %s, want %d with code %s", tt.name, resp.StatusCode, resp.Body, tt.wantStatus, tt.wantCode)
			}
		}
		// The emulator started the bootstrap on the first invocation.
		pids = append([]int{fn.cmd.Process.Pid}, childPIDs(fn.cmd.Process.Pid)...)
		if len(pids) != 2 {
			t.Errorf("processes %v, want the emulator and the bootstrap", pids)
		}
	})
	for _, pid := range pids {
		if running(pid) {
			t.Errorf("process %d still runs after the test's cleanup", pid)
		}
	}
}

// running reports whether pid is a live process; a zombie, killed but not yet reaped by
// whoever inherited it, does not count. SIGKILL takes effect asynchronously: give it a
// moment.
func running(pid int) bool {
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		// The state follows the command name, which is in parentheses and may hold spaces.
		s := string(stat)
		if state := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(state) > 0 && (state[0] == "Z" || state[0] == "X") {
			return false
		}
	}
	return true
}
