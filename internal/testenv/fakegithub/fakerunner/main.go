// Command fakerunner is an "exec" provider whose machines are local processes playing
// self-hosted runners against the fake GitHub: create starts a detached runner process
// that connects with its JIT configuration (fakejit) and keeps its session until GitHub
// removes the runner (after its job, for an ephemeral runner) or it is deleted.
//
//	fakerunner [--state DIR] [--fail-every N] [--never-connect K] [--poll D] [--lifetime D] create|delete|list
//
// It speaks the exec provider's JSON contract on stdin and stdout. The state directory
// (--state, or FAKERUNNER_STATE) holds one <providerId>.machine file per machine (the
// create request, with the runner process's pid), the runner's <providerId>.log, the
// count of create attempts (attempts), and calls.log (one JSON line per call, with
// its start time, for latency measurements).
//
// Faults: --fail-every N fails every Nth create attempt (counted across calls) before
// starting anything; --never-connect K makes the Kth create attempt start a runner that
// never connects, as a machine whose runner does not boot.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/runnerhub/webhooks/internal/provider/execprovider"
	"github.com/runnerhub/webhooks/internal/provider/execprovider/execfake"
	"github.com/runnerhub/webhooks/internal/testenv/fakegithub/fakejit"
)

// machine is a <providerId>.machine file.
type machine struct {
	// CreateInput is the create request the machine was made from.
	execprovider.CreateInput
	ProviderID string `json:"providerId"`
	PID        int    `json:"pid"`
	// NeverConnects is the --never-connect fault.
	NeverConnects bool `json:"neverConnects,omitempty"`
}

type options struct {
	state        string
	failEvery    int
	neverConnect int
	poll         time.Duration
	lifetime     time.Duration
}

func main() {
	started := time.Now()
	var o options
	flag.StringVar(&o.state, "state", os.Getenv("FAKERUNNER_STATE"), "state directory (default $FAKERUNNER_STATE)")
	flag.IntVar(&o.failEvery, "fail-every", 0, "fail every Nth create attempt (0: never)")
	flag.IntVar(&o.neverConnect, "never-connect", 0, "the Kth create attempt starts a runner that never connects (0: none)")
	flag.DurationVar(&o.poll, "poll", 100*time.Millisecond, "how often a runner renews its session")
	flag.DurationVar(&o.lifetime, "lifetime", 5*time.Minute, "a runner process exits by itself after this long, so that none outlives a test")
	flag.Parse()
	if o.state == "" || flag.NArg() < 1 {
		execfake.Fail("usage: fakerunner --state DIR [--fail-every N] [--never-connect K] create|delete|list")
	}
	if flag.Arg(0) == "run" && flag.NArg() == 2 {
		os.Exit(runRunner(o, flag.Arg(1)))
	}
	stdin, err := io.ReadAll(os.Stdin)
	if err != nil {
		execfake.Fail("read stdin: %v", err)
	}
	record(o.state, flag.Arg(0), stdin, started)
	switch flag.Arg(0) {
	case "create":
		create(o, stdin)
	case "delete":
		var in struct {
			Name       string `json:"name"`
			ProviderID string `json:"providerId"`
		}
		if err := json.Unmarshal(stdin, &in); err != nil || in.ProviderID == "" {
			execfake.Fail("delete: stdin %q has no providerId", stdin)
		}
		if err := remove(o.state, in.ProviderID); err != nil {
			execfake.Fail("delete %s: %v", in.ProviderID, err)
		}
		execfake.Answer(struct{}{})
	case "list":
		var in struct {
			Pool string `json:"pool"`
		}
		if err := json.Unmarshal(stdin, &in); err != nil {
			execfake.Fail("list: %v", err)
		}
		runners := []map[string]string{}
		for _, m := range execfake.Machines[machine](o.state) {
			if m.Pool == in.Pool {
				runners = append(runners, map[string]string{"name": m.Name, "providerId": m.ProviderID})
			}
		}
		execfake.Answer(map[string]any{"runners": runners})
	default:
		execfake.Fail("unknown action %q", flag.Arg(0))
	}
}

func create(o options, stdin []byte) {
	var m machine
	if err := json.Unmarshal(stdin, &m); err != nil || m.Name == "" || m.Pool == "" || m.JITConfig == "" {
		execfake.Fail("create: stdin is not {\"name\", \"pool\", \"jitConfig\", ...}")
	}
	n, err := countAttempt(o.state)
	if err != nil {
		execfake.Fail("create: %v", err)
	}
	if o.failEvery > 0 && n%o.failEvery == 0 {
		execfake.Fail("create %s: fake cloud out of capacity (attempt %d, --fail-every %d)", m.Name, n, o.failEvery)
	}
	m.ProviderID = "fr-" + m.Name
	m.NeverConnects = n == o.neverConnect
	if m.NeverConnects {
		// Kept after the machine is deleted, for the test to name the runner: which
		// runner makes the Kth attempt is up to concurrent provider calls.
		if err := os.WriteFile(filepath.Join(o.state, execfake.NeverConnectedFile), []byte(m.Name+"\n"+m.Pool), 0o600); err != nil {
			execfake.Fail("create: %v", err)
		}
	}
	path := filepath.Join(o.state, m.ProviderID+".machine")
	if err := writeMachine(path, m); err != nil {
		execfake.Fail("create: %v", err)
	}
	pid, err := startRunner(o, path, filepath.Join(o.state, m.ProviderID+".log"))
	if err != nil {
		_ = os.Remove(path)
		execfake.Fail("create %s: start the runner: %v", m.Name, err)
	}
	m.PID = pid
	if err := writeMachine(path, m); err != nil {
		execfake.Fail("create: %v", err)
	}
	execfake.Answer(map[string]string{"providerId": m.ProviderID})
}

