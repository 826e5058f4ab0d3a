package main

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/testenv"
)

// builtBinary is this command, built once for the tests that run it.
var builtBinary struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "runnerhub-local-test")
	if err != nil {
		panic(err)
	}
	builtBinary.path = filepath.Join(dir, "local")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func binary(t *testing.T) string {
	t.Helper()
	builtBinary.once.Do(func() {
		builtBinary.out, builtBinary.err = exec.Command("go", "build", "-o", builtBinary.path, ".").CombinedOutput()
	})
	if builtBinary.err != nil {
		t.Fatalf("go build: %v\n%s", builtBinary.err, builtBinary.out)
	}
	return builtBinary.path
}

// cleanEnv is the environment without RunnerHub's variables, plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RUNNERHUB_") && !strings.HasPrefix(kv, "GITHUB_") && !strings.HasPrefix(kv, "PORT=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// run runs the binary and returns its exit code, stdout and stderr.
func run(t *testing.T, bin string, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Dir = filepath.Join("..", "..")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		t.Fatal(err)
	}
	return 0, stdout.String(), stderr.String()
}

// Each subcommand reaches its function in internal/standalone (each answers in its own
// words), help is not an error, and an unknown command says so and exits 1. PORT is
// taken, so that a start fails at once; no command creates the data directory.
func TestCommandLine(t *testing.T) {
	bin := binary(t)
	busy, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := filepath.Join(t.TempDir(), "never-created")
	env := cleanEnv("RUNNERHUB_DATA_DIR="+dir, "PORT="+strconv.Itoa(busy.Addr().(*net.TCPAddr).Port))
	for _, tc := range []struct {
		args   []string
		exit   int
		output string // in stdout or stderr
	}{
		{[]string{"-h"}, 0, "commands:"},
		{[]string{"--help"}, 0, "commands:"},
		{[]string{"help"}, 0, "demo"},
		{nil, 1, "cannot listen on port"},
		{[]string{"run"}, 1, "cannot listen on port"},
		{[]string{"send", "-h"}, 0, "-job-id"},
		{[]string{"send", "-help"}, 0, "-secret-file"},
		{[]string{"send"}, 1, "send takes one payload file"},
		{[]string{"demo", "-h"}, 0, "-pace"},
		{[]string{"backup", "-h"}, 0, "-token"},
		{[]string{"backup"}, 1, "usage: backup [-url URL] [-token TOKEN] FILE"},
		{[]string{"load", "-h"}, 0, "-distinct-jobs"},
		{[]string{"replay-dlq"}, 1, "RUNNERHUB_EVENTS_QUEUE_URL, RUNNERHUB_EVENTS_DLQ_URL must be set"},
		{[]string{"recount-pools"}, 1, "RUNNERHUB_EVENTS_TABLE must be set"},
		{[]string{"nope"}, 1, `unknown command "nope"`},
	} {
		t.Run(strings.Join(append([]string{"local"}, tc.args...), " "), func(t *testing.T) {
			code, stdout, stderr := run(t, bin, env, tc.args...)
			if code != tc.exit || !strings.Contains(stdout+stderr, tc.output) {
				t.Errorf("exit %d, want %d; output lacks %q:\n%s%s", code, tc.exit, tc.output, stdout, stderr)
			}
			if strings.Contains(stderr, "flag: help requested") {
				t.Errorf("help reported as an error: %s", stderr)
			}
		})
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the data directory was created: %v", err)
	}
}

// The banner's commands reach this very instance (another port, another data
// directory): the send it prints works as printed. Stopping logs what was in flight.
func TestBannerTargetsTheInstanceAndShutdownLogs(t *testing.T) {
	bin := binary(t)
	dir := filepath.Join(t.TempDir(), "other-data")
	cmd := exec.Command(bin)
	cmd.Env = cleanEnv("RUNNERHUB_DATA_DIR="+dir, "PORT=0")
	cmd.Dir = filepath.Join("..", "..")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testenv.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var banner []string
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		banner = append(banner, lines.Text())
		if strings.HasPrefix(lines.Text(), "Press Ctrl-C") {
			break
		}
	}
	var send string
	for _, l := range banner {
		if strings.Contains(l, " send testdata/") {
			send = strings.TrimSpace(l)
		}
	}
	m := regexp.MustCompile(`^PORT=(\d+) RUNNERHUB_DATA_DIR=(\S+) go run ./functions/local send (\S+)$`).FindStringSubmatch(send)
	if m == nil || m[1] == "0" || m[2] != dir {
		t.Fatalf("send hint %q does not target port and data dir %s:\n%s", send, dir, strings.Join(banner, "\n"))
	}
	code, out, errOut := run(t, bin, cleanEnv("PORT="+m[1], "RUNNERHUB_DATA_DIR="+m[2]), "send", m[3])
	if code != 0 || !strings.Contains(out, "sent workflow_job delivery 1:") {
		t.Fatalf("the printed send: exit %d\n%s%s", code, out, errOut)
	}
	if info, err := os.Stat(filepath.Join(dir, "api-token")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("api-token: %v %v, want a 0600 file", info, err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not stop within 15 s of SIGTERM")
	}
	for _, want := range []string{"stopping: finishing what is in flight", "requests=", "deliveries_processing=", "websockets=", "msg=stopped", "deliveries_queued="} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, stderr.String())
		}
	}
}
