package deliveries

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/httpjson"
)

// Listing defaults.
const (
	defaultLimit = 100
	// untilMargin lets a default listing include deliveries stamped by a host whose clock
	// runs slightly ahead of this one's.
	untilMargin = time.Minute
	// maxCursor bounds the cursor parameter; a cursor the API makes is well under it.
	maxCursor = 512
)

// eventItem is one delivery in a listing: the description's fields (id, repository,
// event, action, timestamp, processed) and what else a reader needs to act on it.
type eventItem struct {
	ID          string     `json:"id"`
	HookID      string     `json:"hookId"`
	DeliveryID  string     `json:"deliveryId"`
	Repository  string     `json:"repository"`
	Event       string     `json:"event"`
	Action      string     `json:"action"`
	Timestamp   time.Time  `json:"timestamp"`
	Processed   bool       `json:"processed"`
	State       string     `json:"state"`
	Outcome     string     `json:"outcome,omitempty"`
	ProcessedAt *time.Time `json:"processedAt,omitempty"`
	// Redelivered: it arrived by redelivery after GitHub's original attempt failed (set
	// by the reconciler once GitHub's delivery log shows it).
	Redelivered bool `json:"redelivered"`
}

func itemOf(rec *delivery.Record) eventItem {
	it := eventItem{
		ID: eventID(rec.Key), HookID: rec.HookID, DeliveryID: rec.DeliveryID,
		Repository: rec.Repository, Event: rec.Event, Action: rec.Action,
		Timestamp: rec.ReceivedAt, Processed: rec.State.Done(), State: string(rec.State), Outcome: rec.Outcome,
		Redelivered: rec.Redelivered,
	}
	if !rec.ProcessedAt.IsZero() {
		it.ProcessedAt = &rec.ProcessedAt
	}
	return it
}

// eventDetail is one delivery with its payload.
type eventDetail struct {
	eventItem
	InstallationTargetType string          `json:"installationTargetType,omitempty"`
	InstallationTargetID   string          `json:"installationTargetId,omitempty"`
	Payload                json.RawMessage `json:"payload"`
}

// eventList is the listing's data: the description's events, total, limit and offset,
// and the cursor to the next page.
type eventList struct {
	Events []eventItem `json:"events"`
	// Total counts the matching events up to the end of this page (offset + events):
	// exact once HasMore is false. Counting every match would read every match.
	Total      int    `json:"total"`
	Limit      int    `json:"limit"`
	Offset     int    `json:"offset"`
	HasMore    bool   `json:"hasMore"`
	NextCursor string `json:"nextCursor,omitempty"`
}

// list serves GET /api/webhooks/events.
func (h *handlers) list(r *http.Request) (int, any, error) {
	p := httpjson.NewQuery(r)
	now := h.Now()
	q := delivery.ListQuery{
		Filter: delivery.Filter{
			Repository: p.Match("repository", repositoryPattern, "owner/name"),
			Event:      p.Match("event", namePattern, "an event name such as workflow_job"),
			Action:     p.Match("action", namePattern, "an action name such as queued"),
			Processed:  p.Bool("processed"),
		},
		Since:  p.Time("since"),
		Until:  p.Time("until"),
		Limit:  p.Int("limit", defaultLimit, 1, delivery.MaxLimit),
		Offset: p.Int("offset", 0, 0, delivery.MaxOffset),
	}
	fingerprint := filterFingerprint(p)
	raw, hasCursor := p.Lookup("cursor")
	if hasCursor && p.Has("offset") {
		p.Failf("offset and cursor cannot be combined: a cursor already says where the page starts")
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		p.Failf("since must be before until")
	}
	if err := p.Err(); err != nil {
		return 0, nil, err
	}
	if latest := now.Add(untilMargin); q.Until.IsZero() || q.Until.After(latest) {
		// Nothing is received in the future: walking its empty days would only cost reads.
		q.Until = latest
	}
	if q.Since.IsZero() {
		q.Since = now.Add(-h.Retention)
	}
	offset := q.Offset
	if hasCursor {
		c, err := decodeCursor(raw, fingerprint)
		if err != nil {
			return 0, nil, err
		}
		q.After, q.Since, offset = &c.Cursor, c.Since, c.Seen
	}

	page, err := h.Lister.List(r.Context(), q)
	if errors.Is(err, delivery.ErrInvalidQuery) { // checked above; a guard, not a path
		return 0, nil, httpjson.BadRequest("invalid_parameter", err.Error())
	}
	if err != nil {
		return 0, nil, h.unavailable(r, "store_unavailable", "the delivery store", err)
	}
	out := eventList{Events: make([]eventItem, len(page.Records)), Limit: q.Limit, Offset: offset, HasMore: page.Next != nil}
	for i, rec := range page.Records {
		out.Events[i] = itemOf(rec)
	}
	out.Total = offset + len(out.Events)
	if page.Next != nil {
		out.NextCursor = encodeCursor(apiCursor{Cursor: *page.Next, Since: q.Since, Seen: out.Total}, fingerprint)
	}
	return http.StatusOK, out, nil
}

