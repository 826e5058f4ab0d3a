package testenv

import (
	"os/exec"
	"strings"
	"testing"
)

// make invoke with a function that does not exist lists those that do, instead of
// make's "No rule to make target".
func TestMakeInvokeListsTheFunctions(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	for _, args := range [][]string{{"FUNCTION=Nope", "EVENT=events/webhook-workflow-job-queued.json"}, {}} {
		cmd := exec.Command("make", append([]string{"--no-print-directory", "invoke"}, args...)...)
		cmd.Dir = RepoRoot(t)
		out, err := cmd.CombinedOutput()
		if err == nil || strings.Contains(string(out), "No rule to make target") {
			t.Errorf("make invoke %v: %v: %s, want a refusal", args, err, out)
		}
		for _, fn := range []string{"WebhookFunction", "ProcessorFunction", "ApiFunction", "WebSocketFunction", "FanoutFunction"} {
			if !strings.Contains(string(out), fn) {
				t.Errorf("make invoke %v does not list %s: %s", args, fn, out)
			}
		}
	}
}
