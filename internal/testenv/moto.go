package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// AWS is a moto_server started for one test (or shared by a test binary, see SharedAWS)
// holding one copy of template.yaml's resources.
//
// Config works as is with dynamodb.NewFromConfig and sqs.NewFromConfig. For S3 use
// a.S3(): it sets path-style addressing, as moto serves every bucket on one host.
// (With an IP endpoint such as 127.0.0.1 the SDK already falls back to path style, but a
// host name such as localhost or LocalStack's needs it, so S3 adapters should set
// UsePathStyle whenever AWS_ENDPOINT_URL is set.)
//
// Config is built by hand: it reads no environment variable, profile or shared file, so
// a developer's AWS settings can never point a test at a real account.
type AWS struct {
	Endpoint       string     // http://127.0.0.1:PORT
	Config         aws.Config // region us-east-1, static credentials test/test, BaseEndpoint = Endpoint
	Region         string
	EventsTable    string
	EventsQueueURL string
	EventsDLQURL   string
	DemandQueueURL string // runner signals (scale-up demand, pre-warm)
	FanoutQueueURL string // live updates, to the FanoutFunction
	PayloadBucket  string

	moto *motoProcess
}

// Region and credentials of every moto this package starts.
const (
	motoRegion    = "us-east-1"
	motoAccessKey = "test"
	motoSecretKey = "test"
)

// StartAWS starts moto_server on a free loopback port, provisions template.yaml's resources
// with infra/moto-provision.py and stops moto (its whole process group) at t.Cleanup.
// moto's output is shown only if the test fails.
//
// It skips the test (fails it with RUNNERHUB_REQUIRE_TOOLS=1) when moto_server, python3,
// or the Python packages aws-sam-translator and boto3 are missing.
//
// It takes 1–2.5 s (moto's start-up and the provisioning script's imports, overlapped;
// the first run on a machine adds ~1 s to translate the template, then cached). Use Fresh
// for more independent copies in the same moto (~0.5–1 s each), or SharedAWS to share one
// moto across a test binary.
func StartAWS(t testing.TB) *AWS {
	t.Helper()
	m, a, err := startMoto(t, requireMotoTools(t), stackNameFor(t))
	if err != nil {
		t.Fatalf("starting moto_server with template.yaml's resources: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("moto_server output (last %d bytes kept):\n%s", motoLogLimit, m.output())
		}
		m.stop()
	})
	t.Logf("moto_server %s ready with %s in %v", m.endpoint, a.EventsTable, time.Since(m.started).Round(time.Millisecond))
	return a
}

// Fresh provisions another, empty set of the template's resources in the same moto (a new
// stack name, so new table, queue and bucket names), for tests that need isolation
// without a new moto process. It costs 0.5–1 s (a Python process that imports boto3).
func (a *AWS) Fresh(t testing.TB) *AWS {
	t.Helper()
	if a == nil || a.moto == nil {
		t.Fatal("testenv: Fresh on an AWS that was not returned by StartAWS/SharedAWS")
	}
	if a.moto.exited() {
		t.Fatalf("testenv: moto_server %s is no longer running:\n%s", a.Endpoint, a.moto.output())
	}
	b, err := a.moto.provision(stackNameFor(t), 0)
	if err != nil {
		t.Fatalf("provisioning template.yaml into moto: %v", err)
	}
	return b
}

// Env returns the environment a child process (such as a Lambda bootstrap under
// aws-lambda-rie) needs to use these resources, as "K=V" strings: AWS_ENDPOINT_URL,
// AWS_REGION, AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// RUNNERHUB_EVENTS_TABLE, RUNNERHUB_EVENTS_QUEUE_URL, RUNNERHUB_EVENTS_DLQ_URL,
// RUNNERHUB_DEMAND_QUEUE_URL, RUNNERHUB_FANOUT_QUEUE_URL and RUNNERHUB_PAYLOAD_BUCKET. Append it to os.Environ() or to a minimal environment.
func (a *AWS) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + a.Endpoint,
		"AWS_REGION=" + a.Region,
		"AWS_DEFAULT_REGION=" + a.Region,
		"AWS_ACCESS_KEY_ID=" + motoAccessKey,
		"AWS_SECRET_ACCESS_KEY=" + motoSecretKey,
		"RUNNERHUB_EVENTS_TABLE=" + a.EventsTable,
		"RUNNERHUB_EVENTS_QUEUE_URL=" + a.EventsQueueURL,
		"RUNNERHUB_EVENTS_DLQ_URL=" + a.EventsDLQURL,
		"RUNNERHUB_DEMAND_QUEUE_URL=" + a.DemandQueueURL,
		"RUNNERHUB_FANOUT_QUEUE_URL=" + a.FanoutQueueURL,
		"RUNNERHUB_PAYLOAD_BUCKET=" + a.PayloadBucket,
	}
}

