package testenv

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// decodeTemplate reads template.yaml as cfn-lint does (its YAML loader knows the
// CloudFormation tags) and returns it as JSON-shaped maps.
func decodeTemplate(t *testing.T) map[string]any {
	t.Helper()
	python := RequireTool(t, "python3", "install Python 3")
	script := `import json, sys
from cfnlint.decode import decode
tpl, matches = decode(sys.argv[1])
if matches:
    sys.exit("\n".join(str(m) for m in matches))
print(json.dumps(tpl, default=str))`
	out, err := exec.Command(python, "-c", script, filepath.Join(RepoRoot(t), "template.yaml")).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && strings.Contains(string(ee.Stderr), "No module named") {
			if ToolsRequired() {
				t.Fatalf("cfnlint is not importable: %s", ee.Stderr)
			}
			t.Skipf("cfnlint is not importable from python3: %s", ee.Stderr)
		}
		t.Fatalf("decoding template.yaml: %v", err)
	}
	var tpl map[string]any
	if err := json.Unmarshal(out, &tpl); err != nil {
		t.Fatal(err)
	}
	return tpl
}

func dig(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// The ReconcilerFunction may read the GitHub credentials' SSM parameters and nothing
// else of SSM, no other function may read SSM at all, and no statement of it is a
// wildcard.
func TestReconcilerIAMIsLeastPrivilege(t *testing.T) {
	tpl := decodeTemplate(t)
	resources := dig(tpl, "Resources").(map[string]any)
	for name, res := range resources {
		if name == "ReconcilerFunction" {
			continue
		}
		if raw, _ := json.Marshal(res); strings.Contains(string(raw), "ssm:") || strings.Contains(string(raw), "kms:") {
			t.Errorf("%s is granted SSM or KMS actions; only the ReconcilerFunction reads GitHub's credentials", name)
		}
	}
	policies, _ := json.Marshal(dig(resources, "ReconcilerFunction", "Properties", "Policies"))
	var doc []struct {
		Statement []any
	}
	if err := json.Unmarshal(policies, &doc); err != nil || len(doc) != 1 {
		t.Fatalf("ReconcilerFunction policies: %s (%v)", policies, err)
	}
	var ssm []string
	for _, st := range doc[0].Statement {
		raw, _ := json.Marshal(st)
		if strings.Contains(string(raw), `"*"`) || strings.Contains(string(raw), `"ssm:*"`) || strings.Contains(string(raw), `:*"`) {
			t.Errorf("wildcard in a ReconcilerFunction statement: %s", raw)
		}
		if strings.Contains(string(raw), "ssm:") {
			ssm = append(ssm, string(raw))
		}
	}
	if len(ssm) != 1 {
		t.Fatalf("SSM statements: %v, want one", ssm)
	}
	for _, want := range []string{`"ssm:GetParameter"`, `parameter/${GitHubAppPrivateKeyParameter}`, `parameter/${GitHubTokenParameter}`, `HasGitHubParameter`} {
		if !strings.Contains(ssm[0], want) {
			t.Errorf("the SSM statement %s lacks %s", ssm[0], want)
		}
	}
	for _, bad := range []string{"ssm:GetParameters", "ssm:GetParametersByPath", "DescribeParameters"} {
		if strings.Contains(ssm[0], bad) {
			t.Errorf("the SSM statement grants %s", bad)
		}
	}
}

// ReconcileInterval's default is RUNNERHUB_RECONCILE_INTERVAL's, and every allowed value
// has a schedule expression.
func TestReconcileScheduleCoversEveryInterval(t *testing.T) {
	tpl := decodeTemplate(t)
	param := dig(tpl, "Parameters", "ReconcileInterval").(map[string]any)
	if param["Default"] != "5m" {
		t.Errorf("ReconcileInterval default %v, want 5m (RUNNERHUB_RECONCILE_INTERVAL's)", param["Default"])
	}
	schedules := dig(tpl, "Mappings", "ReconcileSchedules").(map[string]any)
	for _, v := range param["AllowedValues"].([]any) {
		expr, _ := dig(schedules, v.(string), "Expression").(string)
		if !strings.HasPrefix(expr, "rate(") {
			t.Errorf("interval %v has no schedule expression", v)
		}
	}
	env := dig(tpl, "Resources", "ReconcilerFunction", "Properties", "Environment", "Variables").(map[string]any)
	for _, name := range []string{"RUNNERHUB_GITHUB_API_URL", "RUNNERHUB_GITHUB_APP_ID", "RUNNERHUB_GITHUB_APP_PRIVATE_KEY_PARAMETER",
		"RUNNERHUB_GITHUB_APP_INSTALLATION_ID", "RUNNERHUB_GITHUB_HOOKS", "RUNNERHUB_RECONCILE_INTERVAL", "RUNNERHUB_RECONCILE_AFTER"} {
		if _, ok := env[name]; !ok {
			t.Errorf("ReconcilerFunction lacks %s", name)
		}
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	if slices.Contains(keys, "RUNNERHUB_GITHUB_TOKEN") {
		t.Error("a token in the function's environment: it belongs in SSM")
	}
}
