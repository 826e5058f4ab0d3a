package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/runnerhub/webhooks/internal/provider/ec2provider"
	"github.com/runnerhub/webhooks/internal/storage/awsstore"
	"github.com/runnerhub/webhooks/internal/testenv"
	"github.com/runnerhub/webhooks/internal/testenv/fakegithub"
	"github.com/runnerhub/webhooks/internal/testenv/fakegithub/fakejit"
)

// The closed loop on the AWS host: the webhook, processor, provisioner and reconciler
// functions as built bootstraps under aws-lambda-rie against moto, the ec2 provider on
// moto's EC2, and the fake GitHub running jobs on the runners the test plays for the
// instances moto reports (each reads its JIT configuration from SSM once, as an
// instance's start-up script does, and connects with it).
const (
	loopScope  = "org/octo"
	loopHook   = "repo/octo/app/12"
	loopSecret = "closed-loop-webhook-secret"
	loopToken  = "/runnerhub/closed-loop/github-token"
)

// fn is one function under rie, invoked from the loop's goroutines (so without a
// testing.T), one invocation at a time as one execution environment takes them.
type fn struct {
	name   string
	mu     sync.Mutex
	lambda *testenv.Lambda
}

func startFn(t *testing.T, logicalID string, env []string) *fn {
	t.Helper()
	return &fn{name: logicalID, lambda: testenv.StartFunction(t, logicalID, env)}
}

// invoke sends payload and decodes the answer into out; a function error is an error.
func (f *fn) invoke(ctx context.Context, payload []byte, out any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, err := f.lambda.Call(ctx, payload)
	if err != nil {
		return fmt.Errorf("%s: %w", f.name, err)
	}
	if bytes.Contains(body, []byte(`"errorMessage"`)) {
		return fmt.Errorf("%s answered %s", f.name, body)
	}
	return json.Unmarshal(body, out)
}

// failures collects what went wrong in the loop's goroutines, for the test to report.
type failures struct {
	mu   sync.Mutex
	errs []string
}

func (f *failures) add(err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		f.mu.Lock()
		f.errs = append(f.errs, err.Error())
		f.mu.Unlock()
	}
}

func (f *failures) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.errs)
}

// webhookTarget delivers the fake GitHub's deliveries to the WebhookFunction as API
// Gateway's HTTP API does, and answers its status code.
func webhookTarget(webhook *fn, errs *failures) fakegithub.Target {
	return func(ctx context.Context, header http.Header, body []byte) int {
		headers := map[string]string{}
		for k, v := range header {
			headers[strings.ToLower(k)] = strings.Join(v, ",")
		}
		ev, _ := json.Marshal(events.APIGatewayV2HTTPRequest{
			Version: "2.0", RouteKey: "POST /api/webhooks/github", RawPath: "/api/webhooks/github", Headers: headers, Body: string(body),
			RequestContext: events.APIGatewayV2HTTPRequestContext{Stage: "$default",
				HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/api/webhooks/github", Protocol: "HTTP/1.1", SourceIP: "140.82.115.10"}},
		})
		var resp events.APIGatewayV2HTTPResponse
		if err := webhook.invoke(ctx, ev, &resp); err != nil {
			errs.add(err)
			return 0
		}
		return resp.StatusCode
	}
}

// eventSource plays Lambda's SQS event source mapping: batches of up to 10 messages of
// queue go to target, and those it does not report as failed are deleted. A received
// batch stays hidden for visibility seconds unless the function sets otherwise.
func eventSource(ctx context.Context, c *sqs.Client, queue string, target *fn, visibility int32, errs *failures) {
	for ctx.Err() == nil {
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &queue, MaxNumberOfMessages: 10,
			VisibilityTimeout: visibility, MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
			MessageAttributeNames: []string{"All"}})
		if err != nil {
			errs.add(err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if len(out.Messages) == 0 {
			time.Sleep(200 * time.Millisecond) // a short poll: moto's long polls cost it more
			continue
		}
		payload, _ := json.Marshal(testenv.SQSEvent(out.Messages, queue))
		var resp events.SQSEventResponse
		if err := target.invoke(ctx, payload, &resp); err != nil {
			errs.add(err)
			continue
		}
		for _, m := range out.Messages {
			if slices.ContainsFunc(resp.BatchItemFailures, func(f events.SQSBatchItemFailure) bool { return f.ItemIdentifier == aws.ToString(m.MessageId) }) {
				continue
			}
			if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &queue, ReceiptHandle: m.ReceiptHandle}); err != nil {
				errs.add(err)
			}
		}
	}
}

