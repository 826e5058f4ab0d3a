// Package ingest is the webhook endpoint, POST /api/webhooks/github: it verifies a
// delivery, records it durably, queues it for the processor and only then acknowledges it.
//
// The order matters for the guarantee GitHub's users care about — nothing acknowledged is
// ever lost: a 2xx is sent only after both the store and the queue said yes. If either
// fails the answer is 5xx, GitHub shows the failure, and a redelivery (same delivery id)
// finds the record and queues it again if it was never processed.
package ingest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
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
	Log          *slog.Logger
	Metrics      Metrics
	Now          func() time.Time
}

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
	d, res := h.handle(r.Context(), headers, r)
	elapsed := time.Since(start)

	if res.status >= 400 {
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
	// One line per delivery. Header values are logged only once validated, never raw.
	attrs := []slog.Attr{
		slog.String("outcome", res.outcome),
		slog.Int("status", res.status),
		slog.Duration("duration", elapsed),
	}
	if res.reason != "" {
		attrs = append(attrs, slog.String("reason", res.reason))
	}
	if d != nil {
		attrs = append(attrs,
			slog.String("delivery_id", d.DeliveryID), slog.String("hook_id", d.HookID),
			slog.String("event", d.Event), slog.String("action", d.Action),
			slog.String("repository", d.Repository), slog.Int("bytes", len(d.Payload)))
	}
	h.Log.LogAttrs(r.Context(), level, "webhook delivery", attrs...)
}

// handle returns the parsed delivery (nil when it was refused before it could be trusted)
// and what to answer.
func (h *Handler) handle(ctx context.Context, headers webhook.Headers, r *http.Request) (*webhook.Delivery, result) {
	body, res, ok := h.readBody(r)
	if !ok {
		return nil, res
	}
	d, err := h.Parser.Parse(headers, body)
	if err != nil {
		var rej *webhook.Rejection
		if !errors.As(err, &rej) {
			rej = &webhook.Rejection{Status: http.StatusBadRequest, Reason: "invalid", Message: err.Error()}
		}
		return nil, result{status: rej.Status, outcome: OutcomeRejected, reason: rej.Reason, message: rej.Message}
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
		h.Log.ErrorContext(ctx, "recording delivery failed", "delivery_id", d.DeliveryID, "error", err)
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
		h.Log.ErrorContext(ctx, "queueing delivery failed", "delivery_id", d.DeliveryID, "error", err)
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

func hookID(id string) string {
	if id == "" {
		return delivery.NoHook
	}
	return id
}

// readBody reads at most MaxBodyBytes. The declared length is checked first so an
// oversized delivery is refused without reading it.
func (h *Handler) readBody(r *http.Request) ([]byte, result, bool) {
	tooLarge := result{status: http.StatusRequestEntityTooLarge, outcome: OutcomeRejected, reason: "body_too_large",
		message: "the body exceeds the configured limit"}
	if r.ContentLength > h.MaxBodyBytes {
		return nil, tooLarge, false
	}
	size := r.ContentLength
	if size < 0 {
		size = 16 << 10
	}
	buf := make([]byte, 0, size+1) // +1: reading to EOF then needs no second allocation
	body, err := readAll(http.MaxBytesReader(nil, r.Body, h.MaxBodyBytes), buf)
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return nil, tooLarge, false
		}
		return nil, result{status: http.StatusBadRequest, outcome: OutcomeRejected, reason: "unreadable_body",
			message: "the request body could not be read"}, false
	}
	return body, result{}, true
}

// readAll is io.ReadAll into a caller-sized buffer.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
	}
}
