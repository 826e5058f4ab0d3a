package testenv

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// template.yaml must pass cfn-lint without a single finding (errors, warnings or
// informational), so that `sam validate --lint` and CI stay quiet.
func TestTemplateLintsClean(t *testing.T) {
	lint := RequireTool(t, "cfn-lint", "pip install cfn-lint")
	root := RepoRoot(t)
	cmd := exec.Command(lint, "--", filepath.Join(root, "template.yaml"))
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("cfn-lint template.yaml (%v):\n%s", err, out)
	}
}