// every invokes target with payload every interval, as an EventBridge schedule does.
func every(ctx context.Context, interval time.Duration, target *fn, payload []byte, errs *failures) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var out json.RawMessage
		errs.add(target.invoke(ctx, payload, &out))
	}
}

// capacityFaults stands between the functions and moto. It answers every nth
// RunInstances with EC2's InsufficientInstanceCapacity, as a region out of an instance
// type does, and runs DynamoDB transactions one at a time: moto does not isolate
// concurrent ones, which DynamoDB does (serializably), so without it two functions could
// both commit against the same version of a pool's gate. Everything else goes to moto
// as it comes.
type capacityFaults struct {
	every        int64
	runs, failed atomic.Int64
	moto         *httputil.ReverseProxy
	transactions sync.Mutex
}

func (p *capacityFaults) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".TransactWriteItems") {
		p.transactions.Lock()
		defer p.transactions.Unlock()
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") == "RunInstances" {
		if p.runs.Add(1)%p.every == 0 {
			p.failed.Add(1)
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>InsufficientInstanceCapacity</Code>`+
				`<Message>We currently do not have sufficient capacity in the Availability Zone you requested.</Message></Error></Errors>`+
				`<RequestID>closed-loop-fault</RequestID></Response>`)
			return
		}
	}
	p.moto.ServeHTTP(w, r)
}

// runners plays the runner on each instance moto reports: it reads the instance's JIT
// configuration parameter (named by its tag) once, deletes it, and keeps connecting to
// the fake GitHub with it until GitHub no longer has the runner. The silentAt-th
// instance's runner never connects.
type runners struct {
	ec2      *ec2.Client
	ssm      *ssm.Client
	github   string
	silentAt int
	errs     *failures

	mu     sync.Mutex
	seen   map[string]string // instance id → runner name
	silent string
	wg     sync.WaitGroup
}

func (p *runners) watch(ctx context.Context) {
	for ctx.Err() == nil {
		out, err := p.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
			{Name: aws.String("tag-key"), Values: []string{ec2provider.TagPool}},
			{Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}},
		}})
		p.errs.add(err)
		for _, r := range reservations(out) {
			for _, i := range r.Instances {
				id := aws.ToString(i.InstanceId)
				p.mu.Lock()
				_, known := p.seen[id]
				if !known {
					p.seen[id] = tag(i, ec2provider.TagRunner)
					if len(p.seen) == p.silentAt {
						p.silent = p.seen[id]
						known = true // its runner never boots
					}
				}
				p.mu.Unlock()
				if !known {
					param := tag(i, ec2provider.TagJITParameter)
					p.wg.Go(func() { p.errs.add(p.play(ctx, param)) })
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	p.wg.Wait()
}

func reservations(out *ec2.DescribeInstancesOutput) []ec2types.Reservation {
	if out == nil {
		return nil
	}
	return out.Reservations
}

func (p *runners) play(ctx context.Context, param string) error {
	got, err := p.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(param), WithDecryption: aws.Bool(true)})
	if err != nil {
		var gone *ssmtypes.ParameterNotFound
		if errors.As(err, &gone) {
			return nil // deleted with its instance before the runner booted
		}
		return fmt.Errorf("runner reading %s: %w", param, err)
	}
	if _, err := p.ssm.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(param)}); err != nil {
		return fmt.Errorf("runner deleting %s: %w", param, err)
	}
	body, _ := json.Marshal(fakejit.ConnectRequest{EncodedJITConfig: aws.ToString(got.Parameter.Value)})
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.github+fakejit.ConnectPath, bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNotFound {
				return nil // GitHub removed the runner: after its job, or RunnerHub deleted it
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("runner of %s: connect answered %d", param, resp.StatusCode)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	return nil
}

// liveInstances lists the names of pool's runner instances moto has not terminated.
func liveInstances(ctx context.Context, c *ec2.Client, pool string) ([]string, error) {
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + ec2provider.TagPool), Values: []string{pool}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}},
	}})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			names = append(names, tag(i, ec2provider.TagRunner))
		}
	}
	slices.Sort(names)
	return names, nil
}

// settled says whether, in each pool, RunnerHub, GitHub and EC2 agree on exactly minIdle
// idle runners and nothing else; the reason when not.
func settled(ctx context.Context, store *awsstore.Store, fake *fakegithub.Server, c *ec2.Client, pools []testenv.LoopPool) (string, bool) {
	for _, p := range pools {
		machines, err := liveInstances(ctx, c, p.Name)
		if err != nil {
			return err.Error(), false
		}
		if why, ok := testenv.PoolSettled(ctx, p, store, fake, loopScope, "EC2", machines); !ok {
			return why, false
		}
	}
	return "", true
}

// queueDepth says how many messages queue holds, visible and in flight.
func queueDepth(ctx context.Context, c *sqs.Client, queue string) string {
	out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &queue, AttributeNames: []sqstypes.QueueAttributeName{
		sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		return err.Error()
	}
	return out.Attributes["ApproximateNumberOfMessages"] + "+" + out.Attributes["ApproximateNumberOfMessagesNotVisible"]
}

// waitFor is testenv.WaitUntil, every 200 ms, with the loop's errors in its failure.
func waitFor(t *testing.T, d time.Duration, what string, errs *failures, check func() (string, bool)) {
	t.Helper()
	testenv.WaitUntil(t, d, 200*time.Millisecond, what, func() (string, bool) {
		why, done := check()
		return fmt.Sprintf("%s\nerrors in the loop: %q", why, errs.list()), done
	})
}

func TestClosedLoopOnAWS(t *testing.T) {
	if testing.Short() {
		t.Skip("the closed loop takes a minute")
	}
	began := time.Now()
	env := testenv.StartAWS(t) // its own moto: EC2 instances are not per stack
	fake := fakeGitHub(t, env, "octo", "github_pat_closed_loop", loopToken)
	pools := []testenv.LoopPool{{Name: "linux", MinIdle: 1, MaxRunners: 4}, {Name: "gpu", MinIdle: 1, MaxRunners: 3}}
	lt, subnet := env.LaunchTemplate(t, "closed-loop-runner"), env.Subnets(t)[0]
	var doc []map[string]any
	for _, p := range pools {
		doc = append(doc, map[string]any{"name": p.Name, "labels": []string{p.Name}, "minIdle": p.MinIdle, "maxRunners": p.MaxRunners,
			"ephemeral": true, "bootTimeout": "5s", "idleTimeout": "3s",
			"provider": map[string]any{"type": "ec2", "launchTemplate": map[string]string{"id": lt}, "subnets": []string{subnet}}})
	}
	poolsJSON, _ := json.Marshal(doc)
	// Every function reading the pools needs the scope their runners register in.
	// Faults: every fifth RunInstances fails; the runner of the third instance never
	// connects, so that its boot timeout replaces it; the first completed delivery is
	// lost (logged as failed), so that the reconciler's redelivery recovers it. Every
	// function reaches moto through the fault injector, which also isolates transactions.
	motoURL, _ := url.Parse(env.Endpoint)
	faults := &capacityFaults{every: 5, moto: httputil.NewSingleHostReverseProxy(motoURL)}
	faultyAWS := httptest.NewServer(faults)
	t.Cleanup(faultyAWS.Close)
	awsEnv := append(slices.DeleteFunc(env.Env(), func(kv string) bool { return strings.HasPrefix(kv, "AWS_ENDPOINT_URL=") }),
		"AWS_ENDPOINT_URL="+faultyAWS.URL)
	withPools := append(slices.Clone(awsEnv), "RUNNERHUB_POOLS="+string(poolsJSON), "RUNNERHUB_GITHUB_RUNNER_SCOPE="+loopScope)
	github := []string{"RUNNERHUB_GITHUB_API_URL=" + fake.URL, "RUNNERHUB_GITHUB_TOKEN_PARAMETER=" + loopToken}
	provisionerEnv := append(slices.Clone(withPools), github...)

	var errs failures
	webhook := startFn(t, "WebhookFunction", append(slices.Clone(awsEnv), "GITHUB_WEBHOOK_SECRET="+loopSecret))
	processor := startFn(t, "ProcessorFunction", withPools)
	// Two execution environments of the ProvisionerFunction: the queue's and the schedule's.
	signals := startFn(t, "ProvisionerFunction", provisionerEnv)
	passes := startFn(t, "ProvisionerFunction", provisionerEnv)
	reconciler := startFn(t, "ReconcilerFunction", append(append(slices.Clone(withPools), github...),
		"RUNNERHUB_GITHUB_HOOKS="+loopHook, "RUNNERHUB_RECONCILE_AFTER=1s"))
	fake.AddHook(loopHook, 12, loopSecret, webhookTarget(webhook, &errs))
	fake.SendJobEvents(loopHook, 300*time.Millisecond)
	fake.DropNextCompleted(1, fakegithub.Dropped)

	queues := sqs.NewFromConfig(env.Config)
	players := &runners{ec2: env.EC2(), ssm: env.SSM(), github: fake.URL, silentAt: 3, errs: &errs, seen: map[string]string{}}
	ctx, stop := context.WithCancel(context.Background())
	var loop sync.WaitGroup
	loop.Go(func() { eventSource(ctx, queues, env.EventsQueueURL, processor, 5, &errs) })
	loop.Go(func() { eventSource(ctx, queues, env.DemandQueueURL, signals, 30, &errs) })
	// The test's pace; on AWS the pass runs every minute at the most (ProvisionerInterval).
	passEvent, reconcileEvent := readEvent(t, scheduledEvent), testenv.ReadEvent(t, "reconciler-scheduled.json")
	loop.Go(func() { every(ctx, time.Second, passes, passEvent, &errs) })
	loop.Go(func() { every(ctx, 3*time.Second, reconciler, reconcileEvent, &errs) })
	loop.Go(func() { players.watch(ctx) })
	t.Cleanup(func() { stop(); loop.Wait() })

	store := awsstore.NewStore(env.DynamoDB(), env.S3(),
		env.EventsTable, env.PayloadBucket, 24*time.Hour)
	// maxRunners is never exceeded: sampled in RunnerHub (starting runners included) and
	// on GitHub (busy runners); moto's failures to answer are the loop's, retried.
	sampler := testenv.SampleFleet(t, store, fake, loopScope, pools, 250*time.Millisecond, errs.add)

	ids := testenv.QueueJobBursts(fake, "octo/app", pools, 5, 10, 2*time.Second)

	lastLog := time.Now()
	waitFor(t, 5*time.Minute, "every job completed in RunnerHub", &errs, func() (string, bool) {
		waiting, first := testenv.JobsNotCompleted(ctx, store, ids)
		if time.Since(lastLog) > 15*time.Second {
			lastLog = time.Now()
			t.Logf("%v: %d jobs not completed; queued: %s events, %s signals", time.Since(began).Round(time.Second), waiting,
				queueDepth(ctx, queues, env.EventsQueueURL), queueDepth(ctx, queues, env.DemandQueueURL))
		}
		return first, waiting == 0
	})
	waitFor(t, time.Minute, "each pool back to minIdle idle runners, the same in RunnerHub, on GitHub and in EC2", &errs, func() (string, bool) {
		return settled(ctx, store, fake, env.EC2(), pools)
	})
	sampler.Finish(t)

	testenv.CheckJobsRanOnGitHub(t, fake, "octo/app", ids)
	players.mu.Lock()
	started, silent := len(players.seen), players.silent
	players.mu.Unlock()
	if silent == "" {
		t.Fatal("no runner was kept from connecting")
	}
	if _, err := store.Runner(ctx, silent); err == nil {
		t.Errorf("the runner that never connected, %s, is still held", silent)
	}
	if faults.failed.Load() == 0 || started < len(ids)+len(pools) {
		t.Errorf("%d RunInstances, %d failed, %d instances for %d jobs and the warm runners", faults.runs.Load(), faults.failed.Load(), started, len(ids))
	}
	if n := fake.Redeliveries(loopHook); n < 1 {
		t.Errorf("the dropped completed was not redelivered (%d redeliveries)", n)
	}
	if e := errs.list(); len(e) > 0 {
		t.Logf("errors the loop met (retried): %q", e)
	}
	t.Logf("closed loop on AWS: %d jobs, %d instances (%d of %d RunInstances failing), %d redeliveries, in %v",
		len(ids), started, faults.failed.Load(), faults.runs.Load(), fake.Redeliveries(loopHook), time.Since(began).Round(time.Millisecond))
}
