package testenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// EventsSecret is the webhook secret every signed delivery in events/ is signed with
// (events/README.md). Functions invoked with those events need
// GITHUB_WEBHOOK_SECRET=EventsSecret.
const EventsSecret = "runnerhub-events-secret"

// EventsAPIToken is the API token the WebSocket events in events/ connect with
// (events/README.md). Functions invoked with them need RUNNERHUB_API_TOKENS=EventsAPIToken.
const EventsAPIToken = "runnerhub-events-api-token"

// FanoutPool is the pool whose counts the commits announced in events/fanout-sqs.json
// changed (events/README.md).
const FanoutPool = "default"

// rieInstallHint is how CI installs the emulator, at the version the tests were written for.
const rieInstallHint = "go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

// Lambda is a Lambda bootstrap running under aws-lambda-rie, started by StartLambda.
type Lambda struct {
	// URL is the emulator's invocation endpoint, the one Invoke posts to.
	URL string

	cmd     *exec.Cmd
	logPath string        // the emulator's and the function's output
	done    chan struct{} // closed once aws-lambda-rie has exited
	waitErr error
}

// StartLambda runs bootstrap (a function built for the host, see BuildFunction) under
// aws-lambda-rie on two free loopback ports, waits until the emulator answers, and stops it
// at t.Cleanup. Their output is logged only if the test failed.
//
// env is the whole environment of the emulator, which passes it on to the function:
// nothing of the test's own environment leaks in (no AWS profile, no HOME), so a test
// states every setting, typically AWS.Env() plus the function's own variables. The
// function is started by the first Invoke, as Lambda does on a cold start; a function that
// cannot start fails that Invoke.
//
// It skips the test (fails it with RUNNERHUB_REQUIRE_TOOLS=1) when aws-lambda-rie is not
// installed or the host is not Linux.
func StartLambda(t testing.TB, bootstrap string, env []string) *Lambda {
	t.Helper()
	rie := requireRIE(t)
	abs, err := filepath.Abs(bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Fatalf("testenv: bootstrap: %v", err)
	}
	logPath := filepath.Join(t.TempDir(), "lambda.log")

	// FreePort's ports are free only until something else takes them: an emulator that
	// lost that race exits at once and is started again on new ports.
	var l *Lambda
	for attempt := 1; ; attempt++ {
		l, err = launchRIE(t, rie, abs, env, logPath)
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("starting aws-lambda-rie: %v\n%s", err, readLog(logPath))
		}
	}
	t.Cleanup(func() {
		l.stop()
		if t.Failed() {
			t.Logf("aws-lambda-rie and %s output:\n%s", filepath.Base(abs), readLog(logPath))
		}
	})
	return l
}

// invokeTimeout bounds one invocation, cold start included; well above the template's
// function timeouts, so that only a hung function or emulator reaches it.
const invokeTimeout = time.Minute

// Invoke sends payload to the function, as `aws lambda invoke` or `sam local invoke -e`
// would, and returns the function's response. A handler that returns an error answers
// {"errorMessage": ..., "errorType": ...}, returned like any response (the emulator sets
// no X-Amz-Function-Error header). Invoke fails the test when the emulator does not
// answer 200, which is how it reports a function that could not start, crashed or timed
// out (its output, logged at cleanup, says why).
func (l *Lambda) Invoke(t testing.TB, payload []byte) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), invokeTimeout)
	defer cancel()
	body, err := l.Call(ctx, payload)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// Call is Invoke for callers without a testing.T (a test's own goroutines, playing an
// event source): the emulator answering anything but 200 is an error.
func (l *Lambda) Call(ctx context.Context, payload []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.URL, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("invoking the function: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the function's response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("aws-lambda-rie answered %s (the function failed; see its output below): %s", resp.Status, body)
	}
	return body, nil
}

// InvokeHTTP invokes the function with an API Gateway HTTP API event and decodes its
// answer, failing the test when the function answers anything else.
func (l *Lambda) InvokeHTTP(t testing.TB, event []byte) events.APIGatewayV2HTTPResponse {
	t.Helper()
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(l.Invoke(t, event), &resp); err != nil {
		t.Fatalf("the response is not an API Gateway HTTP API response: %v", err)
	}
	return resp
}