// get serves GET /api/webhooks/events/{id}.
func (h *handlers) get(r *http.Request) (int, any, error) {
	key, err := parseEventID(r)
	if err != nil {
		return 0, nil, err
	}
	rec, err := h.record(r, key)
	if err != nil {
		return 0, nil, err
	}
	payload := json.RawMessage(rec.Payload)
	if !json.Valid(payload) { // ingest only records JSON; never answer a broken document
		payload = json.RawMessage("null")
	}
	return http.StatusOK, eventDetail{
		eventItem:              itemOf(rec),
		InstallationTargetType: rec.InstallationTargetType,
		InstallationTargetID:   rec.InstallationTargetID,
		Payload:                payload,
	}, nil
}

// record reads the delivery key names; the error is the answer (404 when none is
// recorded, 503 when the store fails).
func (h *handlers) record(r *http.Request, key delivery.Key) (*delivery.Record, error) {
	rec, err := h.Store.Get(r.Context(), key)
	if errors.Is(err, delivery.ErrNotFound) {
		return nil, notFound(key)
	}
	if err != nil {
		return nil, h.unavailable(r, "store_unavailable", "the delivery store", err)
	}
	return rec, nil
}

func notFound(key delivery.Key) *httpjson.Problem {
	return httpjson.NewProblem(http.StatusNotFound, "not_found", "no delivery "+eventID(key)+" is recorded (it may have expired)")
}

// replayResult answers a replay.
type replayResult struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	Queued  bool   `json:"queued"`
	Message string `json:"message"`
}

// replay serves POST /api/webhooks/events/{id}/replay: the delivery's key goes on the
// events queue again. The processor skips deliveries it has finished, so replaying a
// processed one changes nothing, which the answer says.
func (h *handlers) replay(r *http.Request) (int, any, error) {
	key, err := parseEventID(r)
	if err != nil {
		return 0, nil, err
	}
	if err := decodeBody(r, &struct{}{}); err != nil {
		return 0, nil, err
	}
	rec, err := h.record(r, key)
	if err != nil {
		return 0, nil, err
	}
	if err := h.Queue.Enqueue(r.Context(), delivery.Message{Key: rec.Key, Event: rec.Event}); err != nil {
		return 0, nil, h.unavailable(r, "queue_unavailable", "the events queue", err)
	}
	message := "queued for processing again"
	if rec.State.Done() {
		message = "already " + string(rec.State) + ": queued again, but the processor skips finished deliveries, so nothing changes"
	}
	h.Log.InfoContext(r.Context(), "delivery replayed", "delivery_id", rec.DeliveryID, "hook_id", rec.HookID, "state", string(rec.State))
	return http.StatusAccepted, replayResult{ID: eventID(key), State: string(rec.State), Queued: true, Message: message}, nil
}

