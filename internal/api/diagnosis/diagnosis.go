// Package diagnosis answers GET /api/jobs/{id}/diagnosis: why is this job waiting? One
// document holds the job's labels against every pool and every runner of the pools that
// fit, the scale-up demand and when it went out, the deliveries RunnerHub recorded for
// the job and their outcomes, and, when GitHub credentials allow, GitHub's current view
// of the job and of its deliveries in the watched hooks' logs.
package diagnosis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v88/github"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/github"
	"github.com/runnerhub/webhooks/internal/httpapi"
	"github.com/runnerhub/webhooks/internal/httpjson"
	"github.com/runnerhub/webhooks/internal/jobs"
)

// GitHub is what the diagnosis asks GitHub; *github.Client implements it.
type GitHub interface {
	Job(ctx context.Context, owner, repo string, id int64) (*gh.WorkflowJob, error)
	ListDeliveries(ctx context.Context, hook github.Hook, cursor string, perPage int) ([]github.Delivery, string, error)
}

// Deps are what the endpoint reads.
type Deps struct {
	Engine *jobs.Engine
	Lister delivery.Lister
	// GitHub and Hooks are nil and empty without GitHub credentials: the document then
	// says GitHub's view is unavailable.
	GitHub       GitHub
	Hooks        []github.Hook
	OfflineAfter time.Duration
	// ResendAfter is how long a waiting job's demand waits before it is sent again.
	ResendAfter time.Duration
	Log         *slog.Logger
	Now         func() time.Time
}

// Routes returns the endpoint.
func Routes(d Deps) []httpapi.Route {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.OfflineAfter <= 0 {
		d.OfflineAfter = jobs.DefaultOfflineAfter
	}
	if d.ResendAfter <= 0 {
		d.ResendAfter = jobs.DefaultResendAfter
	}
	return []httpapi.Route{{Method: http.MethodGet, Pattern: "/api/jobs/{id}/diagnosis",
		Handler: httpjson.Endpoint(httpjson.Internal(d.Log), d.diagnose)}}
}

// Diagnosis is the answer.
type Diagnosis struct {
	Job        JobView        `json:"job"`
	Summary    string         `json:"summary"`
	Pools      []PoolFit      `json:"pools"`
	Demand     *Demand        `json:"demand"`
	Deliveries []DeliveryView `json:"deliveries"`
	GitHub     GitHubView     `json:"github"`
}

// JobView is the job as RunnerHub holds it.
type JobView struct {
	ID             int64     `json:"id"`
	Repository     string    `json:"repository"`
	Name           string    `json:"name"`
	Labels         []string  `json:"labels"`
	Status         string    `json:"status"`
	Allocation     string    `json:"allocation"`
	Pool           string    `json:"pool,omitempty"`
	ReservedRunner string    `json:"reservedRunner,omitempty"`
	RunnerName     string    `json:"runnerName,omitempty"`
	StatusSince    time.Time `json:"statusSince"`
}

// PoolFit is the job's labels against one pool.
type PoolFit struct {
	Name    string   `json:"name"`
	Labels  []string `json:"labels"`
	Fits    bool     `json:"fits"`
	Missing []string `json:"missing"` // job labels the pool lacks
	// Runners are the pool's runners (fitting pools only), at most maxRunnersShown.
	Runners          []RunnerFit `json:"runners,omitempty"`
	RunnersTruncated bool        `json:"runnersTruncated,omitempty"`
}

// RunnerFit says whether one runner can take the job now, and why (not).
type RunnerFit struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Fits     bool   `json:"fits"`
	CanTake  bool   `json:"canTake"`
	Reason   string `json:"reason"`
	LastSeen string `json:"lastSeen,omitempty"`
}

// Demand is the scale-up demand of a job waiting in a pool's queue.
type Demand struct {
	Pool string `json:"pool"`
	// SentAt is when the job was queued without a runner: its demand went out then, and
	// goes again every ResendEvery while it waits.
	SentAt      time.Time `json:"sentAt"`
	ResendEvery string    `json:"resendEvery"`
}

// DeliveryView is one delivery RunnerHub recorded for the job.
type DeliveryView struct {
	HookID         string    `json:"hookId"`
	DeliveryID     string    `json:"deliveryId"`
	Action         string    `json:"action"`
	ReceivedAt     time.Time `json:"receivedAt"`
	State          string    `json:"state"`
	Outcome        string    `json:"outcome,omitempty"`
	Reconciliation bool      `json:"reconciliation"`
}

// GitHubView is GitHub's side, when it could be asked.
type GitHubView struct {
	Available  bool                  `json:"available"`
	Reason     string                `json:"reason,omitempty"`
	Job        *GitHubJob            `json:"job,omitempty"`
	Deliveries []GitHubDeliveryEntry `json:"deliveries,omitempty"`
}