var shared struct {
	once sync.Once
	moto *motoProcess
	err  error
}

// SharedAWS returns a fresh set of the template's resources in a moto_server shared by the
// whole test binary: the first call starts moto (as StartAWS does), later calls only
// provision (as Fresh does). No TestMain is needed: a small watchdog process kills moto
// within half a second of the test process exiting, however it exits (including a
// -timeout panic, when no Cleanup runs).
func SharedAWS(t testing.TB) *AWS {
	t.Helper()
	tools := requireMotoTools(t)
	stack := stackNameFor(t)
	var a *AWS
	shared.once.Do(func() {
		shared.err = errors.New("the first SharedAWS caller stopped while starting moto_server")
		shared.moto, a, shared.err = startMoto(t, tools, stack)
	})
	if shared.err != nil {
		t.Fatalf("starting the shared moto_server: %v", shared.err)
	}
	if a == nil {
		if shared.moto.exited() {
			t.Fatalf("the shared moto_server is no longer running:\n%s", shared.moto.output())
		}
		var err error
		if a, err = shared.moto.provision(stack, 0); err != nil {
			t.Fatalf("provisioning template.yaml into moto: %v", err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("shared moto_server output (last %d bytes kept):\n%s", motoLogLimit, shared.moto.output())
		}
	})
	return a
}

// ---------------------------------------------------------------------------- tools

var pythonCheck struct {
	once    sync.Once
	missing string
	err     error
}

// motoTools is where the tools StartAWS needs were found.
type motoTools struct {
	root       string // repository root
	motoServer string
	python     string
}

// requireMotoTools checks moto_server, python3 and the Python packages the provisioning
// script imports, and finds the repository root.
func requireMotoTools(t testing.TB) motoTools {
	t.Helper()
	motoServer := RequireTool(t, "moto_server", "pip install 'moto[server]'")
	python := RequireTool(t, "python3", "install Python 3")
	pythonCheck.once.Do(func() {
		// find_spec does not import: this takes milliseconds, importing samtranslator ~0.7 s.
		out, err := exec.Command(python, "-c",
			"import importlib.util as u\n"+
				"print(' '.join(n for n in ('samtranslator', 'boto3') if u.find_spec(n) is None))").Output()
		pythonCheck.missing, pythonCheck.err = strings.TrimSpace(string(out)), err
	})
	if pythonCheck.err != nil {
		t.Fatalf("checking Python packages with %s: %v", python, pythonCheck.err)
	}
	if pythonCheck.missing != "" {
		msg := "Python packages missing for " + python + ": " + pythonCheck.missing +
			" (pip install aws-sam-translator boto3); RUNNERHUB_REQUIRE_TOOLS=1 makes this a failure"
		if ToolsRequired() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	root := RepoRoot(t)
	for _, f := range []string{"template.yaml", filepath.Join("infra", "moto-provision.py")} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	return motoTools{root: root, motoServer: motoServer, python: python}
}

// ---------------------------------------------------------------------------- moto process

const motoLogLimit = 256 << 10

type motoProcess struct {
	endpoint string
	tools    motoTools
	started  time.Time
	cmd      *exec.Cmd // moto_server, leader of its own process group
	watch    *exec.Cmd // the watchdog, in moto's process group
	log      *tailBuffer
	done     chan struct{} // closed when moto_server has exited
	waitErr  error
	stopOnce sync.Once
}

// watchdog kills moto's process group (itself included) as soon as its parent, the test
// binary, is gone: a binary killed by -timeout runs no Cleanup, and must leave nothing
// behind. It is Python rather than a shell loop so that it has no children of its own:
// every process in the group is a direct child of the test binary, which reaps them all.
const watchdog = `import os, signal, sys, time
parent = os.getppid()
while os.getppid() == parent:
    time.sleep(0.25)
os.killpg(int(sys.argv[1]), signal.SIGKILL)
`

// startMoto launches moto_server on a free loopback port and provisions the first stack.
// The two overlap: the provisioning script imports boto3 and loads its translation while
// moto starts, then waits for it to answer; meanwhile warmUp makes moto load its DynamoDB,
// SQS and S3 backends. A port taken between FreePort and moto's bind is retried.
func startMoto(t testing.TB, tools motoTools, stack string) (*motoProcess, *AWS, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		m, err := launchMoto(tools, FreePort(t))
		if err != nil {
			return nil, nil, err
		}
		go m.warmUp()
		a, err := m.provision(stack, motoStartTimeout)
		if err == nil {
			return m, a, nil
		}
		diedEarly := m.exited()
		m.stop()
		if !diedEarly {
			return nil, nil, fmt.Errorf("%v\nmoto_server output:\n%s", err, m.output())
		}
		lastErr = fmt.Errorf("moto_server on %s exited (%v) before it was provisioned:\n%s", m.endpoint, m.waitErr, m.output())
	}
	return nil, nil, lastErr
}

