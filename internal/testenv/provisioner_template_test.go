package testenv

import (
	"fmt"
	"strings"
	"testing"

	"github.com/runnerhub/webhooks/internal/provider/ec2provider"
)

// provisionerStatements returns the ProvisionerFunction's policy statements by Sid.
func provisionerStatements(t *testing.T, tpl map[string]any) map[string]statement {
	t.Helper()
	policies, _ := dig(tpl, "Resources", "ProvisionerFunction", "Properties", "Policies").([]any)
	if len(policies) != 1 {
		t.Fatalf("ProvisionerFunction policies: %v, want one document", policies)
	}
	out := map[string]statement{}
	for _, st := range policyStatements(t, dig(tpl, "Resources").(map[string]any), "ProvisionerFunction") {
		sid, _ := st.body["Sid"].(string)
		if _, dup := out[sid]; dup || sid == "" {
			t.Fatalf("statement Sid %q missing or repeated", sid)
		}
		out[sid] = st
	}
	return out
}

// The ProvisionerFunction's IAM is issue 12's: RunInstances only with the configured
// launch templates, CreateTags only while RunInstances creates, TerminateInstances only on
// instances tagged as RunnerHub's, PassRole only for the runner instance role, SSM only
// on the JIT configuration parameters; "*" only where IAM knows nothing narrower.
func TestProvisionerIAMIsLeastPrivilege(t *testing.T) {
	tpl := decodeTemplate(t)
	sts := provisionerStatements(t, tpl)

	// Which statements may grant each action that touches EC2, IAM or SSM.
	allowed := map[string]string{
		"ec2:RunInstances":       "RunOnlyFromTheConfiguredTemplates",
		"ec2:CreateTags":         "TagOnlyWhileCreating",
		"ec2:TerminateInstances": "TerminateOnlyManaged",
		"ec2:DescribeInstances":  "DescribeInstances",
		"iam:PassRole":           "PassOnlyTheRunnerRole",
		"ssm:PutParameter":       "JITParameters",
		"ssm:DeleteParameter":    "JITParameters",
	}
	for sid, st := range sts {
		for _, a := range st.actions() {
			if strings.Contains(a, "*") {
				t.Errorf("%s grants the wildcard action %s", sid, a)
			}
			service, _, _ := strings.Cut(a, ":")
			if (service == "ec2" || service == "iam" || service == "ssm") && allowed[a] != sid {
				t.Errorf("%s grants %s; only %s may", sid, a, allowed[a])
			}
		}
		if res := jsonOf(st.body["Resource"]); (res == `"*"` || strings.Contains(res, `["*"`)) && sid != "DescribeInstances" {
			t.Errorf("%s is on every resource: %s", sid, res)
		}
	}
	for _, sid := range []string{"RunOnlyFromTheConfiguredTemplates", "TagOnlyWhileCreating", "TerminateOnlyManaged", "PassOnlyTheRunnerRole", "JITParameters"} {
		if _, ok := sts[sid]; !ok {
			t.Errorf("no statement %s", sid)
		}
	}

	run := sts["RunOnlyFromTheConfiguredTemplates"]
	if run.condition != "HasRunnerLaunchTemplates" {
		t.Errorf("RunInstances granted under %q, want only with launch templates configured", run.condition)
	}
	for _, ids := range [][]string{{"lt-0123456789abcdef0"}, {"lt-0123456789abcdef0", "lt-0fedcba9876543210"}} {
		got := resolve(t, dig(run.body, "Condition", "ArnLike", "ec2:LaunchTemplate"), map[string]any{"RunnerLaunchTemplateIds": ids})
		var want []any
		for _, id := range ids {
			want = append(want, "arn:*:ec2:*:*:launch-template/"+id)
		}
		if jsonOf(got) != jsonOf(want) {
			t.Errorf("with launch templates %v, RunInstances is allowed for %v, want %v", ids, got, want)
		}
	}
	for _, r := range run.body["Resource"].([]any) {
		arn := jsonOf(r)
		if !strings.Contains(arn, `arn:${AWS::Partition}:ec2:${AWS::Region}:`) {
			t.Errorf("RunInstances resource %s is not this region's", arn)
		}
	}

	for sid, want := range map[string]string{
		"TagOnlyWhileCreating": `{"StringEquals":{"ec2:CreateAction":"RunInstances"}}`,
		// ec2provider's pool tag is the one that marks an instance as managed.
		"TerminateOnlyManaged":  fmt.Sprintf(`{"Null":{"aws:ResourceTag/%s":"false"}}`, ec2provider.TagPool),
		"PassOnlyTheRunnerRole": `{"StringEquals":{"iam:PassedToService":{"Fn::Sub":"ec2.${AWS::URLSuffix}"}}}`,
	} {
		if got := jsonOf(sts[sid].body["Condition"]); got != want {
			t.Errorf("%s condition %s, want %s", sid, got, want)
		}
	}
	if got := jsonOf(sts["PassOnlyTheRunnerRole"].body["Resource"]); got != `{"Fn::GetAtt":["RunnerInstanceRole","Arn"]}` {
		t.Errorf("PassRole on %s, want the runner instance role only", got)
	}
	wantParams := fmt.Sprintf(`{"Fn::Sub":"arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter%s*"}`, ec2provider.ParameterPrefix)
	if got := jsonOf(sts["JITParameters"].body["Resource"]); got != wantParams {
		t.Errorf("JIT parameters statement on %s, want %s", got, wantParams)
	}
	if got := jsonOf(dig(tpl, "Resources", "RunnerInstanceRole", "Properties", "Policies")); !strings.Contains(got, wantParams) ||
		strings.Count(got, `"Resource"`) != 1 || !strings.Contains(got, `["ssm:GetParameter","ssm:DeleteParameter"]`) {
		t.Errorf("RunnerInstanceRole may %s; want to read and delete the JIT parameters only", got)
	}

	// No other resource may start, tag or end instances.
	for name, res := range dig(tpl, "Resources").(map[string]any) {
		if name == "ProvisionerFunction" {
			continue
		}
		if raw := jsonOf(res); strings.Contains(raw, `"ec2:`) || strings.Contains(raw, "iam:PassRole") {
			t.Errorf("%s is granted EC2 or PassRole actions", name)
		}
	}
}