// GitHubJob is GitHub's current view of the job.
type GitHubJob struct {
	Status      string     `json:"status"`
	Conclusion  string     `json:"conclusion,omitempty"`
	RunnerName  string     `json:"runnerName,omitempty"`
	CreatedAt   *time.Time `json:"createdAt,omitempty"`
	StartedAt   *time.Time `json:"startedAt,omitempty"`
	CompletedAt *time.Time `json:"completedAt,omitempty"`
}

// GitHubDeliveryEntry is one attempt in a hook's log of a delivery the job had.
type GitHubDeliveryEntry struct {
	Hook        string    `json:"hook"`
	GUID        string    `json:"guid"`
	ID          int64     `json:"id"`
	DeliveredAt time.Time `json:"deliveredAt"`
	StatusCode  int       `json:"statusCode"`
	Status      string    `json:"status"`
	Redelivery  bool      `json:"redelivery"`
}

const (
	maxRunnersShown  = 100
	maxDeliveryPages = 5
	githubTimeout    = 5 * time.Second
)

func (d Deps) diagnose(r *http.Request) (int, any, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, nil, httpjson.BadRequest("invalid_parameter", "id must be a GitHub job id (a positive whole number), not "+strconv.Quote(httpjson.Clip(r.PathValue("id"))))
	}
	ctx := r.Context()
	j, err := d.Engine.Store.Job(ctx, id)
	if errors.Is(err, jobs.ErrNotFound) {
		return 0, nil, httpjson.NewProblem(http.StatusNotFound, "not_found", "job "+strconv.FormatInt(id, 10)+" does not exist")
	}
	if err != nil {
		return 0, nil, err
	}
	now := d.Now().UTC()
	out := Diagnosis{
		Job: JobView{ID: j.ID, Repository: j.Repository, Name: j.Name, Labels: nonNil(j.Labels), Status: string(j.Status),
			Allocation: string(j.Allocation), Pool: j.Pool, ReservedRunner: j.ReservedRunner, RunnerName: j.RunnerName, StatusSince: j.StatusSince()},
		Pools: []PoolFit{}, Deliveries: []DeliveryView{},
	}
	if out.Pools, err = d.pools(ctx, j, now); err != nil {
		return 0, nil, err
	}
	if j.Allocation == jobs.AllocationPending && j.Pool != "" {
		out.Demand = &Demand{Pool: j.Pool, SentAt: j.QueuedAt, ResendEvery: d.ResendAfter.String()}
	}
	if out.Deliveries, err = d.deliveries(ctx, j, now); err != nil {
		return 0, nil, err
	}
	out.GitHub = d.github(ctx, j)
	out.Summary = summary(j, out.Pools)
	return http.StatusOK, out, nil
}

func (d Deps) pools(ctx context.Context, j *jobs.Job, now time.Time) ([]PoolFit, error) {
	pools, err := d.Engine.AllPools(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]PoolFit, 0, len(pools))
	for _, p := range pools {
		fit := PoolFit{Name: p.Name, Labels: nonNil(p.Labels), Missing: missing(j.Labels, p.Labels)}
		fit.Fits = len(fit.Missing) == 0
		if fit.Fits {
			runners, next, err := d.Engine.Store.ListRunners(ctx, p.Name, "", maxRunnersShown)
			if err != nil {
				return nil, err
			}
			fit.RunnersTruncated = next != ""
			for _, r := range runners {
				fit.Runners = append(fit.Runners, d.runnerFit(j, p, r, now))
			}
		}
		out = append(out, fit)
	}
	return out, nil
}

func (d Deps) runnerFit(j *jobs.Job, p jobs.Pool, r *jobs.Runner, now time.Time) RunnerFit {
	f := RunnerFit{Name: r.Name, State: string(r.State), Fits: jobs.Fits(j.Labels, slices.Concat(p.Labels, r.Labels))}
	if !r.LastSeen.IsZero() {
		f.LastSeen = r.LastSeen.UTC().Format(time.RFC3339)
	}
	switch {
	case !f.Fits:
		f.Reason = "lacks " + strings.Join(missing(j.Labels, slices.Concat(p.Labels, r.Labels)), ", ")
	case r.Offline(now, d.OfflineAfter):
		f.Reason = fmt.Sprintf("offline: not seen for over %s", d.OfflineAfter)
	case r.JobID == j.ID:
		f.Reason = "holds this job (" + string(r.State) + ")"
	case r.State == jobs.RunnerIdle:
		f.CanTake, f.Reason = true, "idle: can take it"
	case r.JobID != 0:
		f.Reason = fmt.Sprintf("%s with job %d", r.State, r.JobID)
	default:
		f.Reason = string(r.State)
	}
	return f
}

