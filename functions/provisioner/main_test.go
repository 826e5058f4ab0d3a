package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/runnerhub/webhooks/internal/awsapp/awsprovision"
	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/provider/ec2provider"
	"github.com/runnerhub/webhooks/internal/storage/awsstore"
	"github.com/runnerhub/webhooks/internal/testenv"
	"github.com/runnerhub/webhooks/internal/testenv/fakegithub"
)

const (
	sqsEvent       = "provisioner-sqs.json"
	scheduledEvent = "provisioner-scheduled.json"
	scope          = "org/octo-org"
	tokenParam     = "/runnerhub/provisioner-test/github-token"
)

// readEvent returns events/name, checking first that the test covers every event of the
// function.
func readEvent(t *testing.T, name string) []byte {
	t.Helper()
	testenv.RequireEventsCovered(t, "provisioner-*.json", []string{sqsEvent, scheduledEvent})
	return testenv.ReadEvent(t, name)
}

// harness is one set of the template's resources in moto with a launch template, a fake
// GitHub whose token is in SSM, and the ProvisionerFunction's bootstrap under rie on
// them, with two ec2 pools: linux (a launch template moto has) and broken (one it has
// not, so that every create fails).
type harness struct {
	env    *testenv.AWS
	fake   *fakegithub.Server
	store  *awsstore.Store
	engine *jobs.Engine
	ec2    *ec2.Client
	fn     *testenv.Lambda
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	env := testenv.SharedAWS(t)
	fake := fakeGitHub(t, env, "octo-org", "github_pat_provisioner_test", tokenParam)
	// Launch template names are per account and region: one per stack of this moto.
	suffix := strings.ToLower(filepath.Base(env.EventsTable))
	lt := env.LaunchTemplate(t, "runner-"+suffix)
	pools := fmt.Sprintf(`[
	  {"name": "linux", "labels": ["linux"], "maxRunners": 3,
	   "provider": {"type": "ec2", "launchTemplate": {"id": %q}, "subnets": [%q]}},
	  {"name": "broken", "labels": ["broken"], "maxRunners": 3,
	   "provider": {"type": "ec2", "launchTemplate": {"name": "no-such-template-%s"}}}]`, lt, env.Subnets(t)[0], suffix)
	parsed, err := jobs.ParsePools([]byte(pools))
	if err != nil {
		t.Fatal(err)
	}
	store := awsstore.NewStore(env.DynamoDB(), env.S3(),
		env.EventsTable, env.PayloadBucket, 24*time.Hour)
	fn := testenv.StartFunction(t, "ProvisionerFunction", append(env.Env(),
		"RUNNERHUB_POOLS="+pools, "RUNNERHUB_GITHUB_API_URL="+fake.URL, "RUNNERHUB_GITHUB_TOKEN_PARAMETER="+tokenParam,
		"RUNNERHUB_GITHUB_RUNNER_SCOPE="+scope))
	return &harness{env: env, fake: fake, store: store, engine: &jobs.Engine{Store: store, Pools: parsed}, ec2: env.EC2(), fn: fn}
}

// fakeGitHub starts a fake GitHub with an installation for owner that accepts token,
// and keeps the token in env's SSM parameter param, where the function reads it.
func fakeGitHub(t *testing.T, env *testenv.AWS, owner, token, param string) *fakegithub.Server {
	t.Helper()
	fake := fakegithub.Start(t)
	fake.AddInstallation(owner)
	fake.Token = token
	env.PutSecret(t, param, fake.Token)
	return fake
}

// queueDemands queues the job of every demand in the batch of events/provisioner-sqs.json
// and returns the batch and, by pool, the message id of its demand.
func (h *harness) queueDemands(t *testing.T) (batch []byte, demandOf map[string]string) {
	t.Helper()
	batch = readEvent(t, sqsEvent)
	var ev events.SQSEvent
	if err := json.Unmarshal(batch, &ev); err != nil {
		t.Fatal(err)
	}
	demandOf = map[string]string{}
	for _, r := range ev.Records {
		if sig, err := awsstore.ReadSignal([]byte(r.Body)); err == nil && sig.Demand != nil {
			h.queue(t, *sig.Demand)
			demandOf[sig.Demand.Pool] = r.MessageId
		}
	}
	return batch, demandOf
}

// queue records job id as queued in the store, as the processor would from its queued
// delivery: pending in the pool its labels fit.
func (h *harness) queue(t *testing.T, d jobs.Demand) {
	t.Helper()
	now := time.Now()
	rec := &delivery.Record{Key: delivery.Key{HookID: "1", DeliveryID: fmt.Sprintf("queued-%d", d.JobID)}, Event: "workflow_job",
		Action: "queued", Repository: d.Repository, ReceivedAt: now, State: delivery.Received,
		Payload: testenv.JobPayload(t, testenv.Job{ID: d.JobID, Labels: d.Labels, Status: "queued", Repository: d.Repository, Created: now, At: now})}
	if _, err := h.store.Create(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	if _, err := h.engine.Apply(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	if j, err := h.store.Job(t.Context(), d.JobID); err != nil || j.Pool != d.Pool || j.Allocation != jobs.AllocationPending {
		t.Fatalf("job %d: %+v %v; want pending in %s", d.JobID, j, err, d.Pool)
	}
}

// instances returns the live instances moto holds for pool, by their runner tag.
func (h *harness) instances(t *testing.T, pool string) map[string]ec2types.Instance {
	t.Helper()
	out, err := h.ec2.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + ec2provider.TagPool), Values: []string{pool}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]ec2types.Instance{}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			if name := tag(i, ec2provider.TagRunner); name != "" {
				found[name] = i
			}
		}
	}
	return found
}

