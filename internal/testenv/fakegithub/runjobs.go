package fakegithub

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/runnerhub/webhooks/internal/testenv/fakegithub/fakejit"
	"github.com/runnerhub/webhooks/testdata"
)

// jobEvents is how the fake runs jobs once SendJobEvents has turned it on.
type jobEvents struct {
	hook    string
	runTime time.Duration
	// dropCompleted more completed deliveries go as dropMode says, not delivered.
	dropCompleted int
	dropMode      Mode
}

// SendJobEvents makes the fake run jobs as GitHub does: a queued job (PutJob, QueueJob)
// goes to an online, idle runner of a scope that covers its repository and whose labels
// include all of the job's (case-insensitively); the job's in_progress is then delivered
// through hook, and runTime later its completed, after which an ephemeral runner is
// removed. Without it, jobs stay as PutJob leaves them.
func (s *Server) SendJobEvents(hook string, runTime time.Duration) {
	s.t.Helper()
	if s.hookNamed(hook) == nil {
		s.t.Fatalf("fakegithub: SendJobEvents: no hook %q", hook)
	}
	s.mu.Lock()
	s.events = &jobEvents{hook: hook, runTime: runTime}
	runs := s.assignLocked()
	s.mu.Unlock()
	s.startRuns(runs)
}

// DropNextCompleted makes the next n completed deliveries fail: with Dropped they are
// logged as failed attempts (so redelivery can recover them), with Unsent they are not
// logged at all (only the job's REST state says it completed).
func (s *Server) DropNextCompleted(n int, mode Mode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.events == nil {
		s.t.Errorf("fakegithub: DropNextCompleted before SendJobEvents")
		return
	}
	s.events.dropCompleted, s.events.dropMode = n, mode
}

// QueueJob stores job j of repository as queued, delivers its queued through the hook of
// SendJobEvents and only then offers it to the runners. It returns the delivery's GUID.
func (s *Server) QueueJob(repository string, j Job) string {
	s.t.Helper()
	j.Status = "queued"
	s.mu.Lock()
	ev := s.events
	s.mu.Unlock()
	if ev == nil {
		s.t.Fatalf("fakegithub: QueueJob before SendJobEvents")
	}
	if j.CreatedAt.IsZero() {
		j.CreatedAt = time.Now()
	}
	s.putJob(repository, j, false)
	payload, err := jobPayload(repository, j)
	if err != nil {
		s.t.Fatalf("fakegithub: %v", err)
	}
	guid := s.Deliver(ev.hook, "workflow_job", payload, Delivered)
	s.mu.Lock()
	runs := s.assignLocked()
	s.mu.Unlock()
	s.startRuns(runs)
	return guid
}

// RunnerInfo is a runner as GitHub holds it.
type RunnerInfo struct {
	ID        int64
	Name      string
	Status    string // online or offline
	Busy      bool
	Ephemeral bool
}

// Runners lists the runners registered in scope.
func (s *Server) Runners(scope string) []RunnerInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RunnerInfo, 0, len(s.runners[scope]))
	for _, r := range s.runners[scope] {
		out = append(out, RunnerInfo{ID: r.ID, Name: r.Name, Status: r.Status, Busy: r.Busy, Ephemeral: r.ephemeral})
	}
	return out
}

// run is one job given to one runner.
type run struct {
	repository string
	job        Job // as it went in_progress
	runner     *runner
	events     jobEvents
}

// assignLocked gives queued jobs, oldest first, to the runners that can take them and
// returns the runs to start (after unlocking). s.mu is held.
func (s *Server) assignLocked() []run {
	if s.events == nil {
		return nil
	}
	type waiting struct {
		repository string
		job        *Job
	}
	var queue []waiting
	for repo, jobs := range s.jobs {
		for _, j := range jobs {
			if j.Status == "queued" {
				queue = append(queue, waiting{repo, j})
			}
		}
	}
	slices.SortFunc(queue, func(a, b waiting) int {
		return cmp.Or(a.job.CreatedAt.Compare(b.job.CreatedAt), cmp.Compare(a.job.ID, b.job.ID))
	})
	var runs []run
	for _, w := range queue {
		r := s.idleRunnerLocked(w.repository, w.job.Labels)
		if r == nil {
			continue
		}
		now := time.Now()
		w.job.Status, w.job.StartedAt, w.job.RunnerID, w.job.RunnerName = "in_progress", now, r.ID, r.Name
		r.Busy, r.jobRepo, r.jobID = true, w.repository, w.job.ID
		runs = append(runs, run{repository: w.repository, job: *w.job, runner: r, events: *s.events})
	}
	return runs
}

// idleRunnerLocked finds an online, idle runner of a scope covering repository whose
// labels include every one of labels.
func (s *Server) idleRunnerLocked(repository string, labels []string) *runner {
	owner, _, _ := strings.Cut(repository, "/")
	for _, scope := range []string{"repo/" + repository, "org/" + owner} {
		for _, r := range s.runners[scope] {
			if r.Status == "online" && !r.Busy && fits(r.Labels, labels) {
				return r
			}
		}
	}
	return nil
}

