// Package deliveries is the management API of recorded webhook deliveries:
//
//	GET  /api/webhooks/events              list, newest first: filters, limit/offset, cursor
//	GET  /api/webhooks/events/{id}         one delivery with its payload
//	POST /api/webhooks/events/{id}/replay  queue a delivery for processing again
//	POST /api/webhooks/dlq/replay          move the dead-letter queue back to the queue
//	GET  /api/webhooks/statistics          per-event counts and job queue times of the last hours, from counters
//	GET  /api/webhooks/health              public: healthy or degraded, and why
//	POST /api/webhooks/test                send a signed sample delivery through ingest
//
// Every answer is {"success": true, "data": ...} or the httpjson failure envelope. Every
// read is bounded whatever the number of deliveries: listings walk the stores' time
// index with a cursor and a read budget (delivery.Lister), statistics and health read
// the hourly counters.
package deliveries

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/httpapi"
	"github.com/runnerhub/webhooks/internal/httpjson"
	"github.com/runnerhub/webhooks/internal/jobs"
)

// Deps are the ports the endpoints use.
type Deps struct {
	Store    delivery.Store // one delivery, with its payload
	Lister   delivery.Lister
	Counters delivery.Counters
	// JobCounters, when set, add the jobs' queue times and conclusions to the statistics.
	JobCounters jobs.Counters
	Queue       delivery.Queue // replays
	DeadLetters delivery.DeadLetters
	// Ingest is the webhook endpoint's handler: POST /api/webhooks/test sends its
	// deliveries through it, signed with Secret (unsigned when Secret is empty, for a
	// local stack that accepts unsigned deliveries).
	Ingest http.Handler
	Secret string
	// Retention is how long deliveries are kept: how far back a listing goes by default
	// (30 days when zero).
	Retention time.Duration
	Health    HealthLimits
	// Failures, when set, are the write failures this process saw recently, which make
	// health degraded (the local stack, where health shares the process with ingest and
	// the processor).
	Failures *WriteFailures
	// GivenUp, when set, counts the deliveries the reconciler gave up redelivering in
	// GitHub's three days; any makes health degraded.
	GivenUp func(ctx context.Context) (int, error)
	Log     *slog.Logger
	Now     func() time.Time // time.Now when nil

	// Problems, when set, are more reasons for a degraded health from the rest of the
	// system: the provisioner's JIT failures (the local stack's in process, the
	// ProvisionerFunction's from its checkpoint on AWS). Health is public: they name no
	// repository.
	Problems func(ctx context.Context) ([]string, error)
}

// Routes returns the endpoints; health is the only public one.
func Routes(d Deps) []httpapi.Route {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Retention <= 0 {
		d.Retention = 30 * 24 * time.Hour
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	d.Health = d.Health.withDefaults()
	h := &handlers{Deps: d}
	return []httpapi.Route{
		{Method: http.MethodGet, Pattern: "/api/webhooks/events", Handler: h.endpoint(h.list)},
		{Method: http.MethodGet, Pattern: "/api/webhooks/events/{id}", Handler: h.endpoint(h.get)},
		{Method: http.MethodPost, Pattern: "/api/webhooks/events/{id}/replay", Handler: h.endpoint(h.replay)},
		{Method: http.MethodPost, Pattern: "/api/webhooks/dlq/replay", Handler: h.endpoint(h.redrive)},
		{Method: http.MethodGet, Pattern: "/api/webhooks/statistics", Handler: h.endpoint(h.statistics)},
		{Method: http.MethodGet, Pattern: "/api/webhooks/health", Handler: h.endpoint(h.health), Public: true},
		{Method: http.MethodPost, Pattern: "/api/webhooks/test", Handler: h.endpoint(h.sendSample)},
	}
}

type handlers struct{ Deps }

// unavailable is the answer when a store or queue fails. The cause is logged, never
// shown: it may name tables, queues or accounts.
func (h *handlers) unavailable(r *http.Request, code, what string, err error) *httpjson.Problem {
	h.Log.ErrorContext(r.Context(), what+" failed", "path", r.URL.Path, "error", err)
	return httpjson.NewProblem(http.StatusServiceUnavailable, code, what+" is unavailable; try again later")
}

// endpoint adapts a handler to the envelopes. Every failure of a store or queue is
// answered by unavailable, so an error that is not a Problem is a fault of this server:
// 500.
func (h *handlers) endpoint(f func(r *http.Request) (int, any, error)) http.Handler {
	return httpjson.Endpoint(httpjson.Internal(h.Log), f)
}