// motoStartTimeout is generous: shared CI machines can be slow.
const motoStartTimeout = 60 * time.Second

func launchMoto(tools motoTools, port int) (*motoProcess, error) {
	m := &motoProcess{
		endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		tools:    tools,
		started:  time.Now(),
		log:      &tailBuffer{max: motoLogLimit},
		done:     make(chan struct{}),
	}
	m.cmd = exec.Command(tools.motoServer, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	m.cmd.Dir = tools.root
	m.cmd.Env = motoEnv()
	m.cmd.Stdout = m.log
	m.cmd.Stderr = m.log
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting moto_server: %w", err)
	}
	go func() {
		m.waitErr = m.cmd.Wait()
		close(m.done)
	}()
	pgid := m.cmd.Process.Pid
	m.watch = exec.Command(tools.python, "-c", watchdog, strconv.Itoa(pgid))
	m.watch.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: pgid}
	if err := m.watch.Start(); err != nil {
		m.stop()
		return nil, fmt.Errorf("starting moto_server's watchdog: %w", err)
	}
	return m, nil
}

// warmUp waits for moto to answer, then sends one cheap request per service the template
// uses: moto imports a service's backend on its first request (DynamoDB's takes ~0.25 s),
// and this happens while the provisioning script is still importing boto3.
func (m *motoProcess) warmUp() {
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(motoStartTimeout)
	for {
		if m.exited() || time.Now().After(deadline) {
			return
		}
		resp, err := client.Get(m.endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	auth := func(service string) string {
		return "AWS4-HMAC-SHA256 Credential=" + motoAccessKey + "/20260101/" + motoRegion + "/" + service +
			"/aws4_request, SignedHeaders=host, Signature=0"
	}
	requests := []struct{ service, method, target string }{
		{"dynamodb", http.MethodPost, "DynamoDB_20120810.ListTables"},
		{"sqs", http.MethodPost, "AmazonSQS.ListQueues"},
		{"s3", http.MethodGet, ""},
	}
	var wg sync.WaitGroup
	for _, r := range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body io.Reader
			if r.method == http.MethodPost {
				body = strings.NewReader("{}")
			}
			req, err := http.NewRequest(r.method, m.endpoint+"/", body)
			if err != nil {
				return
			}
			req.Header.Set("Authorization", auth(r.service))
			if r.target != "" {
				req.Header.Set("X-Amz-Target", r.target)
				req.Header.Set("Content-Type", "application/x-amz-json-1.0")
			}
			if resp, err := client.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
}

func (m *motoProcess) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// stop kills moto's whole process group (moto_server and the watchdog) and reaps it.
func (m *motoProcess) stop() {
	m.stopOnce.Do(func() {
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-m.done:
		case <-time.After(10 * time.Second):
		}
		if m.watch != nil && m.watch.Process != nil {
			_ = m.watch.Wait()
		}
	})
}

func (m *motoProcess) output() string { return m.log.String() }

// motoEnv is the environment of moto and of the provisioning script: the caller's, minus
// every AWS_* setting (a profile or endpoint of the developer's must not leak in), plus
// moto's fixed region and credentials.
func motoEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"AWS_REGION="+motoRegion,
		"AWS_DEFAULT_REGION="+motoRegion,
		"AWS_ACCESS_KEY_ID="+motoAccessKey,
		"AWS_SECRET_ACCESS_KEY="+motoSecretKey,
		"AWS_EC2_METADATA_DISABLED=true",
	)
}