// resolve evaluates the Ref, Fn::Join and Fn::Split of node with the parameters given, as
// CloudFormation would (a CommaDelimitedList parameter is a list).
func resolve(t *testing.T, node any, params map[string]any) any {
	t.Helper()
	m, ok := node.(map[string]any)
	if !ok {
		if list, ok := node.([]any); ok {
			out := make([]any, len(list))
			for i, v := range list {
				out[i] = resolve(t, v, params)
			}
			return out
		}
		return node
	}
	switch {
	case m["Ref"] != nil:
		v, ok := params[m["Ref"].(string)]
		if !ok {
			t.Fatalf("Ref to %v, which the test gives no value", m["Ref"])
		}
		if list, ok := v.([]string); ok {
			out := make([]any, len(list))
			for i, s := range list {
				out[i] = s
			}
			return out
		}
		return v
	case m["Fn::Join"] != nil:
		args := m["Fn::Join"].([]any)
		var parts []string
		for _, p := range resolve(t, args[1], params).([]any) {
			parts = append(parts, p.(string))
		}
		return strings.Join(parts, args[0].(string))
	case m["Fn::Split"] != nil:
		args := m["Fn::Split"].([]any)
		var out []any
		for _, s := range strings.Split(resolve(t, args[1], params).(string), args[0].(string)) {
			out = append(out, s)
		}
		return out
	}
	t.Fatalf("resolve: %s is not supported", jsonOf(node))
	return nil
}

