package fleet

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/runnerhub/webhooks/internal/httpjson"
	"github.com/runnerhub/webhooks/internal/jobs"
)

// poolStatus answers GET /api/runners/pool/status.
func (h *handlers) poolStatus(r *http.Request) (int, any, error) {
	status, err := h.PoolStatus(r.Context())
	if err != nil {
		return 0, nil, err
	}
	views := make([]poolStatusView, len(status))
	for i, s := range status {
		views[i] = newPoolStatusView(s)
	}
	return http.StatusOK, struct {
		Pools               []poolStatusView `json:"pools"`
		OfflineAfterSeconds float64          `json:"offlineAfterSeconds"`
	}{views, h.OfflineAfter.Seconds()}, nil
}

// listRunners answers GET /api/runners?pool=&cursor=&limit=.
func (h *handlers) listRunners(r *http.Request) (int, any, error) {
	q := httpjson.NewQuery(r)
	pool := q.Check("pool", jobs.ValidatePoolName)
	cursor := q.Get("cursor")
	limit := q.Limit(defaultLimit, jobs.MaxListLimit)
	if err := q.Err(); err != nil {
		return 0, nil, err
	}
	list, next, err := h.Engine.Store.ListRunners(r.Context(), pool, cursor, limit)
	if errors.Is(err, jobs.ErrInvalid) {
		return 0, nil, httpjson.BadRequest("invalid_parameter", err.Error()) // the cursor: the rest is checked
	}
	if err != nil {
		return 0, nil, err
	}
	views := make([]runnerView, len(list))
	for i, rn := range list {
		views[i] = h.runnerView(rn)
	}
	return http.StatusOK, struct {
		Runners []runnerView `json:"runners"`
		page
	}{views, newPage(limit, next)}, nil
}

// registerRunner answers POST /api/runners {"name", "pool", "labels", "ephemeral"}.
func (h *handlers) registerRunner(r *http.Request) (int, any, error) {
	var body struct {
		Name      string   `json:"name"`
		Pool      string   `json:"pool"`
		Labels    []string `json:"labels"`
		Ephemeral bool     `json:"ephemeral"`
	}
	if err := decodeBody(r, &body, false); err != nil {
		return 0, nil, err
	}
	var missing []string
	if body.Name == "" {
		missing = append(missing, "name is required: the runner name GitHub reports in workflow_job.runner_name")
	}
	if body.Pool == "" {
		missing = append(missing, "pool is required")
	}
	if len(missing) > 0 {
		return 0, nil, httpjson.BadRequest("invalid_body", strings.Join(missing, "; "))
	}
	spec := jobs.RunnerSpec{Name: body.Name, Pool: body.Pool, Labels: body.Labels, Ephemeral: body.Ephemeral}
	rn, _, err := h.Engine.RegisterRunner(r.Context(), spec, h.Now())
	switch {
	case errors.Is(err, jobs.ErrInvalid):
		return 0, nil, httpjson.BadRequest("invalid_body", err.Error())
	case errors.Is(err, jobs.ErrUnknownPool):
		return 0, nil, httpjson.BadRequest("unknown_pool", err.Error()+": configure it (RUNNERHUB_POOLS) or create it with PUT /api/pools/"+body.Pool)
	case errors.Is(err, jobs.ErrPoolFull):
		return 0, nil, httpjson.NewProblem(http.StatusConflict, "pool_full", err.Error()+"; retire one (DELETE /api/runners/{name}) or raise maxRunners")
	case errors.Is(err, jobs.ErrExists):
		return 0, nil, httpjson.NewProblem(http.StatusConflict, "runner_exists", "runner "+body.Name+" is registered already; DELETE /api/runners/"+body.Name+" first")
	case err != nil:
		return 0, nil, err
	}
	return http.StatusCreated, h.runnerView(rn), nil
}

// getRunner answers GET /api/runners/{name}.
func (h *handlers) getRunner(r *http.Request) (int, any, error) {
	name, err := nameParam(r, jobs.ValidateRunnerName)
	if err != nil {
		return 0, nil, err
	}
	rn, err := h.Engine.Store.Runner(r.Context(), name)
	if errors.Is(err, jobs.ErrNotFound) {
		return 0, nil, notFound("runner " + name)
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, h.runnerView(rn), nil
}

// removeRunner answers DELETE /api/runners/{name} with the runner as it was: a job it
// was reserved for (state reserved, jobId) is back in its pool's queue; one it was
// running (busy) keeps its assignment.
func (h *handlers) removeRunner(r *http.Request) (int, any, error) {
	return h.changeRunner(r, h.Engine.RemoveRunner)
}

// heartbeat answers POST /api/runners/{name}/heartbeat (no body, or {}) with the runner,
// reserved for a job if it was idle and one was waiting.
func (h *handlers) heartbeat(r *http.Request) (int, any, error) {
	if err := decodeBody(r, &struct{}{}, true); err != nil {
		return 0, nil, err
	}
	return h.changeRunner(r, h.Engine.Heartbeat)
}

// changeRunner applies a fleet operation to the runner the path names.
func (h *handlers) changeRunner(r *http.Request, op func(ctx context.Context, name string, now time.Time) (*jobs.Runner, *jobs.Plan, error)) (int, any, error) {
	name, err := nameParam(r, jobs.ValidateRunnerName)
	if err != nil {
		return 0, nil, err
	}
	rn, _, err := op(r.Context(), name, h.Now())
	if errors.Is(err, jobs.ErrNotFound) {
		return 0, nil, notFound("runner " + name)
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, h.runnerView(rn), nil
}
