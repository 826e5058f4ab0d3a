package fakegithub

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/testenv/fakegithub/fakejit"
	"github.com/runnerhub/webhooks/internal/testenv/suite"
)

const loopHook = "repo/octo/app/12"

// inbox is a hook target that keeps what it receives.
type inbox struct {
	deliveries suite.Recorded[received]
}

type received struct {
	header  http.Header
	payload map[string]any
}

func (b *inbox) target(_ context.Context, header http.Header, body []byte) int {
	var p map[string]any
	_ = json.Unmarshal(body, &p)
	if header.Get("X-Hub-Signature-256") != sign("s3cret", body) {
		return http.StatusUnauthorized
	}
	b.deliveries.Add(received{header, p})
	return http.StatusAccepted
}

// actions lists "action job-id runner" of the workflow_job deliveries received.
func (b *inbox) actions() []string {
	var out []string
	for _, d := range b.deliveries.All() {
		wj := d.payload["workflow_job"].(map[string]any)
		runner, _ := wj["runner_name"].(string)
		out = append(out, strings.TrimSpace(d.payload["action"].(string)+" "+jsonNumber(wj["id"])+" "+runner))
	}
	return out
}

func jsonNumber(v any) string { b, _ := json.Marshal(v); return string(b) }

func call(t *testing.T, s *Server, method, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer pat")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// jit mints a JIT configuration in the organization octo and decodes it.
func jit(t *testing.T, s *Server, name string, labels ...string) (string, fakejit.Config) {
	t.Helper()
	lb, _ := json.Marshal(labels)
	status, body := call(t, s, "POST", "/orgs/octo/actions/runners/generate-jitconfig", `{"name":"`+name+`","runner_group_id":1,"labels":`+string(lb)+`}`)
	if status != http.StatusCreated {
		t.Fatalf("generate-jitconfig: %d %s", status, body)
	}
	var answer struct {
		Runner struct {
			ID     int64  `json:"id"`
			Status string `json:"status"`
		} `json:"runner"`
		EncodedJITConfig string `json:"encoded_jit_config"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		t.Fatal(err)
	}
	cfg, err := fakejit.Decode(answer.EncodedJITConfig)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RunnerID != answer.Runner.ID || cfg.Name != name || answer.Runner.Status != "offline" || cfg.URL != s.URL || cfg.Scope != "org/octo" {
		t.Fatalf("JIT configuration %+v for runner %+v", cfg, answer.Runner)
	}
	return answer.EncodedJITConfig, cfg
}

func connect(t *testing.T, s *Server, path, encoded string) (int, fakejit.ConnectAnswer) {
	t.Helper()
	body, _ := json.Marshal(fakejit.ConnectRequest{EncodedJITConfig: encoded})
	resp, err := http.Post(s.URL+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a fakejit.ConnectAnswer
	_ = json.NewDecoder(resp.Body).Decode(&a)
	return resp.StatusCode, a
}

func runnerStatus(s *Server, name string) string {
	for _, r := range s.Runners("org/octo") {
		if r.Name == name {
			return r.Status
		}
	}
	return "gone"
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestJITRunnerSessions(t *testing.T) {
	s := Start(t)
	s.Token = "pat"
	encoded, cfg := jit(t, s, "rh-linux-1", "linux")
	if status, _ := call(t, s, "POST", "/orgs/octo/actions/runners/generate-jitconfig", `{"name":"rh-linux-1","runner_group_id":1,"labels":["linux"]}`); status != http.StatusConflict {
		t.Fatalf("a second runner with the same name: %d, want 409", status)
	}
	forged := cfg
	forged.Secret = "guessed"
	gone := cfg
	gone.RunnerID = 1
	for _, tc := range []struct {
		name, path, config string
		want               int
		wantStatus         string
	}{
		{"a forged secret is refused", fakejit.ConnectPath, fakejit.Encode(forged), http.StatusUnauthorized, "offline"},
		{"a runner GitHub does not have is refused", fakejit.ConnectPath, fakejit.Encode(gone), http.StatusNotFound, "offline"},
		{"garbage is refused", fakejit.ConnectPath, "not base64!", http.StatusBadRequest, "offline"},
		{"connecting makes it online", fakejit.ConnectPath, encoded, http.StatusOK, "online"},
		{"connecting again keeps the session", fakejit.ConnectPath, encoded, http.StatusOK, "online"},
		{"disconnecting makes it offline", fakejit.DisconnectPath, encoded, http.StatusOK, "offline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, answer := connect(t, s, tc.path, tc.config)
			if status != tc.want {
				t.Fatalf("status %d, want %d", status, tc.want)
			}
			if status == http.StatusOK && (answer.RunnerID != cfg.RunnerID || answer.Name != cfg.Name) {
				t.Fatalf("answer %+v", answer)
			}
			if got := runnerStatus(s, "rh-linux-1"); got != tc.wantStatus {
				t.Fatalf("runner %s, want %s", got, tc.wantStatus)
			}
		})
	}
}

func TestJobsGoToConnectedRunnersThatFit(t *testing.T) {
	s := Start(t)
	s.Token = "pat"
	box := &inbox{}
	s.AddHook(loopHook, 12, "s3cret", box.target)
	s.SendJobEvents(loopHook, 50*time.Millisecond)
	gpu, _ := jit(t, s, "rh-gpu-1", "gpu")
	linux, linuxCfg := jit(t, s, "rh-linux-1", "Linux", "x64")
	s.QueueJob("octo/app", Job{ID: 1, RunID: 9, Labels: []string{"self-hosted", "linux"}})
	s.QueueJob("octo/app", Job{ID: 2, RunID: 9, Labels: []string{"linux"}})
	time.Sleep(80 * time.Millisecond)
	if got := box.actions(); !slices.Equal(got, []string{"queued 1", "queued 2"}) {
		t.Fatalf("with no runner online: %v", got)
	}
	connect(t, s, fakejit.ConnectPath, gpu) // online, but its labels do not fit
	connect(t, s, fakejit.ConnectPath, linux)
	waitFor(t, "job 1 to complete", func() bool { return len(box.actions()) == 4 })
	// The ephemeral runner is gone after one job: job 2 waits for another runner.
	want := []string{"queued 1", "queued 2", "in_progress 1 rh-linux-1", "completed 1 rh-linux-1"}
	if got := box.actions(); !slices.Equal(got, want) {
		t.Fatalf("deliveries %v, want %v", got, want)
	}
	if got := runnerStatus(s, "rh-linux-1"); got != "gone" {
		t.Fatalf("the ephemeral runner is %s after its job, want gone", got)
	}
	if status, _ := connect(t, s, fakejit.ConnectPath, linux); status != http.StatusNotFound {
		t.Fatalf("a removed runner connecting again: %d, want 404", status)
	}
	j, _ := s.JobState("octo/app", 1)
	if j.Status != "completed" || j.Conclusion != "success" || j.RunnerID != linuxCfg.RunnerID || j.RunnerName != "rh-linux-1" {
		t.Fatalf("job 1 as the REST API has it: %+v", j)
	}
	status, body := call(t, s, "GET", "/repos/octo/app/actions/jobs/1", "")
	if status != http.StatusOK || !strings.Contains(string(body), `"status":"completed"`) {
		t.Fatalf("GET job 1: %d %s", status, body)
	}
	if j, _ := s.JobState("octo/app", 2); j.Status != "queued" {
		t.Fatalf("job 2: %+v", j)
	}
	// A non-ephemeral runner (registered with a token) takes job 2, and stays.
	s.AddRunner("org/octo", "static-1", []string{"self-hosted", "linux"}, "online", false)
	waitFor(t, "job 2 to complete", func() bool { return len(box.actions()) == 6 })
	if got := runnerStatus(s, "static-1"); got != "online" {
		t.Fatalf("the non-ephemeral runner is %s after its job", got)
	}
	// The deliveries are logged for redelivery, with their event and action.
	status, body = call(t, s, "GET", "/repos/octo/app/hooks/12/deliveries", "")
	if status != http.StatusOK || strings.Count(string(body), `"action":"completed"`) != 2 || strings.Count(string(body), `"event":"workflow_job"`) != 6 {
		t.Fatalf("delivery log: %d %s", status, body)
	}
}

func TestABusyRunnerCannotBeDeleted(t *testing.T) {
	s := Start(t)
	s.Token = "pat"
	box := &inbox{}
	s.AddHook(loopHook, 12, "s3cret", box.target)
	s.SendJobEvents(loopHook, time.Hour)
	encoded, cfg := jit(t, s, "rh-linux-1", "linux")
	connect(t, s, fakejit.ConnectPath, encoded)
	s.QueueJob("octo/app", Job{ID: 1, Labels: []string{"linux"}})
	waitFor(t, "in_progress", func() bool { return len(box.actions()) == 2 })
	if status, answer := connect(t, s, fakejit.ConnectPath, encoded); status != http.StatusOK || !answer.Busy || answer.JobID != 1 {
		t.Fatalf("session of the busy runner: %d %+v", status, answer)
	}
	if status, body := call(t, s, "DELETE", "/orgs/octo/actions/runners/"+jsonNumber(cfg.RunnerID), ""); status != http.StatusUnprocessableEntity {
		t.Fatalf("DELETE of a busy runner: %d %s, want 422", status, body)
	}
}

func TestDroppedCompletedDeliveries(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mode   Mode
		logged string // the completed attempt's status in the delivery log; "" for none
	}{
		{"dropped: logged as failed, so redelivery recovers it", Dropped, "Invalid HTTP Response: 502"},
		{"unsent: only the job's state tells", Unsent, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Start(t)
			s.Token = "pat"
			box := &inbox{}
			s.AddHook(loopHook, 12, "s3cret", box.target)
			s.SendJobEvents(loopHook, 10*time.Millisecond)
			s.DropNextCompleted(1, tc.mode)
			for _, name := range []string{"rh-1", "rh-2"} {
				encoded, _ := jit(t, s, name, "linux")
				connect(t, s, fakejit.ConnectPath, encoded)
			}
			s.QueueJob("octo/app", Job{ID: 1, Labels: []string{"linux"}})
			waitFor(t, "job 1 to complete", func() bool { j, _ := s.JobState("octo/app", 1); return j.Status == "completed" })
			s.QueueJob("octo/app", Job{ID: 2, Labels: []string{"linux"}, CreatedAt: time.Now().Add(time.Second)})
			waitFor(t, "job 2's completed", func() bool { return slices.Contains(box.actions(), "completed 2 rh-2") })
			if slices.Contains(box.actions(), "completed 1 rh-1") {
				t.Fatalf("the dropped completed arrived: %v", box.actions())
			}
			status, body := call(t, s, "GET", "/repos/octo/app/hooks/12/deliveries?status=failure", "")
			var failed []struct {
				ID     int64  `json:"id"`
				Action string `json:"action"`
				Status string `json:"status"`
			}
			if err := json.Unmarshal(body, &failed); status != http.StatusOK || err != nil {
				t.Fatalf("failed deliveries: %d %s", status, body)
			}
			if tc.logged == "" {
				if len(failed) != 0 {
					t.Fatalf("an unsent delivery is logged: %s", body)
				}
				return
			}
			if len(failed) != 1 || failed[0].Action != "completed" || failed[0].Status != tc.logged {
				t.Fatalf("failed deliveries %s, want the completed of job 1", body)
			}
			if status, body := call(t, s, "POST", "/repos/octo/app/hooks/12/deliveries/"+jsonNumber(failed[0].ID)+"/attempts", ""); status != http.StatusAccepted {
				t.Fatalf("redelivery: %d %s", status, body)
			}
			if !slices.Contains(box.actions(), "completed 1 rh-1") {
				t.Fatalf("the redelivered completed did not arrive: %v", box.actions())
			}
		})
	}
}