// deliveries finds the job's recorded deliveries (ids on the job record) among the
// repository's workflow_job deliveries since the job was created.
func (d Deps) deliveries(ctx context.Context, j *jobs.Job, now time.Time) ([]DeliveryView, error) {
	out := []DeliveryView{}
	if len(j.Deliveries) == 0 || j.Repository == "" {
		return out, nil
	}
	since := j.CreatedAt
	if since.IsZero() || now.Sub(since) > 30*24*time.Hour {
		since = now.Add(-30 * 24 * time.Hour)
	}
	q := delivery.ListQuery{Filter: delivery.Filter{Repository: j.Repository, Event: "workflow_job"},
		Since: since.Add(-time.Hour), Until: now.Add(time.Minute), Limit: 100}
	want := len(j.Deliveries)
	for range maxDeliveryPages {
		page, err := d.Lister.List(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, rec := range page.Records {
			if slices.Contains(j.Deliveries, rec.DeliveryID) {
				out = append(out, DeliveryView{HookID: rec.HookID, DeliveryID: rec.DeliveryID, Action: rec.Action, ReceivedAt: rec.ReceivedAt,
					State: string(rec.State), Outcome: rec.Outcome, Reconciliation: rec.HookID == "reconcile"})
			}
		}
		if len(out) >= want || page.Next == nil {
			break
		}
		q.After = page.Next
	}
	slices.SortFunc(out, func(a, b DeliveryView) int { return a.ReceivedAt.Compare(b.ReceivedAt) })
	return out, nil
}

func (d Deps) github(ctx context.Context, j *jobs.Job) GitHubView {
	if d.GitHub == nil {
		return GitHubView{Reason: "no GitHub credentials configured"}
	}
	ctx, cancel := context.WithTimeout(ctx, githubTimeout)
	defer cancel()
	owner, repo, ok := strings.Cut(j.Repository, "/")
	if !ok {
		return GitHubView{Reason: "the job has no repository"}
	}
	v := GitHubView{Available: true}
	theirs, err := d.GitHub.Job(ctx, owner, repo, j.ID)
	switch {
	case errors.Is(err, github.ErrNotFound):
		v.Reason = "GitHub answers 404 for the job: its run or repository is gone"
	case err != nil:
		return GitHubView{Reason: "GitHub could not be asked: " + err.Error()}
	default:
		v.Job = &GitHubJob{Status: theirs.GetStatus(), Conclusion: theirs.GetConclusion(), RunnerName: theirs.GetRunnerName(),
			CreatedAt: stamp(theirs.CreatedAt), StartedAt: stamp(theirs.StartedAt), CompletedAt: stamp(theirs.CompletedAt)}
	}
	for _, h := range d.Hooks {
		items, _, err := d.GitHub.ListDeliveries(ctx, h, "", github.MaxDeliveriesPerPage)
		if err != nil {
			d.Log.WarnContext(ctx, "diagnosis: reading a hook's log failed", "hook", h.String(), "error", err)
			continue
		}
		for _, it := range items {
			if slices.Contains(j.Deliveries, it.GUID) {
				v.Deliveries = append(v.Deliveries, GitHubDeliveryEntry{Hook: h.String(), GUID: it.GUID, ID: it.ID,
					DeliveredAt: it.DeliveredAt, StatusCode: it.StatusCode, Status: it.Status, Redelivery: it.Redelivery})
			}
		}
	}
	return v
}

// summary says in one sentence why the job is where it is.
func summary(j *jobs.Job, pools []PoolFit) string {
	fitting := slices.IndexFunc(pools, func(p PoolFit) bool { return p.Fits }) >= 0
	switch {
	case j.Status == jobs.StatusCompleted:
		return "finished (" + cmpOr(j.Conclusion, "no conclusion") + ")"
	case j.Status == jobs.StatusInProgress:
		return "running on runner " + cmpOr(j.RunnerName, "(unknown)")
	case j.Status == jobs.StatusWaiting:
		return "waiting on GitHub (an environment's protection rule or a concurrency group): not queued yet"
	case !fitting:
		return "no pool fits the labels " + strings.Join(j.Labels, ", ") + ": add a pool with them (RUNNERHUB_POOLS or PUT /api/pools/{name})"
	case j.Allocation == jobs.AllocationReserved:
		return "runner " + j.ReservedRunner + " is reserved for it: waiting for GitHub to start the job there"
	case j.Allocation == jobs.AllocationPending:
		for _, p := range pools {
			if p.Name == j.Pool {
				idle := slices.IndexFunc(p.Runners, func(r RunnerFit) bool { return r.CanTake }) >= 0
				if idle {
					return "in pool " + p.Name + "'s queue while a runner fitting it is idle: it will be matched on that runner's next heartbeat or release"
				}
			}
		}
		return "in pool " + j.Pool + "'s queue: no runner of the pool can take it now; its scale-up demand was sent"
	}
	return "queued"
}

func missing(want, have []string) []string {
	out := []string{}
	for _, l := range want {
		if !jobs.Fits([]string{l}, have) {
			out = append(out, l)
		}
	}
	return out
}

func stamp(t *gh.Timestamp) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	v := t.UTC()
	return &v
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func cmpOr(v, fallback string) string {
	if v == "" {
		return fallback
	}
	return v
}
