package fakegithub

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/runnerhub/webhooks/internal/testenv/fakegithub/fakejit"
)

func (s *Server) routes(mux *http.ServeMux) {
	s.installationRoutes(mux)
	s.hookRoutes(mux)
	s.jobRoutes(mux)
	s.runnerRoutes(mux)
	s.registrationRoutes(mux)
	s.fakeRoutes(mux)
}

// Job is GitHub's view of a workflow job, as PutJob stores it.
type Job struct {
	ID          int64
	RunID       int64
	Name        string
	Status      string // queued, in_progress, completed...
	Conclusion  string
	Labels      []string
	CreatedAt   time.Time
	StartedAt   time.Time
	CompletedAt time.Time
	RunnerID    int64
	RunnerName  string
}

// PutJob stores (or replaces) job j of repository (owner/name). Once SendJobEvents is
// set, a queued job waits for a connected runner that fits it, as on GitHub.
func (s *Server) PutJob(repository string, j Job) { s.putJob(repository, j, true) }

// putJob stores j, and offers it to the runners when assign is set.
func (s *Server) putJob(repository string, j Job, assign bool) {
	if j.CreatedAt.IsZero() {
		j.CreatedAt = time.Now().Add(-time.Hour)
	}
	if j.StartedAt.IsZero() {
		j.StartedAt = j.CreatedAt
	}
	s.mu.Lock()
	if s.jobs[repository] == nil {
		s.jobs[repository] = map[int64]*Job{}
	}
	s.jobs[repository][j.ID] = &j
	var runs []run
	if assign {
		runs = s.assignLocked()
	}
	s.mu.Unlock()
	s.startRuns(runs)
}

// JobState returns GitHub's view of a job of repository.
func (s *Server) JobState(repository string, id int64) (Job, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[repository][id]
	if !ok {
		return Job{}, false
	}
	return *j, true
}

// jobDoc is job j of repository as the REST API answers it, which is also the
// workflow_job object of its webhook deliveries.
func jobDoc(repository string, j Job) map[string]any {
	opt := func(ok bool, v any) any {
		if !ok {
			return nil
		}
		return v
	}
	base := "https://api.github.com/repos/" + repository
	return map[string]any{
		"id": j.ID, "run_id": j.RunID, "run_attempt": 1, "node_id": "CR_fake" + strconv.FormatInt(j.ID, 10),
		"run_url": base + "/actions/runs/" + strconv.FormatInt(j.RunID, 10),
		"url":     base + "/actions/jobs/" + strconv.FormatInt(j.ID, 10), "html_url": "https://github.com/" + repository + "/actions/runs/" + strconv.FormatInt(j.RunID, 10) + "/job/" + strconv.FormatInt(j.ID, 10),
		"check_run_url": base + "/check-runs/" + strconv.FormatInt(j.ID, 10),
		"head_sha":      "d6fde92930d4715a2b49857d24b940956b26d2d3", "head_branch": "main", "workflow_name": "CI",
		"name": j.Name, "status": j.Status, "conclusion": opt(j.Conclusion != "", j.Conclusion),
		"created_at": timestamp(j.CreatedAt), "started_at": timestamp(j.StartedAt),
		"completed_at": opt(!j.CompletedAt.IsZero(), timestamp(j.CompletedAt)),
		"labels":       j.Labels, "steps": []any{},
		"runner_id": opt(j.RunnerID != 0, j.RunnerID), "runner_name": opt(j.RunnerName != "", j.RunnerName),
		"runner_group_id": opt(j.RunnerID != 0, 1), "runner_group_name": opt(j.RunnerID != 0, "Default"),
	}
}

// DeleteJob forgets a job: GitHub answers 404 for it from then on.
func (s *Server) DeleteJob(repository string, id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.jobs[repository], id)
}

func (s *Server) jobRoutes(mux *http.ServeMux) {
	s.route(mux, "GET", "/repos/{owner}/{repo}/actions/jobs/{job_id}", authToken, func(w *recorder, r *http.Request) {
		id, _ := pathInt(r, "job_id")
		repository := r.PathValue("owner") + "/" + r.PathValue("repo")
		j, ok := s.JobState(repository, id)
		if !ok {
			w.fail(http.StatusNotFound, "Not Found")
			return
		}
		w.json(http.StatusOK, jobDoc(repository, j))
	})
}

type runner struct {
	ID     int64
	Name   string
	OS     string
	Status string
	Busy   bool
	Labels []string
	// ephemeral runners (every JIT runner) take one job and are then removed.
	ephemeral bool
	// secret authenticates the runner's session (in its JIT configuration).
	secret string
	// job is the job the runner is running (repository and id), when Busy.
	jobRepo string
	jobID   int64
}

func (r *runner) doc() map[string]any {
	labels := []map[string]any{}
	for i, l := range r.Labels {
		kind := "custom"
		if l == "self-hosted" || l == "linux" || l == "x64" {
			kind = "read-only"
		}
		labels = append(labels, map[string]any{"id": i + 1, "name": l, "type": kind})
	}
	return map[string]any{"id": r.ID, "name": r.Name, "os": r.OS, "status": r.Status, "busy": r.Busy, "labels": labels, "ephemeral": r.ephemeral}
}

