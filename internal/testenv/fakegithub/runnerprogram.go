package fakegithub

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/provider/execprovider/execfake"
)

// RunnerProgram is the fake runner program (./fakerunner), an exec provider whose
// machines are local runner processes that connect to this fake GitHub.
type RunnerProgram struct {
	// Path is the built program.
	Path string
	// State is its state directory, a fresh one per program.
	State string
}

// BuildRunnerProgram builds the fake runner program into a temporary directory and
// gives it a fresh state directory (see Fresh).
func BuildRunnerProgram(t testing.TB) *RunnerProgram {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fakerunner")
	cmd := exec.Command("go", "build", "-o", path, "github.com/runnerhub/webhooks/internal/testenv/fakegithub/fakerunner")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fakegithub: building the fake runner program: %v\n%s", err, out)
	}
	return (&RunnerProgram{Path: path}).Fresh(t)
}

// Fresh returns the same program with a new, empty state directory: a provider with no
// machines. When t ends, the runner processes still running are stopped through the
// program's own delete.
func (p *RunnerProgram) Fresh(t testing.TB) *RunnerProgram {
	t.Helper()
	q := &RunnerProgram{Path: p.Path, State: t.TempDir()}
	t.Cleanup(func() {
		for _, m := range q.Machines() {
			del := exec.Command(q.Path, "--state", q.State, "delete")
			del.Stdin = strings.NewReader(`{"name":"` + m.Name + `","providerId":"` + m.ProviderID + `"}`)
			if out, err := del.CombinedOutput(); err != nil {
				t.Errorf("fakegithub: stopping runner %s: %v %s", m.Name, err, out)
			}
		}
	})
	return q
}

// Command is the provider command, for a pool's "provider": {"type": "exec",
// "command": ...}: the program with its state directory and flags (--fail-every N,
// --never-connect K, --poll D, --lifetime D).
func (p *RunnerProgram) Command(flags ...string) []string {
	return append([]string{p.Path, "--state", p.State}, flags...)
}

// Machine is one machine the program runs.
type Machine struct {
	Name       string `json:"name"`
	Pool       string `json:"pool"`
	ProviderID string `json:"providerId"`
	PID        int    `json:"pid"`
	JITConfig  string `json:"jitConfig"`
}

// Machines lists the machines the program runs (created and not deleted).
func (p *RunnerProgram) Machines() []Machine {
	return execfake.Machines[Machine](p.State)
}

// Call is one call of the program, from its calls.log.
type Call struct {
	Action string    // create, delete or list
	Name   string    // the runner's (create, delete)
	Pool   string    // create, list
	JobID  int64     // create: the job the runner is started for (0: a warm runner)
	At     time.Time // when the program started
}

// NeverConnected returns the runner, and its pool, whose machine the --never-connect
// fault started ("" before that attempt), from the program's execfake.NeverConnectedFile.
func (p *RunnerProgram) NeverConnected(t testing.TB) (name, pool string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.State, execfake.NeverConnectedFile))
	if os.IsNotExist(err) {
		return "", ""
	}
	if err != nil {
		t.Fatal(err)
	}
	name, pool, _ = strings.Cut(string(b), "\n")
	return name, pool
}

// Calls reads every call made so far, in order.
func (p *RunnerProgram) Calls(t testing.TB) []Call {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.State, "calls.log"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []Call
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var line struct {
			Action, Name, Pool string
			JobID              int64
			At                 int64
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("fakegithub: calls.log: %v", err)
		}
		out = append(out, Call{Action: line.Action, Name: line.Name, Pool: line.Pool, JobID: line.JobID, At: time.Unix(0, line.At)})
	}
	return out
}
