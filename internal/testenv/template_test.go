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

// policyStatements returns a function's policy statements.
func policyStatements(t *testing.T, resources map[string]any, function string) []map[string]any {
	t.Helper()
	policies, _ := dig(resources, function, "Properties", "Policies").([]any)
	var out []map[string]any
	for _, p := range policies {
		sts, _ := dig(p, "Statement").([]any)
		for _, st := range sts {
			if m, ok := st.(map[string]any); ok {
				out = append(out, m)
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no policy statements", function)
	}
	return out
}

func policyActions(st map[string]any) []string {
	switch a := st["Action"].(type) {
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
			for _, a := range policyActions(st) {
				if strings.HasSuffix(a, "*") {
					t.Errorf("%s: wildcard action %s", name, a)
				}
				if !strings.HasPrefix(a, "execute-api:") {
					continue
				}
				posts = true
				if a != "execute-api:ManageConnections" || !strings.Contains(jsonOf(st["Resource"]), connections) {
					t.Errorf("%s: %s on %s, want only execute-api:ManageConnections on the WebSocket API's connections", name, a, jsonOf(st["Resource"]))
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
			raw := jsonOf(st)
			if strings.Contains(raw, "WSCONN") {
				t.Errorf("%s still writes connection records: %s", name, raw)
			}
			if strings.Contains(raw, "FanoutQueue") {
				sends = slices.Equal(policyActions(st), []string{"sqs:SendMessage"}) && jsonOf(st["Resource"]) == `{"Fn::GetAtt":["FanoutQueue","Arn"]}`
			}
		}
		if !sends {
			t.Errorf("%s may not SendMessage (alone) to FanoutQueue", name)
		}
	}
	for _, st := range policyStatements(t, resources, "FanoutFunction") {
		acts := policyActions(st)
		if !strings.HasPrefix(acts[0], "dynamodb:") {
			continue
		}
		keys := jsonOf(dig(st, "Condition", "ForAllValues:StringLike", "dynamodb:LeadingKeys"))
		for _, a := range acts {
			if a != "dynamodb:Query" && a != "dynamodb:BatchWriteItem" {
				t.Errorf("FanoutFunction: %s; it only queries and deletes connection items", a)
			}
			if a == "dynamodb:BatchWriteItem" && keys != `["WSCONN#*"]` {
				t.Errorf("FanoutFunction writes items of %s, want only WSCONN#*", keys)
			}
		}
		if keys == "null" || strings.Contains(keys, `"*"`) {
			t.Errorf("FanoutFunction statement %s is not limited to its partitions", jsonOf(st))
		}
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