// AddRunner registers a runner in scope ("org/<org>" or "repo/<owner>/<name>") and
// returns its id.
func (s *Server) AddRunner(scope, name string, labels []string, status string, busy bool) int64 {
	r := &runner{ID: s.id(), Name: name, OS: "Linux", Status: status, Busy: busy, Labels: labels}
	s.mu.Lock()
	s.runners[scope] = append(s.runners[scope], r)
	runs := s.assignLocked()
	s.mu.Unlock()
	s.startRuns(runs)
	return r.ID
}

// RunnerNames lists the runners registered in scope.
func (s *Server) RunnerNames(scope string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for _, r := range s.runners[scope] {
		names = append(names, r.Name)
	}
	return names
}

func (s *Server) runnerRoutes(mux *http.ServeMux) {
	levels := []struct {
		prefix string
		scope  func(r *http.Request) string
	}{
		{"/repos/{owner}/{repo}/actions/runners", func(r *http.Request) string {
			return "repo/" + r.PathValue("owner") + "/" + r.PathValue("repo")
		}},
		{"/orgs/{org}/actions/runners", func(r *http.Request) string { return "org/" + r.PathValue("org") }},
	}
	for _, l := range levels {
		s.route(mux, "GET", l.prefix, authToken, func(w *recorder, r *http.Request) { s.listRunners(w, r, l.scope(r), l.prefix) })
		s.route(mux, "DELETE", l.prefix+"/{runner_id}", authToken, func(w *recorder, r *http.Request) {
			id, _ := pathInt(r, "runner_id")
			scope := l.scope(r)
			s.mu.Lock()
			defer s.mu.Unlock()
			i := slices.IndexFunc(s.runners[scope], func(x *runner) bool { return x.ID == id })
			if i < 0 {
				w.fail(http.StatusNotFound, "Not Found")
				return
			}
			if rn := s.runners[scope][i]; rn.Busy {
				w.json(http.StatusUnprocessableEntity, map[string]any{"message": "Bad request - Runner \"" + rn.Name + "\" is still running a job", "documentation_url": "https://docs.github.com/rest"})
				return
			}
			s.runners[scope] = slices.Delete(s.runners[scope], i, i+1)
			w.noContent()
		})
		s.route(mux, "POST", l.prefix+"/generate-jitconfig", authToken, func(w *recorder, r *http.Request) { s.generateJITConfig(w, r, l.scope(r)) })
	}
}

// generateJITConfig registers an offline, ephemeral runner, as GitHub does, and answers
// its configuration (fakejit.Config, with a fresh secret for its session).
func (s *Server) generateJITConfig(w *recorder, r *http.Request, scope string) {
	var req struct {
		Name   string   `json:"name"`
		Labels []string `json:"labels"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Name == "" || len(req.Labels) == 0 {
		w.json(http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed", "documentation_url": "https://docs.github.com/rest"})
		return
	}
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	rn := &runner{ID: s.id(), Name: req.Name, OS: "Linux", Status: "offline", Labels: append([]string{"self-hosted"}, req.Labels...),
		ephemeral: true, secret: hex.EncodeToString(secret)}
	doc := rn.doc() // before the runner is shared
	s.mu.Lock()
	taken := slices.ContainsFunc(s.runners[scope], func(x *runner) bool { return x.Name == rn.Name })
	if !taken {
		s.runners[scope] = append(s.runners[scope], rn)
	}
	s.mu.Unlock()
	if taken {
		w.fail(http.StatusConflict, "Already exists - A runner with the name "+rn.Name+" already exists.")
		return
	}
	cfg := fakejit.Encode(fakejit.Config{RunnerID: rn.ID, Name: rn.Name, Labels: rn.Labels, Scope: scope, URL: s.URL, Secret: rn.secret})
	w.json(http.StatusCreated, map[string]any{"runner": doc, "encoded_jit_config": cfg})
}

// registrationRoutes mints config.sh registration tokens (organization level only, as
// in the description).
func (s *Server) registrationRoutes(mux *http.ServeMux) {
	s.route(mux, "POST", "/orgs/{org}/actions/runners/registration-token", authToken, func(w *recorder, r *http.Request) {
		w.json(http.StatusCreated, map[string]any{"token": "AABF3JGZDX3P5PMEXLND6TS6FCWO6", "expires_at": timestamp(time.Now().Add(time.Hour))})
	})
}

func (s *Server) listRunners(w *recorder, r *http.Request, scope, prefix string) {
	q := r.URL.Query()
	perPage, page := 30, 1
	if n, err := strconv.Atoi(q.Get("per_page")); err == nil && n > 0 && n <= 100 {
		perPage = n
	}
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 0 {
		page = n
	}
	// Rendered under the lock: job runs change runners meanwhile.
	s.mu.Lock()
	all := s.runners[scope]
	start := min((page-1)*perPage, len(all))
	end := min(start+perPage, len(all))
	docs := []map[string]any{}
	for _, rn := range all[start:end] {
		docs = append(docs, rn.doc())
	}
	total := len(all)
	s.mu.Unlock()
	if end < total {
		next := *r.URL
		nq := next.Query()
		nq.Set("per_page", strconv.Itoa(perPage))
		nq.Set("page", strconv.Itoa(page+1))
		next.RawQuery = nq.Encode()
		w.header.Set("Link", `<`+s.URL+next.RequestURI()+`>; rel="next"`)
	}
	_ = prefix
	w.json(http.StatusOK, map[string]any{"total_count": total, "runners": docs})
}
