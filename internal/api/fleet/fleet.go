// Package fleet is the management API of jobs, runners and pools:
//
//	GET    /api/jobs                       jobs by status, repository and pool, a page at a time
//	GET    /api/jobs/{id}                  one job (GitHub's job id)
//	GET    /api/runners/pool/status        every pool's runners, queue and demand
//	GET    /api/runners                    runners, of one pool or all, a page at a time
//	POST   /api/runners                    register a runner; it takes the next fitting pending job
//	GET    /api/runners/{name}             one runner
//	DELETE /api/runners/{name}             retire a runner; a job reserved for it goes back to pending
//	POST   /api/runners/{name}/heartbeat   the runner is alive (and, if idle, free for a job)
//	GET    /api/pools                      configured pools and those created here
//	GET    /api/pools/{name}               one pool
//	PUT    /api/pools/{name}               create or replace a pool
//	DELETE /api/pools/{name}               delete a pool created here
//
// Every answer is {"success": true, "data": ...} or the httpjson failure envelope, and
// every endpoint needs the API token (the routes are not public). Runner changes go
// through the job engine and commit as one version-checked change, as deliveries do, so
// they are race-free against the processor. Listings read a bounded number of index
// entries per page, whatever the number of jobs (jobs.ListJobsIndexed).
package fleet

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/runnerhub/webhooks/internal/httpapi"
	"github.com/runnerhub/webhooks/internal/httpjson"
	"github.com/runnerhub/webhooks/internal/jobs"
)

// Deps are what the endpoints use.
type Deps struct {
	// Engine holds the store, the configured pools (RUNNERHUB_POOLS) and the priority
	// step (which places a job that goes back to the queue). Its subscribers hear of each
	// runner operation once committed: they send its demands, log it, announce it.
	Engine *jobs.Engine
	// OfflineAfter is how long a runner may go without a heartbeat before it counts as
	// offline (RUNNERHUB_RUNNER_OFFLINE_AFTER; jobs.DefaultOfflineAfter when zero).
	OfflineAfter time.Duration
	// PoolsSource names where the engine's configured pools came from (config's
	// PoolsSource: RUNNERHUB_POOLS or RUNNERHUB_POOLS_FILE <path>), for the messages that
	// send the caller there; RUNNERHUB_POOLS when empty.
	PoolsSource string
	// PoolChanged, when set, hears of every pool created, replaced or deleted here, once
	// stored, so that live views can announce it (live.Announcer.AnnouncePoolChanges).
	PoolChanged func(ctx context.Context, pool string)
	Log         *slog.Logger
	Now         func() time.Time // time.Now when nil
}

func (d Deps) withDefaults() Deps {
	if d.OfflineAfter <= 0 {
		d.OfflineAfter = jobs.DefaultOfflineAfter
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.PoolsSource == "" {
		d.PoolsSource = "RUNNERHUB_POOLS"
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return d
}

// PoolStatus is every pool's status now, as GET /api/runners/pool/status reports it; the
// pool gauges of /metrics sample it too.
func (d Deps) PoolStatus(ctx context.Context) ([]jobs.PoolStatus, error) {
	d = d.withDefaults()
	return d.Engine.PoolStatus(ctx, d.Now(), d.OfflineAfter)
}

// Routes returns the endpoints.
func Routes(d Deps) []httpapi.Route {
	h := &handlers{Deps: d.withDefaults()}
	route := func(method, pattern string, f func(r *http.Request) (int, any, error)) httpapi.Route {
		return httpapi.Route{Method: method, Pattern: pattern, Handler: httpjson.Endpoint(h.domainError, f)}
	}
	return []httpapi.Route{
		route(http.MethodGet, "/api/jobs", h.listJobs),
		route(http.MethodGet, "/api/jobs/{id}", h.getJob),
		route(http.MethodGet, "/api/runners/pool/status", h.poolStatus),
		route(http.MethodGet, "/api/runners", h.listRunners),
		route(http.MethodPost, "/api/runners", h.registerRunner),
		route(http.MethodGet, "/api/runners/{name}", h.getRunner),
		route(http.MethodDelete, "/api/runners/{name}", h.removeRunner),
		route(http.MethodPost, "/api/runners/{name}/heartbeat", h.heartbeat),
		route(http.MethodGet, "/api/pools", h.listPools),
		route(http.MethodGet, "/api/pools/{name}", h.getPool),
		route(http.MethodPut, "/api/pools/{name}", h.putPool),
		route(http.MethodDelete, "/api/pools/{name}", h.deletePool),
	}
}

type handlers struct{ Deps }

// domainError answers an error of the job engine or the store, any error a handler
// returns that is not a Problem. The store's own errors are logged, never shown (they may
// name tables or paths), and answered 503, as a retry may well succeed.
func (h *handlers) domainError(r *http.Request, err error) *httpjson.Problem {
	switch {
	case errors.Is(err, jobs.ErrInvalid):
		return httpjson.BadRequest("invalid_parameter", err.Error())
	case errors.Is(err, jobs.ErrConflict):
		// The engine retries conflicts itself: this one lasted through every attempt.
		return httpjson.NewProblem(http.StatusConflict, "conflict", "the runner or its job kept changing while this request was applied; try again")
	}
	h.Log.ErrorContext(r.Context(), "fleet request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	return httpjson.NewProblem(http.StatusServiceUnavailable, "unavailable", "the store is unavailable; try again later")
}

func notFound(what string) *httpjson.Problem {
	return httpjson.NewProblem(http.StatusNotFound, "not_found", what+" does not exist")
}
