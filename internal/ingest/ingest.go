// Package ingest is the webhook endpoint, POST /api/webhooks/github: it verifies a
// delivery, records it durably, queues it for the processor and only then acknowledges it.
//
// The order matters for the guarantee GitHub's users care about — nothing acknowledged is
// ever lost: a 2xx is sent only after both the store and the queue said yes. If either
// fails the answer is 5xx, GitHub shows the failure, and a redelivery (same delivery id)
// finds the record and queues it again if it was never processed.
package ingest

import (
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/httpapi"
	"github.com/runnerhub/webhooks/internal/httpjson"
	"github.com/runnerhub/webhooks/internal/webhook"
)

// Path is where GitHub posts deliveries.
const Path = "/api/webhooks/github"

// Outcomes label the log line and metrics of every request.
const (
	OutcomeAccepted  = "accepted"  // new delivery, recorded and queued
	OutcomeRequeued  = "requeued"  // seen before, never processed: queued again
	OutcomeDuplicate = "duplicate" // seen before and processed: nothing to do
	OutcomeRejected  = "rejected"  // refused before anything was written
	OutcomeFailed    = "failed"    // store or queue failed: 5xx, nothing acknowledged
)

// Metrics receives one observation per request.
type Metrics interface {
	Observe(event, outcome, reason string, elapsed time.Duration)
}

// Routes returns the webhook route; it is public because it checks its own signature.
func (h *Handler) Routes() []httpapi.Route {
	return []httpapi.Route{{Method: http.MethodPost, Pattern: Path, Handler: h, Public: true}}
}

// Handler serves Path.
type Handler struct {
	Parser       *webhook.Parser
	Store        delivery.Store
	Queue        delivery.Queue
	MaxBodyBytes int64
	// MaxBodyBytesInFlight caps the bytes that the body buffers of all requests being read
	// hold at once (DefaultInFlightBodies × MaxBodyBytes when zero); past it a request is
	// answered 503 with Retry-After.
	MaxBodyBytesInFlight int64
	// BodyReadTimeout bounds reading a body once its headers passed (BodyReadTimeout
	// when zero).
	BodyReadTimeout time.Duration
	Log             *slog.Logger
	Metrics         Metrics
	Now             func() time.Time

	inFlight atomic.Int64 // bytes held by body buffers now, against MaxBodyBytesInFlight
}

const (
	// BodyReadTimeout is the default deadline for reading a body. GitHub sends the whole
	// body at once and gives up on a delivery after 10 seconds, so a body still arriving
	// after that is from a sender that is not GitHub, or one that has already failed.
	BodyReadTimeout = 10 * time.Second
	// DefaultInFlightBodies is how many bodies of the maximum size the default
	// MaxBodyBytesInFlight holds.
	DefaultInFlightBodies = 4
	// firstReadBytes is a body buffer's size before anything has arrived: most
	// deliveries fit two doublings of it, and a silent sender holds no more.
	firstReadBytes = 4 << 10
	// busyRetryAfter is the Retry-After of a 503 for too many bytes in flight: by then
	// every body being read has arrived or hit its BodyReadTimeout.
	busyRetryAfter = "10"
)

// Response is the success body (the description's success/message shape).
type Response struct {
	Success    bool   `json:"success"`
	Message    string `json:"message"`
	DeliveryID string `json:"deliveryId"`
	Duplicate  bool   `json:"duplicate,omitempty"`
}

