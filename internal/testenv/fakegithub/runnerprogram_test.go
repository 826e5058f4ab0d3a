package fakegithub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/provider"
	"github.com/runnerhub/webhooks/internal/provider/execprovider"
	"github.com/runnerhub/webhooks/internal/provider/providertest"
	"github.com/runnerhub/webhooks/internal/testenv/fakegithub"
)

func execProvider(p *fakegithub.RunnerProgram, log io.Writer, flags ...string) *execprovider.Provider {
	return execprovider.New(provider.ExecConfig{Command: p.Command(flags...), Timeout: 10 * time.Second}, slog.New(slog.NewTextHandler(log, nil)))
}

// The program speaks the exec provider's contract, as every provider does.
func TestRunnerProgramConformance(t *testing.T) {
	built := fakegithub.BuildRunnerProgram(t)
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
	gh    *fakegithub.Server
	prog  *fakegithub.RunnerProgram
	inbox *actions
}

// actions keeps the action of each workflow_job delivery.
type actions struct {
	mu   sync.Mutex
	list []string
}

func (a *actions) target(_ context.Context, _ http.Header, body []byte) int {
	var p struct{ Action string }
	_ = json.Unmarshal(body, &p)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.list = append(a.list, p.Action)
	return http.StatusAccepted
}

func (a *actions) get() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.list)
}

func startLoop(t *testing.T) *loop {
	gh := fakegithub.Start(t)
	gh.Token = "pat"
	l := &loop{gh: gh, prog: fakegithub.BuildRunnerProgram(t), inbox: &actions{}}
	gh.AddHook("repo/octo/app/12", 12, "s3cret", l.inbox.target)
	gh.SendJobEvents("repo/octo/app/12", 50*time.Millisecond)
	return l
}

// jitRequest mints a real JIT configuration from the fake and makes the create request.
func (l *loop) jitRequest(t *testing.T, name string) provider.CreateRequest {
	t.Helper()
	req, _ := http.NewRequest("POST", l.gh.URL+"/orgs/octo/actions/runners/generate-jitconfig", strings.NewReader(`{"name":"`+name+`","runner_group_id":1,"labels":["linux"]}`))
	req.Header.Set("Authorization", "Bearer pat")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer struct {
		EncodedJITConfig string `json:"encoded_jit_config"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("generate-jitconfig: %d %v", resp.StatusCode, err)
	}
	return provider.CreateRequest{Name: name, Pool: "linux", Labels: []string{"linux"}, JITConfig: answer.EncodedJITConfig, Ephemeral: true, JobID: 77}
}

func (l *loop) status(name string) string {
	for _, r := range l.gh.Runners("org/octo") {
		if r.Name == name {
			return r.Status
		}
	}
	return "gone"
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !bytes.Contains(stat, []byte(") Z "))
}

func TestARunnerConnectsRunsItsJobAndExits(t *testing.T) {
	l := startLoop(t)
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
	waitUntil(t, "the runner online", func() bool { return l.status("rh-linux-1") == "online" })
	l.gh.QueueJob("octo/app", fakegithub.Job{ID: 1, Labels: []string{"linux"}})
	waitUntil(t, "the job's completed", func() bool { return slices.Equal(l.inbox.get(), []string{"queued", "in_progress", "completed"}) })
	if got := l.status("rh-linux-1"); got != "gone" {
		t.Fatalf("the ephemeral runner is %s on GitHub after its job", got)
	}
	m := l.prog.Machines()
	if len(m) != 1 || m[0].ProviderID != id {
		t.Fatalf("machines %+v", m)
	}
	waitUntil(t, "the runner process to exit", func() bool { return !alive(m[0].PID) })
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
	l := startLoop(t)
	p := execProvider(l.prog, io.Discard)
	id, err := p.Create(t.Context(), l.jitRequest(t, "rh-linux-1"))
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the runner online", func() bool { return l.status("rh-linux-1") == "online" })
	pid := l.prog.Machines()[0].PID
	if err := p.Delete(t.Context(), "rh-linux-1", id); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Fatal("the runner process outlived its delete")
	}
	if got := l.status("rh-linux-1"); got != "offline" {
		t.Fatalf("a stopped runner is %s on GitHub, want offline", got)
	}
}

func TestRunnerProgramFaults(t *testing.T) {
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
		{"no runner processes", []string{"--no-runner"}, []string{"silent", "silent"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := startLoop(t)
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
					waitUntil(t, name+" online", func() bool { return l.status(name) == "online" })
				}
			}
			time.Sleep(300 * time.Millisecond) // three session renewals
			for name, want := range names {
				got := l.status(name)
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