// countAttempt numbers this create attempt from 1, race-free across concurrent calls:
// the count is kept in the state directory's "attempts" file, under an exclusive lock.
func countAttempt(state string) (int, error) {
	f, err := os.OpenFile(filepath.Join(state, "attempts"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return 0, err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return 0, err
	}
	n := 1
	if len(b) > 0 {
		if n, err = strconv.Atoi(string(b)); err != nil {
			return 0, fmt.Errorf("attempts file: %w", err)
		}
		n++
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(n)), 0); err != nil {
		return 0, err
	}
	return n, nil // closing the file releases the lock
}

// writeMachine writes m atomically (list and delete may read it meanwhile). It holds the
// JIT configuration, a credential, as the real runner's .credentials file does: owner
// only.
func writeMachine(path string, m machine) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// startRunner starts "fakerunner run <machine>" detached: its own session, no terminal,
// and none of create's output, so that create returns at once.
func startRunner(o options, machinePath, logPath string) (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command(self, "--state", o.state, "--poll", o.poll.String(), "--lifetime", o.lifetime.String(), "run", machinePath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	return pid, cmd.Process.Release()
}

// runRunner is the runner process: it keeps a session with the fake GitHub until GitHub
// removes the runner (exit 0), it is told to stop (SIGTERM: it disconnects), or its
// lifetime ends.
func runRunner(o options, machinePath string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.lifetime)
	defer cancel()
	b, err := os.ReadFile(machinePath)
	if err != nil {
		fmt.Println("read machine:", err)
		return 1
	}
	var m machine
	if err := json.Unmarshal(b, &m); err != nil {
		fmt.Println("read machine:", err)
		return 1
	}
	if m.NeverConnects {
		fmt.Println("runner", m.Name, "never connects (--never-connect)")
		<-ctx.Done()
		return 0
	}
	cfg, err := fakejit.Decode(m.JITConfig)
	if err != nil {
		fmt.Println("runner", m.Name, "cannot start:", err) // never the configuration itself
		return 1
	}
	body, _ := json.Marshal(fakejit.ConnectRequest{EncodedJITConfig: m.JITConfig})
	for {
		status, err := post(ctx, cfg.URL+fakejit.ConnectPath, body)
		switch {
		case err != nil && ctx.Err() == nil:
			fmt.Println("runner", m.Name, "session:", err) // GitHub unreachable: try again
		case status == http.StatusNotFound:
			fmt.Println("runner", m.Name, "removed from GitHub: exiting")
			return 0
		case status != http.StatusOK && err == nil:
			fmt.Println("runner", m.Name, "refused by GitHub:", status)
			return 1
		}
		select {
		case <-ctx.Done():
			// Stopped or out of time: GitHub sees the runner go offline.
			dctx, dcancel := context.WithTimeout(context.Background(), time.Second)
			_, _ = post(dctx, cfg.URL+fakejit.DisconnectPath, body)
			dcancel()
			fmt.Println("runner", m.Name, "stopped")
			return 0
		case <-time.After(o.poll):
		}
	}
}

func post(ctx context.Context, url string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// remove stops the machine's runner process and deletes its files; a machine already
// gone is not an error.
func remove(state, providerID string) error {
	base := filepath.Join(state, filepath.Base(providerID))
	b, err := os.ReadFile(base + ".machine")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var m machine
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if m.PID > 0 && runsMachine(m.PID, base+".machine") {
		_ = syscall.Kill(m.PID, syscall.SIGTERM)
		deadline := time.Now().Add(3 * time.Second)
		for runsMachine(m.PID, base+".machine") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if runsMachine(m.PID, base+".machine") {
			_ = syscall.Kill(m.PID, syscall.SIGKILL)
		}
	}
	for _, f := range []string{base + ".machine", base + ".log"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// runsMachine tells whether pid is a live runner process of the machine file path:
// never signal a process this program did not start (the pid may have been reused).
func runsMachine(pid int, path string) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name; Z is exited, not yet reaped.
	if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && slices.Contains(strings.Split(string(cmdline), "\x00"), path)
}

// record appends the call to calls.log: its action, when the process started and the
// runner's name, pool and job (never the JIT configuration).
func record(state, action string, stdin []byte, at time.Time) {
	var in struct {
		Name  string `json:"name"`
		Pool  string `json:"pool"`
		JobID *int64 `json:"jobId"`
	}
	_ = json.Unmarshal(stdin, &in)
	execfake.Record(state, map[string]any{"action": action, "name": in.Name, "pool": in.Pool, "jobId": in.JobID, "at": at.UnixNano()})
}