type result struct {
	status  int
	outcome string
	reason  string // for rejections and failures: a stable label, never a secret
	message string
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	headers := webhook.HeadersFrom(r.Header)
	d, res := h.handle(r.Context(), headers, w, r)
	elapsed := time.Since(start)

	if res.status >= 400 {
		if res.reason == reasonBusy {
			w.Header().Set("Retry-After", busyRetryAfter)
		}
		httpjson.Error(w, res.status, res.reason, res.message)
	} else {
		httpjson.Write(w, res.status, Response{Success: true, Message: res.message, DeliveryID: headers.DeliveryID, Duplicate: res.outcome == OutcomeDuplicate})
	}
	if h.Metrics != nil {
		event := "" // refused before it could be trusted: the header is not a label value
		if d != nil {
			event = d.Event
		}
		h.Metrics.Observe(event, res.outcome, res.reason, elapsed)
	}
	level := slog.LevelInfo
	if res.outcome == OutcomeRejected {
		level = slog.LevelWarn
	} else if res.outcome == OutcomeFailed {
		level = slog.LevelError
	}
	// One line per delivery, rejected ones included, with what its headers said so that it
	// can be found in GitHub's "Recent deliveries": values pass loggable first (refused
	// requests' headers are unvalidated), and signatures are never logged.
	attrs := []slog.Attr{
		slog.String("outcome", res.outcome),
		slog.Int("status", res.status),
		slog.Duration("duration", elapsed),
		slog.String("delivery_id", loggable(headers.DeliveryID)),
		slog.String("hook_id", loggable(hookID(headers.HookID))),
		slog.String("event", loggable(headers.Event)),
	}
	if res.reason != "" {
		attrs = append(attrs, slog.String("reason", res.reason))
	}
	if d != nil {
		attrs = append(attrs, slog.String("action", d.Action),
			slog.String("repository", d.Repository), slog.Int("bytes", len(d.Payload)))
	}
	h.Log.LogAttrs(r.Context(), level, "webhook delivery", attrs...)
}

// handle returns the parsed delivery (nil when it was refused before it could be trusted)
// and what to answer.
//
// The headers are judged before a byte of the body is read, and the body is read under a
// deadline into a buffer that grows only as bytes arrive, within a budget shared by all
// requests: a sender without a valid signature can make the service hold little memory,
// and for little time.
func (h *Handler) handle(ctx context.Context, headers webhook.Headers, w http.ResponseWriter, r *http.Request) (*webhook.Delivery, result) {
	admitted, err := h.Parser.Admit(headers)
	if err != nil {
		return nil, rejected(err)
	}
	if r.ContentLength > h.MaxBodyBytes {
		return nil, tooLarge
	}
	// Unsupported where the body is already in memory (Lambda): nothing to bound there.
	if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(cmp.Or(h.BodyReadTimeout, BodyReadTimeout))); err != nil && !errors.Is(err, http.ErrNotSupported) {
		h.Log.WarnContext(ctx, "setting the body read deadline failed", "error", err)
	}
	body, release, res := h.readBody(r.Body)
	defer release()
	if res.status != 0 {
		return nil, res
	}
	d, err := h.Parser.Verify(admitted, body)
	if err != nil {
		return nil, rejected(err)
	}

	rec := &delivery.Record{
		Key:                    delivery.Key{HookID: hookID(d.HookID), DeliveryID: d.DeliveryID},
		Event:                  d.Event,
		Action:                 d.Action,
		Repository:             d.Repository,
		InstallationTargetType: d.TargetType,
		InstallationTargetID:   d.TargetID,
		ReceivedAt:             h.Now().UTC(),
		Payload:                d.Payload,
		State:                  delivery.Received,
	}
	existing, err := h.Store.Create(ctx, rec)
	if err != nil {
		h.Log.ErrorContext(ctx, "recording delivery failed", "delivery_id", d.DeliveryID, "hook_id", rec.HookID, "error", err)
		return &d, result{status: http.StatusServiceUnavailable, outcome: OutcomeFailed, reason: "store_unavailable",
			message: "the delivery could not be recorded; redeliver it later"}
	}
	outcome, message := OutcomeAccepted, acceptedMessage(d.Event)
	if existing != nil {
		if existing.State.Done() {
			return &d, result{status: http.StatusOK, outcome: OutcomeDuplicate,
				message: "delivery already processed (" + string(existing.State) + "); nothing to do"}
		}
		outcome, message = OutcomeRequeued, "delivery was recorded earlier but not processed; queued again"
	}
	if err := h.Queue.Enqueue(ctx, delivery.Message{Key: rec.Key, Event: rec.Event}); err != nil {
		h.Log.ErrorContext(ctx, "queueing delivery failed", "delivery_id", d.DeliveryID, "hook_id", rec.HookID, "error", err)
		return &d, result{status: http.StatusServiceUnavailable, outcome: OutcomeFailed, reason: "queue_unavailable",
			message: "the delivery was recorded but could not be queued; redeliver it to retry"}
	}
	return &d, result{status: http.StatusAccepted, outcome: outcome, message: message}
}