func fits(runnerLabels, jobLabels []string) bool {
	for _, l := range jobLabels {
		if !slices.ContainsFunc(runnerLabels, func(r string) bool { return strings.EqualFold(r, l) }) {
			return false
		}
	}
	return true
}

// startRuns runs each of runs in its own goroutine, unless the test is ending.
func (s *Server) startRuns(runs []run) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.stop:
		return
	default:
	}
	for _, r := range runs {
		s.wg.Go(func() { s.run(r) })
	}
}

// run delivers the job's in_progress, waits its run time, completes it and delivers its
// completed (or drops it, as DropNextCompleted asked).
func (s *Server) run(r run) {
	s.deliverJob(r.events.hook, r.repository, r.job, Delivered)
	select {
	case <-time.After(r.events.runTime):
	case <-s.stop:
		return
	}
	s.mu.Lock()
	j := s.jobs[r.repository][r.job.ID]
	if j != nil && j.Status == "in_progress" {
		j.Status, j.Conclusion, j.CompletedAt = "completed", "success", time.Now()
	}
	r.runner.Busy, r.runner.jobRepo, r.runner.jobID = false, "", 0
	if r.runner.ephemeral {
		s.removeRunnerLocked(r.runner)
	}
	mode := Delivered
	if s.events.dropCompleted > 0 {
		s.events.dropCompleted--
		mode = s.events.dropMode
	}
	var done *Job
	if j != nil {
		snapshot := *j
		done = &snapshot
	}
	runs := s.assignLocked()
	s.mu.Unlock()
	s.startRuns(runs)
	if done != nil {
		s.deliverJob(r.events.hook, r.repository, *done, mode)
	}
}

// removeRunnerLocked deregisters r, wherever it is registered.
func (s *Server) removeRunnerLocked(r *runner) {
	for scope, list := range s.runners {
		s.runners[scope] = slices.DeleteFunc(list, func(x *runner) bool { return x == r })
	}
}

// deliverJob sends the workflow_job delivery of j's status through hook.
func (s *Server) deliverJob(hook, repository string, j Job, mode Mode) {
	payload, err := jobPayload(repository, j)
	if err != nil {
		s.violation("fakegithub: %v", err)
		return
	}
	s.attempt(hook, newGUID(), "workflow_job", payload, false, mode, time.Now())
}

// jobPayload is the workflow_job delivery of j's status: a real delivery of that action
// from testdata, with the job's REST representation as its workflow_job (as GitHub's
// deliveries have) and the repository renamed.
func jobPayload(repository string, j Job) ([]byte, error) {
	raw, err := testdata.Payloads.ReadFile("workflow_job." + j.Status + ".json")
	if err != nil {
		return nil, err
	}
	var p map[string]any
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, err
	}
	owner, name, _ := strings.Cut(repository, "/")
	repo, ok := p["repository"].(map[string]any)
	if !ok {
		return nil, errors.New("payload template without a repository")
	}
	repo["full_name"], repo["name"] = repository, name
	if o, ok := repo["owner"].(map[string]any); ok {
		o["login"] = owner
	}
	p["action"], p["workflow_job"] = j.Status, jobDoc(repository, j)
	return json.Marshal(p)
}

// fakeRoutes serve the endpoints outside GitHub's API through which runners started
// from a JIT configuration connect (fakejit).
func (s *Server) fakeRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+fakejit.ConnectPath, func(w http.ResponseWriter, r *http.Request) {
		s.session(w, r, true)
	})
	mux.HandleFunc("POST "+fakejit.DisconnectPath, func(w http.ResponseWriter, r *http.Request) {
		s.session(w, r, false)
	})
}

// session makes the runner of the request's JIT configuration online or offline.
func (s *Server) session(w http.ResponseWriter, r *http.Request, online bool) {
	rec := &recorder{header: http.Header{}}
	defer func() {
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
	}()
	var req fakejit.ConnectRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		rec.fail(http.StatusBadRequest, "body is not {\"encoded_jit_config\": ...}")
		return
	}
	cfg, err := fakejit.Decode(req.EncodedJITConfig)
	if err != nil {
		rec.fail(http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	i := slices.IndexFunc(s.runners[cfg.Scope], func(x *runner) bool { return x.ID == cfg.RunnerID })
	var rn *runner
	if i >= 0 {
		rn = s.runners[cfg.Scope][i]
	}
	switch {
	case rn == nil:
		s.mu.Unlock()
		rec.fail(http.StatusNotFound, "runner is not registered")
		return
	case rn.secret == "" || rn.secret != cfg.Secret:
		s.mu.Unlock()
		rec.fail(http.StatusUnauthorized, "Bad credentials")
		return
	}
	rn.Status = map[bool]string{true: "online", false: "offline"}[online]
	var runs []run
	if online {
		runs = s.assignLocked()
	}
	answer := fakejit.ConnectAnswer{RunnerID: rn.ID, Name: rn.Name, Busy: rn.Busy, JobID: rn.jobID}
	s.mu.Unlock()
	s.startRuns(runs)
	rec.json(http.StatusOK, answer)
}