// The function is fed by the demand queue with partial batch failures, runs the pass on
// RUNNERHUB_PROVISIONER_INTERVAL's schedule (a minute at least: EventBridge's finest), and
// has the time the queue's visibility timeout assumes.
func TestProvisionerFunctionWiring(t *testing.T) {
	tpl := decodeTemplate(t)
	requireSchedules(t, tpl, "ProvisionerInterval", "1m")
	allowed := dig(tpl, "Parameters", "ProvisionerInterval", "AllowedValues").([]any)
	if allowed[0] != "1m" {
		t.Errorf("ProvisionerInterval's shortest is %v, want 1m", allowed[0])
	}
	fn := dig(tpl, "Resources", "ProvisionerFunction", "Properties")
	signals := jsonOf(dig(fn, "Events", "Signals"))
	for _, want := range []string{`"Type":"SQS"`, `"Queue":{"Fn::GetAtt":["DemandQueue","Arn"]}`, `"FunctionResponseTypes":["ReportBatchItemFailures"]`,
		`"Enabled":{"Fn::If":["ProvisionerConsumesDemands",true,false]}`} {
		if !strings.Contains(signals, want) {
			t.Errorf("the SQS event %s lacks %s", signals, want)
		}
	}
	if got := jsonOf(dig(fn, "Events", "Pass")); got != `{"Properties":{"Schedule":{"Fn::FindInMap":["IntervalSchedules",{"Ref":"ProvisionerInterval"},"Expression"]}},"Type":"Schedule"}` {
		t.Errorf("the pass's schedule is %s", got)
	}
	env := dig(fn, "Environment", "Variables").(map[string]any)
	for name, want := range map[string]string{
		"RUNNERHUB_PROVISIONER_INTERVAL": `{"Ref":"ProvisionerInterval"}`,
		"RUNNERHUB_POOLS":                `{"Ref":"Pools"}`,
		"RUNNERHUB_GITHUB_RUNNER_SCOPE":  `{"Ref":"GitHubRunnerScope"}`,
		"RUNNERHUB_GITHUB_APP_ID":        `{"Ref":"GitHubAppId"}`,
		"RUNNERHUB_GITHUB_API_URL":       `{"Ref":"GitHubApiUrl"}`,
		"RUNNERHUB_FANOUT_QUEUE_URL":     `{"Ref":"FanoutQueue"}`,
	} {
		if got := jsonOf(env[name]); got != want {
			t.Errorf("ProvisionerFunction %s = %s, want %s", name, got, want)
		}
	}
	if _, ok := env["RUNNERHUB_GITHUB_TOKEN"]; ok {
		t.Error("a token in the function's environment: it belongs in SSM")
	}
	timeout := dig(fn, "Timeout").(float64)
	visibility := dig(tpl, "Resources", "DemandQueue", "Properties", "VisibilityTimeout").(float64)
	if visibility < 6*timeout {
		t.Errorf("DemandQueue visibility timeout %vs, want at least 6 x the function's %vs", visibility, timeout)
	}
}

// Every function that reads the pools reads the runner scope too: the configuration of a
// pool with a provider and no scope to register in is refused, so a function without it
// would fail its cold start as soon as Pools names a provider.
func TestFunctionsWithPoolsKnowTheRunnerScope(t *testing.T) {
	tpl := decodeTemplate(t)
	n := 0
	for name, res := range dig(tpl, "Resources").(map[string]any) {
		env, _ := dig(res, "Properties", "Environment", "Variables").(map[string]any)
		if _, ok := env["RUNNERHUB_POOLS"]; !ok {
			continue
		}
		n++
		if got := jsonOf(env["RUNNERHUB_GITHUB_RUNNER_SCOPE"]); got != `{"Ref":"GitHubRunnerScope"}` {
			t.Errorf("%s reads RUNNERHUB_POOLS, and its RUNNERHUB_GITHUB_RUNNER_SCOPE is %s", name, got)
		}
	}
	if n < 4 {
		t.Errorf("%d functions read RUNNERHUB_POOLS, want the processor, api, reconciler and provisioner", n)
	}
}