func acceptedMessage(event string) string {
	if event == "ping" {
		return "pong"
	}
	return "Webhook received and queued for processing"
}

// hookID is the hook id a delivery is keyed and logged under: delivery.NoHook, as the API
// spells it, for deliveries without X-GitHub-Hook-ID.
func hookID(id string) string {
	if id == "" {
		return delivery.NoHook
	}
	return id
}

// maxLoggedHeader is the longest header value logged: the longest delivery id accepted.
const maxLoggedHeader = webhook.MaxDeliveryIDLength

// loggable returns a header value fit for a log line whether or not it was validated: at
// most maxLoggedHeader bytes, every byte outside the characters of event names, delivery
// GUIDs and hook ids ('-' for none) replaced by '?', so a sender can neither forge log
// lines nor flood them.
func loggable(v string) string {
	b := []byte(v[:min(len(v), maxLoggedHeader)])
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '?'
		}
	}
	if len(v) > maxLoggedHeader {
		return string(b) + "..."
	}
	return string(b)
}

// rejected is the answer to a delivery the parser refused.
func rejected(err error) result {
	var rej *webhook.Rejection
	if !errors.As(err, &rej) {
		rej = &webhook.Rejection{Status: http.StatusBadRequest, Reason: "invalid", Message: err.Error()}
	}
	return result{status: rej.Status, outcome: OutcomeRejected, reason: rej.Reason, message: rej.Message}
}

// reasonBusy labels a refusal for too many body bytes in flight.
const reasonBusy = "busy"

var (
	tooLarge = result{status: http.StatusRequestEntityTooLarge, outcome: OutcomeRejected, reason: "body_too_large",
		message: "the body exceeds the configured limit"}
	busy = result{status: http.StatusServiceUnavailable, outcome: OutcomeRejected, reason: reasonBusy,
		message: "too many deliveries are being received at once; redeliver it later"}
	unreadable = result{status: http.StatusBadRequest, outcome: OutcomeRejected, reason: "unreadable_body",
		message: "the request body could not be read, or did not arrive in time"}
)

// readBody reads at most MaxBodyBytes of body. Its buffer starts small and doubles only
// when the bytes read so far fill it, so what it holds follows what arrived, never what
// Content-Length declared; each growth is taken from the in-flight budget first. release
// gives the buffer's bytes back to the budget once the body is no longer needed.
func (h *Handler) readBody(body io.Reader) (_ []byte, release func(), _ result) {
	var buf []byte
	held := int64(0)
	release = func() { h.inFlight.Add(-held) }
	limit := cmp.Or(h.MaxBodyBytesInFlight, DefaultInFlightBodies*h.MaxBodyBytes)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > h.MaxBodyBytes {
				return nil, release, tooLarge
			}
			// One byte past the limit tells an oversized body from one of exactly the limit.
			size := min(max(firstReadBytes, 2*int64(cap(buf))), h.MaxBodyBytes+1)
			if h.inFlight.Add(size) > limit {
				h.inFlight.Add(-size)
				return nil, release, busy
			}
			grown := make([]byte, len(buf), size)
			copy(grown, buf)
			h.inFlight.Add(-held)
			buf, held = grown, size
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case err == io.EOF && int64(len(buf)) > h.MaxBodyBytes:
			return nil, release, tooLarge
		case err == io.EOF:
			return buf, release, result{}
		case err != nil:
			return nil, release, unreadable
		}
	}
}