// InvokeSQS invokes the function with an SQS event and returns the message ids its
// answer reports as failed (batchItemFailures), failing the test when the function
// answers anything else.
func (l *Lambda) InvokeSQS(t testing.TB, event []byte) []string {
	t.Helper()
	var resp events.SQSEventResponse
	if err := json.Unmarshal(l.Invoke(t, event), &resp); err != nil {
		t.Fatalf("the response is not an SQS event response: %v", err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	return failed
}

// initReport is the emulator's line for a finished init phase, as Lambda's REPORT line
// gives "Init Duration".
var initReport = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

// InitDuration is how long the function's init phase (everything main does before
// lambda.Start takes the first event) took on its cold start, as the emulator reports
// it. Call it after the first Invoke.
func (l *Lambda) InitDuration(t testing.TB) time.Duration {
	t.Helper()
	m := initReport.FindStringSubmatch(readLog(l.logPath))
	if m == nil {
		t.Fatalf("aws-lambda-rie reported no init phase (was the function invoked?):\n%s", readLog(l.logPath))
	}
	ms, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return time.Duration(ms * float64(time.Millisecond))
}

// Stop stops the function and the emulator now instead of at cleanup, for callers that
// start many in one test.
func (l *Lambda) Stop() { l.stop() }

func requireRIE(t testing.TB) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		msg := "aws-lambda-rie runs Linux bootstraps on Linux only (use sam local invoke elsewhere); RUNNERHUB_REQUIRE_TOOLS=1 makes this a failure"
		if ToolsRequired() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return RequireTool(t, "aws-lambda-rie", rieInstallHint)
}

// rieStartTimeout is generous: the emulator needs milliseconds, shared CI machines more.
const rieStartTimeout = 30 * time.Second

func launchRIE(t testing.TB, rie, bootstrap string, env []string, logPath string) (*Lambda, error) {
	apiPort, rapidPort := FreePort(t), FreePort(t)
	for rapidPort == apiPort {
		rapidPort = FreePort(t)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	// The child writes to the file itself: with a pipe, Wait would also wait for the
	// bootstrap, which inherits the pipe but is not the emulator's process group.
	defer logFile.Close()

	apiAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(apiPort))
	rapidAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(rapidPort))
	cmd := exec.Command(rie,
		// The emulator also reads LOG_LEVEL, the function's setting, and exits on a value
		// its logger does not know: give it its own.
		"--log-level", "info",
		"--runtime-interface-emulator-address", apiAddr,
		"--runtime-api-address", rapidAddr,
		bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = env
	if cmd.Env == nil {
		cmd.Env = []string{} // nil would mean the test's own environment
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = rieSysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", rie, err)
	}
	l := &Lambda{
		URL:     "http://" + apiAddr + "/2015-03-31/functions/function/invocations",
		cmd:     cmd,
		logPath: logPath,
		done:    make(chan struct{}),
	}
	go func() {
		l.waitErr = cmd.Wait()
		close(l.done)
	}()
	if err := l.waitReady(apiAddr, rapidAddr); err != nil {
		l.stop()
		return nil, err
	}
	return l, nil
}

// waitReady waits until the runtime API answers its ping (so it is this emulator's, not
// whatever else might hold the port) and the invocation port accepts connections; it
// only connects to the latter, as any request there would invoke the function.
func (l *Lambda) waitReady(apiAddr, rapidAddr string) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(rieStartTimeout)
	for {
		select {
		case <-l.done:
			return fmt.Errorf("aws-lambda-rie exited before it was ready (%v)", l.waitErr)
		default:
		}
		if pingRuntimeAPI(client, rapidAddr) {
			if c, err := net.DialTimeout("tcp", apiAddr, time.Second); err == nil {
				c.Close()
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("aws-lambda-rie did not answer on %s and %s within %v", apiAddr, rapidAddr, rieStartTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func pingRuntimeAPI(client *http.Client, addr string) bool {
	resp, err := client.Get("http://" + addr + "/2018-06-01/ping")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return err == nil && resp.StatusCode == http.StatusOK && string(body) == "pong"
}

// stop kills the bootstrap and the emulator and waits for the emulator to exit.
//
// The emulator starts the bootstrap in a process group of its own, so killing the
// emulator's group does not reach it: its children are read from /proc and their groups
// killed first, while the emulator still runs to reap them (orphaned, they would be left
// to init, which in many containers never reaps). Where /proc lacks the children files, a
// bootstrap still exits by itself within moments: its next poll of the vanished runtime
// API fails.
func (l *Lambda) stop() {
	pid := l.cmd.Process.Pid
	children := childPIDs(pid)
	for _, child := range children {
		_ = syscall.Kill(-child, syscall.SIGKILL)
	}
	for _, child := range children {
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", child)); err != nil {
				break // reaped
			}
		}
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-l.done:
	case <-time.After(10 * time.Second):
	}
}

// childPIDs lists the children of every thread of pid.
func childPIDs(pid int) []int {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var pids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, field := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(field); err == nil {
				pids = append(pids, n)
			}
		}
	}
	return pids
}

// rieLogLimit keeps a failing test's log readable; the end says most about a failure.
const rieLogLimit = 256 << 10

func readLog(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no output: %v)", err)
	}
	if len(b) > rieLogLimit {
		return "[…]\n" + string(b[len(b)-rieLogLimit:])
	}
	return string(b)
}

