package fakegithub

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/provider"
	"github.com/runnerhub/webhooks/internal/provider/execprovider"
	"github.com/runnerhub/webhooks/internal/provider/providertest"
)

func execProvider(p *RunnerProgram, log io.Writer, flags ...string) *execprovider.Provider {
	return execprovider.New(provider.ExecConfig{Command: p.Command(flags...), Timeout: 10 * time.Second}, slog.New(slog.NewTextHandler(log, nil)))
}

// The program speaks the exec provider's contract, as every provider does.
func TestRunnerProgramConformance(t *testing.T) {
	built := BuildRunnerProgram(t)
	providertest.Run(t, func(t *testing.T) providertest.Harness {
		p := built.Fresh(t)
		return providertest.Harness{
			Provider: execProvider(p, io.Discard),
			HandedJITConfig: func(t *testing.T, providerID string) string {
				for _, m := range p.Machines() {
					if m.ProviderID == providerID {
						return m.JITConfig
					}
				}
				t.Fatalf("no machine %s", providerID)
				return ""
			},
		}
	})
}

type loop struct {
	gh    *Server
	prog  *RunnerProgram
	inbox *inbox
}

// startLoop starts a fake GitHub that runs jobs, and gives it prog (a fresh build when
// nil).
func startLoop(t *testing.T, prog *RunnerProgram) *loop {
	gh := Start(t)
	gh.Token = "pat"
	if prog == nil {
		prog = BuildRunnerProgram(t)
	}
	l := &loop{gh: gh, prog: prog, inbox: &inbox{}}
	gh.AddHook(loopHook, 12, "s3cret", l.inbox.target)
	gh.SendJobEvents(loopHook, 50*time.Millisecond)
	return l
}

// jitRequest mints a JIT configuration from the fake and makes the create request.
func (l *loop) jitRequest(t *testing.T, name string) provider.CreateRequest {
	t.Helper()
	encoded, _ := jit(t, l.gh, name, "linux")
	return provider.CreateRequest{Name: name, Pool: "linux", Labels: []string{"linux"}, JITConfig: encoded, Ephemeral: true, JobID: 77}
}

func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !bytes.Contains(stat, []byte(") Z "))
}

func TestARunnerConnectsRunsItsJobAndExits(t *testing.T) {
	l := startLoop(t, nil)
	p := execProvider(l.prog, io.Discard)
	ctx := t.Context()
	start := time.Now()
	id, err := p.Create(ctx, l.jitRequest(t, "rh-linux-1"))
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("create took %v: it must start the runner detached and return", took)
	}
	waitFor(t, "the runner online", func() bool { return runnerStatus(l.gh, "rh-linux-1") == "online" })
	l.gh.QueueJob("octo/app", Job{ID: 1, Labels: []string{"linux"}})
	waitFor(t, "the job's completed", func() bool {
		return slices.Equal(l.inbox.actions(), []string{"queued 1", "in_progress 1 rh-linux-1", "completed 1 rh-linux-1"})
	})
	if got := runnerStatus(l.gh, "rh-linux-1"); got != "gone" {
		t.Fatalf("the ephemeral runner is %s on GitHub after its job", got)
	}
	m := l.prog.Machines()
	if len(m) != 1 || m[0].ProviderID != id {
		t.Fatalf("machines %+v", m)
	}
	waitFor(t, "the runner process to exit", func() bool { return !alive(m[0].PID) })
	// The machine stays listed until RunnerHub deletes it.
	if got, err := p.List(ctx, "linux"); err != nil || len(got) != 1 {
		t.Fatalf("list: %v %v", got, err)
	}
	if err := p.Delete(ctx, "rh-linux-1", id); err != nil {
		t.Fatal(err)
	}
	if got, err := p.List(ctx, "linux"); err != nil || len(got) != 0 {
		t.Fatalf("list after delete: %v %v", got, err)
	}
	calls := l.prog.Calls(t)
	if len(calls) != 4 || calls[0].Action != "create" || calls[0].Name != "rh-linux-1" || calls[0].JobID != 77 || calls[0].At.Before(start) {
		t.Fatalf("calls %+v", calls)
	}
}

func TestDeleteStopsARunner(t *testing.T) {
	l := startLoop(t, nil)
	p := execProvider(l.prog, io.Discard)
	id, err := p.Create(t.Context(), l.jitRequest(t, "rh-linux-1"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the runner online", func() bool { return runnerStatus(l.gh, "rh-linux-1") == "online" })
	pid := l.prog.Machines()[0].PID
	if err := p.Delete(t.Context(), "rh-linux-1", id); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Fatal("the runner process outlived its delete")
	}
	if got := runnerStatus(l.gh, "rh-linux-1"); got != "offline" {
		t.Fatalf("a stopped runner is %s on GitHub, want offline", got)
	}
}

func TestRunnerProgramFaults(t *testing.T) {
	built := BuildRunnerProgram(t)
	for _, tc := range []struct {
		name  string
		flags []string
		// want says, per create attempt, "failed", "online" or "silent" (created, never
		// connects).
		want []string
		// process says whether a silent machine has a runner process.
		process bool
	}{
		{"every third create fails", []string{"--fail-every", "3"}, []string{"online", "online", "failed", "online", "online", "failed"}, false},
		{"the second runner never connects", []string{"--never-connect", "2"}, []string{"online", "silent", "online"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := startLoop(t, built.Fresh(t))
			var log bytes.Buffer
			p := execProvider(l.prog, &log, tc.flags...)
			names := map[string]string{}
			for i, want := range tc.want {
				req := l.jitRequest(t, "rh-linux-"+strconv.Itoa(i))
				_, err := p.Create(t.Context(), req)
				if (err != nil) != (want == "failed") {
					t.Fatalf("create %d: %v, want %s", i+1, err, want)
				}
				if err != nil && !strings.Contains(err.Error(), "out of capacity") {
					t.Fatalf("create %d failed without the program's stderr: %v", i+1, err)
				}
				names[req.Name] = want
			}
			for name, want := range names {
				if want == "online" {
					waitFor(t, name+" online", func() bool { return runnerStatus(l.gh, name) == "online" })
				}
			}
			time.Sleep(300 * time.Millisecond) // three session renewals
			for name, want := range names {
				got := runnerStatus(l.gh, name)
				if (want == "online") != (got == "online") {
					t.Fatalf("%s is %s on GitHub, want it %s", name, got, want)
				}
			}
			machines := l.prog.Machines()
			if n := len(tc.want) - strings.Count(strings.Join(tc.want, ","), "failed"); len(machines) != n {
				t.Fatalf("%d machines, want %d: a failed create must leave none", len(machines), n)
			}
			for _, m := range machines {
				if names[m.Name] == "silent" && (m.PID != 0 && alive(m.PID)) != tc.process {
					t.Fatalf("silent runner %s: process %d, want one: %v", m.Name, m.PID, tc.process)
				}
			}
		})
	}
}
