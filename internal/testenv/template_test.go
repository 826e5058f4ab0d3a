package testenv

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
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

// Only the functions that talk to GitHub (the reconciler and the provisioner) may read
// its credentials: GitHubCredentialsPolicy, attached to their roles alone, grants
// ssm:GetParameter on the two credential parameters and nothing else of SSM. The only
// other SSM actions in the template are those on the runners' JIT configurations.
func TestGitHubCredentialsAreLeastPrivilege(t *testing.T) {
	tpl := decodeTemplate(t)
	resources := dig(tpl, "Resources").(map[string]any)
	mayUseSSM := map[string]bool{"GitHubCredentialsPolicy": true, "ProvisionerFunction": true, "RunnerInstanceRole": true}
	for name, res := range resources {
		if mayUseSSM[name] {
			continue
		}
		if raw, _ := json.Marshal(res); strings.Contains(string(raw), "ssm:") || strings.Contains(string(raw), "kms:") {
			t.Errorf("%s is granted SSM or KMS actions; only GitHubCredentialsPolicy reads GitHub's credentials", name)
		}
	}
	policy := dig(resources, "GitHubCredentialsPolicy").(map[string]any)
	if policy["Condition"] != "HasGitHubParameter" {
		t.Errorf("GitHubCredentialsPolicy condition %v, want HasGitHubParameter", policy["Condition"])
	}
	roles, _ := json.Marshal(dig(policy, "Properties", "Roles"))
	if string(roles) != `[{"Ref":"ReconcilerFunctionRole"},{"Ref":"ProvisionerFunctionRole"}]` {
		t.Errorf("GitHubCredentialsPolicy is attached to %s, want the reconciler's and the provisioner's roles", roles)
	}
	var ssm []string
	for _, st := range policyStatements(t, resources, "GitHubCredentialsPolicy") {
		raw := jsonOf(st.body)
		if strings.Contains(raw, `"*"`) || strings.Contains(raw, `:*"`) {
			t.Errorf("wildcard in a GitHubCredentialsPolicy statement: %s", raw)
		}
		if strings.Contains(raw, "ssm:") {
			ssm = append(ssm, raw)
		}
	}
	if len(ssm) != 1 {
		t.Fatalf("SSM statements: %v, want one", ssm)
	}
	for _, want := range []string{`"ssm:GetParameter"`, `parameter/${GitHubAppPrivateKeyParameter}`, `parameter/${GitHubTokenParameter}`} {
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
	requireSchedules(t, tpl, "ReconcileInterval", "5m")
	env := dig(tpl, "Resources", "ReconcilerFunction", "Properties", "Environment", "Variables").(map[string]any)
	for _, name := range []string{"RUNNERHUB_GITHUB_API_URL", "RUNNERHUB_GITHUB_APP_ID", "RUNNERHUB_GITHUB_APP_PRIVATE_KEY_PARAMETER",
		"RUNNERHUB_GITHUB_APP_INSTALLATION_ID", "RUNNERHUB_GITHUB_HOOKS", "RUNNERHUB_RECONCILE_INTERVAL", "RUNNERHUB_RECONCILE_AFTER",
		"RUNNERHUB_FANOUT_QUEUE_URL"} {
		if _, ok := env[name]; !ok {
			t.Errorf("ReconcilerFunction lacks %s", name)
		}
	}
	if _, ok := env["RUNNERHUB_GITHUB_TOKEN"]; ok {
		t.Error("a token in the function's environment: it belongs in SSM")
	}
}

// requireSchedules checks that the interval parameter param defaults to def and that each
// of its allowed values has an expression in IntervalSchedules.
func requireSchedules(t *testing.T, tpl map[string]any, param, def string) {
	t.Helper()
	p := dig(tpl, "Parameters", param).(map[string]any)
	if p["Default"] != def {
		t.Errorf("%s default %v, want %s", param, p["Default"], def)
	}
	schedules := dig(tpl, "Mappings", "IntervalSchedules").(map[string]any)
	for _, v := range p["AllowedValues"].([]any) {
		expr, _ := dig(schedules, v.(string), "Expression").(string)
		if !strings.HasPrefix(expr, "rate(") {
			t.Errorf("%s %v has no schedule expression", param, v)
		}
	}
}

// statement is one statement of a policy document, with the condition it is under when
// the template adds it with Fn::If ("" for none).
type statement struct {
	condition string
	body      map[string]any
}

// policyStatements returns the statements of resource name's policy documents (a
// function's Policies, where SAM policy templates have none, or a policy's own
// PolicyDocument), those behind Fn::If included; a resource without any fails the test.
func policyStatements(t *testing.T, resources map[string]any, name string) []statement {
	t.Helper()
	props := dig(resources, name, "Properties")
	documents, _ := dig(props, "Policies").([]any)
	if document := dig(props, "PolicyDocument"); document != nil {
		documents = append(documents, document)
	}
	var out []statement
	for _, document := range documents {
		items, _ := dig(document, "Statement").([]any)
		for _, item := range items {
			m, _ := item.(map[string]any)
			if branches, ok := m["Fn::If"].([]any); ok && len(branches) == 3 {
				for _, b := range branches[1:] {
					if body, ok := b.(map[string]any); ok && body["Ref"] != "AWS::NoValue" {
						out = append(out, statement{condition: branches[0].(string), body: body})
					}
				}
				continue
			}
			out = append(out, statement{body: m})
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no policy statements", name)
	}
	return out
}

// actions lists the statement's actions, whether the template gives one or a list.
func (st statement) actions() []string {
	switch a := st.body["Action"].(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, v := range a {
			s, _ := v.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Live updates leave the committing functions as one SQS message each: the
// ProcessorFunction and the ApiFunction may send to FanoutQueue and no longer post to
// connections; only the FanoutFunction and the WebSocketFunction (its replies) may, on
// the WebSocket API's stage alone; the FanoutFunction reads only the partitions of
// connections and pool counts, and deletes only connection items.
func TestFanoutIAMIsLeastPrivilege(t *testing.T) {
	resources := dig(decodeTemplate(t), "Resources").(map[string]any)
	const connections = `arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/ws/POST/@connections/*`
	for name, res := range resources {
		if dig(res, "Type") != "AWS::Serverless::Function" {
			continue
		}
		posts := false
		for _, st := range policyStatements(t, resources, name) {
			for _, a := range st.actions() {
				if strings.HasSuffix(a, "*") {
					t.Errorf("%s: wildcard action %s", name, a)
				}
				if !strings.HasPrefix(a, "execute-api:") {
					continue
				}
				posts = true
				if a != "execute-api:ManageConnections" || !strings.Contains(jsonOf(st.body["Resource"]), connections) {
					t.Errorf("%s: %s on %s, want only execute-api:ManageConnections on the WebSocket API's connections", name, a, jsonOf(st.body["Resource"]))
				}
			}
		}
		if want := name == "FanoutFunction" || name == "WebSocketFunction"; posts != want {
			t.Errorf("%s may post to connections: %v, want %v", name, posts, want)
		}
	}
	for _, name := range []string{"ProcessorFunction", "ApiFunction"} {
		if got := jsonOf(dig(resources, name, "Properties", "Environment", "Variables", "RUNNERHUB_FANOUT_QUEUE_URL")); got != `{"Ref":"FanoutQueue"}` {
			t.Errorf("%s RUNNERHUB_FANOUT_QUEUE_URL = %s, want FanoutQueue's URL", name, got)
		}
		sends := false
		for _, st := range policyStatements(t, resources, name) {
			raw := jsonOf(st.body)
			if strings.Contains(raw, "WSCONN") {
				t.Errorf("%s still writes connection records: %s", name, raw)
			}
			if strings.Contains(raw, "FanoutQueue") {
				sends = slices.Equal(st.actions(), []string{"sqs:SendMessage"}) && jsonOf(st.body["Resource"]) == `{"Fn::GetAtt":["FanoutQueue","Arn"]}`
			}
		}
		if !sends {
			t.Errorf("%s may not SendMessage (alone) to FanoutQueue", name)
		}
	}
	readsCounts := false
	for _, st := range policyStatements(t, resources, "FanoutFunction") {
		acts := st.actions()
		if !strings.HasPrefix(acts[0], "dynamodb:") {
			continue
		}
		keys := jsonOf(dig(st.body, "Condition", "ForAllValues:StringLike", "dynamodb:LeadingKeys"))
		for _, a := range acts {
			switch a {
			case "dynamodb:Query":
			case "dynamodb:BatchWriteItem":
				if keys != `["WSCONN#*"]` {
					t.Errorf("FanoutFunction writes items of %s, want only WSCONN#*", keys)
				}
			case "dynamodb:BatchGetItem":
				if keys != `["POOLCOUNTS#*"]` {
					t.Errorf("FanoutFunction batch-reads items of %s, want only the pools' counts, POOLCOUNTS#*", keys)
				}
				readsCounts = jsonOf(st.body["Resource"]) == `{"Fn::GetAtt":["EventsTable","Arn"]}`
			default:
				t.Errorf("FanoutFunction: %s; it only queries, reads the pools' counts and deletes connection items", a)
			}
		}
		if keys == "null" || strings.Contains(keys, `"*"`) {
			t.Errorf("FanoutFunction statement %s is not limited to its partitions", jsonOf(st.body))
		}
	}
	if !readsCounts {
		t.Error("FanoutFunction may not BatchGetItem the pools' counts (POOLCOUNTS#* on EventsTable): its pool-status messages read them once per run")
	}
}

// The FanoutFunction consumes FanoutQueue in batches of a second, reporting failed
// records alone, and FanoutQueue keeps an update no longer than it is worth.
func TestFanoutFunctionConsumesFanoutQueue(t *testing.T) {
	resources := dig(decodeTemplate(t), "Resources").(map[string]any)
	events, _ := dig(resources, "FanoutFunction", "Properties", "Events").(map[string]any)
	if len(events) != 1 {
		t.Fatalf("FanoutFunction events %s, want one SQS event", jsonOf(events))
	}
	for _, ev := range events {
		p := dig(ev, "Properties")
		if dig(ev, "Type") != "SQS" || jsonOf(dig(p, "Queue")) != `{"Fn::GetAtt":["FanoutQueue","Arn"]}` ||
			jsonOf(dig(p, "FunctionResponseTypes")) != `["ReportBatchItemFailures"]` ||
			dig(p, "MaximumBatchingWindowInSeconds") != 1.0 || dig(p, "BatchSize") != 1000.0 {
			t.Errorf("FanoutFunction event %s, want FanoutQueue with a 1 s window, batches of 1000 and ReportBatchItemFailures", jsonOf(ev))
		}
	}
	queue := dig(resources, "FanoutQueue", "Properties")
	timeout, _ := dig(resources, "FanoutFunction", "Properties", "Timeout").(float64)
	if visibility, _ := dig(queue, "VisibilityTimeout").(float64); visibility < 6*timeout || timeout == 0 {
		t.Errorf("FanoutQueue visibility %v s for a %v s function, want at least 6×", visibility, timeout)
	}
	if retention, _ := dig(queue, "MessageRetentionPeriod").(float64); retention > 900 {
		t.Errorf("FanoutQueue keeps updates %v s; a live update is stale long before", retention)
	}
	if size := dig(queue, "MaximumMessageSize"); size != 1048576.0 {
		t.Errorf("FanoutQueue MaximumMessageSize %v, want awslive.MaxAnnouncementBytes", size)
	}
}