func tag(i ec2types.Instance, key string) string {
	for _, t := range i.Tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// TestProvisionerFunction runs the built bootstrap under aws-lambda-rie against moto's
// DynamoDB, SQS, SSM and EC2 and the fake GitHub, with the events of events/: the demand
// of pool linux starts an instance and records its runner as starting, the demand of
// pool broken fails and is reported alone, a repeated batch starts nothing more, and the
// schedule's pass reports.
func TestProvisionerFunction(t *testing.T) {
	h := newHarness(t)
	batch, demandOf := h.queueDemands(t)
	brokenID := demandOf["broken"]

	for round := 1; round <= 2; round++ { // SQS may deliver the batch twice
		if failed := h.fn.InvokeSQS(t, batch); !slices.Equal(failed, []string{brokenID}) {
			t.Fatalf("round %d: batch item failures %v, want the broken pool's demand (%s) alone", round, failed, brokenID)
		}
	}

	started := h.instances(t, "linux")
	if len(started) != 1 {
		t.Fatalf("instances of pool linux: %v, want one after two deliveries of one demand", slices.Collect(maps.Keys(started)))
	}
	for name, inst := range started {
		if !strings.HasPrefix(name, "rh-linux-") {
			t.Errorf("runner name %q, want rh-linux-<hex>", name)
		}
		r, err := h.store.Runner(t.Context(), name)
		if err != nil || r.State != jobs.RunnerStarting || r.Pool != "linux" || r.JobID != 4201 || r.ProviderID != aws.ToString(inst.InstanceId) || r.GitHubID == 0 {
			t.Fatalf("runner %s in DynamoDB: %+v %v; want starting for job 4201 with provider id %s", name, r, err, aws.ToString(inst.InstanceId))
		}
		if !slices.Contains(h.fake.RunnerNames(scope), name) {
			t.Errorf("GitHub has no runner %s: its JIT configuration was not minted there", name)
		}
		param := tag(inst, ec2provider.TagJITParameter)
		out, err := h.env.SSM().GetParameter(t.Context(), &ssm.GetParameterInput{Name: aws.String(param), WithDecryption: aws.Bool(true)})
		if err != nil || out.Parameter.Type != ssmtypes.ParameterTypeSecureString {
			t.Fatalf("JIT parameter %q of the instance: %+v %v; want a SecureString", param, out, err)
		}
		if jit, _ := base64.StdEncoding.DecodeString(aws.ToString(out.Parameter.Value)); !strings.Contains(string(jit), `"`+name+`"`) {
			t.Errorf("the parameter holds %q, not the JIT configuration GitHub minted for %s", jit, name)
		}
	}
	if broken := h.instances(t, "broken"); len(broken) != 0 {
		t.Errorf("instances of pool broken: %v", broken)
	}
	runners, _, err := h.store.ListRunners(t.Context(), "broken", "", 10)
	if err != nil || len(runners) != 0 {
		t.Errorf("runners of pool broken: %+v %v; want the failed create's record removed", runners, err)
	}
	// The retire of a runner whose machine and registration are already gone succeeds:
	// its GitHub registration was deleted (a 404 is success).
	if h.fake.CountCalls("DELETE /orgs/octo-org/actions/runners/4100") == 0 {
		t.Errorf("the retire did not delete runner 4100 from GitHub: %v", h.fake.Calls())
	}

	var rep awsprovision.PassResult
	if err := json.Unmarshal(h.fn.Invoke(t, readEvent(t, scheduledEvent)), &rep); err != nil {
		t.Fatal(err)
	}
	// Job 4202 still waits in pool broken: the pass tries to start its runner and says
	// why it could not.
	if rep.Disabled || rep.Started != 0 || len(rep.Errors) == 0 || !strings.Contains(strings.Join(rep.Errors, "; "), "broken") {
		t.Fatalf("pass report %+v; want nothing started and pool broken's failure reported", rep)
	}
	if again := h.instances(t, "linux"); len(again) != 1 {
		t.Fatalf("instances of pool linux after the pass: %d, want still one", len(again))
	}
}

// GitHub's refusal to mint JIT configurations makes the ApiFunction's health degraded:
// the ProvisionerFunction keeps its JIT failures in a checkpoint the ApiFunction reads.
func TestJITFailuresShowInHealth(t *testing.T) {
	h := newHarness(t)
	batch, _ := h.queueDemands(t)
	before := len(h.instances(t, "linux")) // the moto is shared with the other tests
	h.fake.FailNext(100, http.StatusForbidden)
	h.fn.InvokeSQS(t, batch)
	if after := len(h.instances(t, "linux")); after != before {
		t.Fatalf("%d instances started without a JIT configuration", after-before)
	}
	api := testenv.StartFunction(t, "ApiFunction", append(h.env.Env(), "GITHUB_WEBHOOK_SECRET="+testenv.EventsSecret, "RUNNERHUB_API_TOKENS="+testenv.EventsAPIToken))
	resp := api.InvokeHTTP(t, testenv.ReadEvent(t, "api-health.json"))
	if !strings.Contains(resp.Body, `"degraded"`) || !strings.Contains(resp.Body, "runners cannot start in pool linux") || !strings.Contains(resp.Body, "(forbidden)") {
		t.Fatalf("health %d %s; want degraded by pool linux's forbidden JIT configurations", resp.StatusCode, resp.Body)
	}
}