// ---------------------------------------------------------------------------- building

var builds sync.Map // logical id → *build

type build struct {
	once sync.Once
	path string
	err  error
}

// StartFunction starts the template's function logicalID under aws-lambda-rie with env:
// StartLambda of the bootstrap BuildFunction builds (once per test binary).
func StartFunction(t testing.TB, logicalID string, env []string) *Lambda {
	t.Helper()
	return StartLambda(t, BuildFunction(t, logicalID), env)
}

// BuildFunction builds the bootstrap of the template's function logicalID (such as
// "WebhookFunction") for the host with the Makefile's build-<logicalID> target, once per
// test binary, and returns its path.
//
// Bootstraps go to one directory per checkout under the temporary directory, each
// replaced atomically, so that test binaries building at the same time never run a half
// written file and repeated runs leave no copies behind.
func BuildFunction(t testing.TB, logicalID string) string {
	t.Helper()
	makeTool := RequireTool(t, "make", "install GNU make")
	goTool := RequireTool(t, "go", "install Go")
	root := RepoRoot(t)
	v, _ := builds.LoadOrStore(logicalID, new(build))
	b := v.(*build)
	b.once.Do(func() {
		start := time.Now()
		b.path, b.err = buildFunction(makeTool, goTool, root, logicalID)
		if b.err == nil {
			t.Logf("built %s in %v", b.path, time.Since(start).Round(time.Millisecond))
		}
	})
	if b.err != nil {
		t.Fatalf("building %s: %v", logicalID, b.err)
	}
	return b.path
}

func buildFunction(makeTool, goTool, root, logicalID string) (string, error) {
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), "runnerhub-bootstrap-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(filepath.Join(dir, logicalID), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)

	cmd := exec.Command(makeTool, "--no-print-directory", "-C", root, "build-"+logicalID,
		"GO="+goTool,
		"GOARCH="+runtime.GOARCH, // the host's: the tests run the bootstrap here
		"BUILD_DIR="+tmp,
		"ARTIFACTS_DIR=", // set by sam build; it would take precedence over BUILD_DIR
	)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	path := filepath.Join(dir, logicalID, "bootstrap")
	if err := os.Rename(filepath.Join(tmp, logicalID, "bootstrap"), path); err != nil {
		return "", err
	}
	return path, nil
}

// RequireEventsCovered fails unless covered names exactly the files of events/ that
// match glob, so that an event added there cannot go untested.
func RequireEventsCovered(t testing.TB, glob string, covered []string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(RepoRoot(t), "events", glob))
	if err != nil {
		t.Fatal(err)
	}
	present := make([]string, 0, len(files))
	for _, f := range files {
		present = append(present, filepath.Base(f))
	}
	covered = slices.Clone(covered)
	slices.Sort(present)
	slices.Sort(covered)
	if !slices.Equal(present, covered) {
		t.Fatalf("events/ holds %v, the test expects %v", present, covered)
	}
}