// ---------------------------------------------------------------------------- provisioning

type provisionResult struct {
	EventsTable    string
	EventsQueueURL string `json:"EventsQueueUrl"`
	EventsDLQURL   string `json:"EventsDLQUrl"`
	DemandQueueURL string `json:"DemandQueueUrl"`
	FanoutQueueURL string `json:"FanoutQueueUrl"`
	PayloadBucket  string
	Region         string
}

// provision runs infra/moto-provision.py for one stack name, letting it wait up to wait
// for moto to answer. Translations are cached in the temporary directory (keyed by a hash
// of the template, the script and samtranslator's version), so only the first run on a
// machine pays for importing samtranslator.
func (m *motoProcess) provision(stack string, wait time.Duration) (*AWS, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	go func() {
		select {
		case <-m.done: // moto died: do not wait for the script's retries
			cancel()
		case <-ctx.Done():
		}
	}()
	cmd := exec.CommandContext(ctx, m.tools.python, filepath.Join(m.tools.root, "infra", "moto-provision.py"),
		"--endpoint", m.endpoint,
		"--template", filepath.Join(m.tools.root, "template.yaml"),
		"--stack-name", stack,
		"--region", motoRegion,
		"--cache-dir", filepath.Join(os.TempDir(), "runnerhub-moto-provision-cache"),
	)
	if wait > 0 {
		cmd.Args = append(cmd.Args, "--wait", strconv.Itoa(int(wait/time.Second)))
	}
	cmd.Dir = m.tools.root
	cmd.Env = motoEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	var r provisionResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("moto-provision.py printed %q: %v\n%s", stdout.String(), err, stderr.String())
	}
	if r.EventsTable == "" || r.EventsQueueURL == "" || r.EventsDLQURL == "" || r.DemandQueueURL == "" || r.FanoutQueueURL == "" || r.PayloadBucket == "" {
		return nil, fmt.Errorf("moto-provision.py left a name empty: %s", stdout.String())
	}
	if r.Region == "" {
		r.Region = motoRegion
	}
	return &AWS{
		Endpoint:       m.endpoint,
		Config:         motoConfig(m.endpoint, r.Region),
		Region:         r.Region,
		EventsTable:    r.EventsTable,
		EventsQueueURL: r.EventsQueueURL,
		EventsDLQURL:   r.EventsDLQURL,
		DemandQueueURL: r.DemandQueueURL,
		FanoutQueueURL: r.FanoutQueueURL,
		PayloadBucket:  r.PayloadBucket,
		moto:           m,
	}, nil
}

func motoConfig(endpoint, region string) aws.Config {
	return aws.Config{
		Region: region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: motoAccessKey, SecretAccessKey: motoSecretKey, Source: "testenv"}, nil
		}),
		BaseEndpoint: aws.String(endpoint),
	}
}

var stackSeq atomic.Int64

var notStackChar = regexp.MustCompile(`[^A-Za-z0-9]+`)

// stackNameFor makes a CloudFormation-style stack name from the test's name, so that
// resource names in moto's log say which test made them: "rh-TestFoo-bar-3".
func stackNameFor(t testing.TB) string {
	name := strings.Trim(notStackChar.ReplaceAllString(t.Name(), "-"), "-")
	if len(name) > 24 {
		name = strings.Trim(name[:24], "-")
	}
	return "rh-" + name + "-" + strconv.FormatInt(stackSeq.Add(1), 10)
}

// ---------------------------------------------------------------------------- output

// tailBuffer keeps the last max bytes written to it; safe for concurrent use.
type tailBuffer struct {
	mu      sync.Mutex
	buf     []byte
	max     int
	dropped bool
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
		b.dropped = true
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped {
		return "[…]\n" + string(b.buf)
	}
	return string(b.buf)
}