// redriveResult answers a DLQ replay.
type redriveResult struct {
	Replayed int `json:"replayed"`
	// Remaining is what the dead-letter queue still holds (a large queue is moved over
	// several calls); absent when its depth could not be read.
	Remaining *int64 `json:"remaining,omitempty"`
}

// redrive serves POST /api/webhooks/dlq/replay.
func (h *handlers) redrive(r *http.Request) (int, any, error) {
	if err := decodeBody(r, &struct{}{}); err != nil {
		return 0, nil, err
	}
	n, err := h.DeadLetters.Redrive(r.Context())
	if err != nil {
		h.Log.ErrorContext(r.Context(), "dead-letter replay stopped", "replayed", n, "error", err)
		return 0, nil, h.unavailable(r, "queue_unavailable", "the dead-letter queue", err)
	}
	out := redriveResult{Replayed: n}
	if d, err := h.DeadLetters.Depths(r.Context()); err == nil {
		out.Remaining = &d.Dead
	}
	h.Log.InfoContext(r.Context(), "dead-letter queue replayed", "replayed", n)
	return http.StatusOK, out, nil
}

// ---------------------------------------------------------------------------- cursor

// apiCursor is what the opaque cursor parameter carries: where the listing stopped, the
// start of its time range (a default one moves with the clock) and how many events the
// earlier pages returned (the next page's offset).
type apiCursor struct {
	delivery.Cursor
	Since time.Time
	Seen  int
}

// cursorJSON is the cursor's wire form, base64url-encoded. F binds it to the filters it
// was made for: with other filters its position and count would mean nothing.
type cursorJSON struct {
	V     int    `json:"v"`
	At    int64  `json:"t"` // unix milliseconds
	Hook  string `json:"h,omitempty"`
	ID    string `json:"d,omitempty"`
	Skip  int    `json:"k,omitempty"`
	Since int64  `json:"s"` // unix milliseconds
	Seen  int    `json:"n"`
	F     string `json:"f"`
}

const cursorVersion = 1

func encodeCursor(c apiCursor, fingerprint string) string {
	b, _ := json.Marshal(cursorJSON{
		V: cursorVersion, At: c.At.UnixMilli(), Hook: c.Key.HookID, ID: c.Key.DeliveryID, Skip: c.Skip,
		Since: c.Since.UnixMilli(), Seen: c.Seen, F: fingerprint,
	})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s, fingerprint string) (apiCursor, error) {
	invalid := httpjson.BadRequest("invalid_cursor", "cursor is not one this API returned; start again without it")
	if len(s) > maxCursor {
		return apiCursor{}, invalid
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return apiCursor{}, invalid
	}
	var c cursorJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if dec.Decode(&c) != nil || c.V != cursorVersion || c.At <= 0 || c.Since <= 0 ||
		c.Skip < 0 || c.Skip > delivery.MaxOffset || c.Seen < 0 ||
		(c.Hook == "") != (c.ID == "") ||
		(c.Hook != "" && !idPattern.MatchString(c.Hook+":"+c.ID)) {
		return apiCursor{}, invalid
	}
	if c.F != fingerprint {
		return apiCursor{}, httpjson.BadRequest("invalid_cursor", "cursor belongs to a listing with other filters (repository, event, action, processed, since, until); repeat them unchanged or start again without it")
	}
	return apiCursor{
		Cursor: delivery.Cursor{
			Position: delivery.Position{At: time.UnixMilli(c.At).UTC(), Key: delivery.Key{HookID: c.Hook, DeliveryID: c.ID}},
			Skip:     c.Skip,
		},
		Since: time.UnixMilli(c.Since).UTC(),
		Seen:  c.Seen,
	}, nil
}

// filterFingerprint digests the filter parameters as given.
func filterFingerprint(p *httpjson.Query) string {
	h := sha256.New()
	for _, name := range []string{"repository", "event", "action", "processed", "since", "until"} {
		h.Write([]byte(name + "=" + strings.Join(p.Values(name), ",") + "\x00"))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
