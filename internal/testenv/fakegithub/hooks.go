package fakegithub

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Target receives a hook's deliveries and answers with a status code (0: no answer).
type Target func(ctx context.Context, header http.Header, body []byte) int

// poster posts the deliveries. Unlike http.DefaultClient it keeps enough connections
// open for a burst of concurrent deliveries, rather than dialling anew for most of them.
var poster = func() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: tr}
}()

// HTTPTarget posts deliveries to url, as GitHub does, with a 10-second limit.
func HTTPTarget(url string) Target {
	return func(ctx context.Context, header http.Header, body []byte) int {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return 0
		}
		req.Header = header
		resp, err := poster.Do(req)
		if err != nil {
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body) // read to the end, so that the connection is reused
		resp.Body.Close()
		return resp.StatusCode
	}
}

// Mode says what becomes of a delivery.
type Mode int

const (
	// Delivered: posted to the target; its answer is the attempt's status.
	Delivered Mode = iota
	// Dropped: never reaches the target (the receiver was down); logged as a 502.
	Dropped
	// Late: posted to the target, which records it, but logged as timed out (the
	// receiver answered after GitHub's 10 seconds).
	Late
	// Unsent: never attempted and absent from the delivery log (GitHub lost it): only the
	// REST API's state tells what happened.
	Unsent
)

// redeliveryWindow is how far back GitHub redelivers.
const redeliveryWindow = 3 * 24 * time.Hour

type hook struct {
	name   string
	id     int64
	secret string
	target Target
	// down makes every delivery, redeliveries included, fail without reaching target.
	down     bool
	attempts []*attempt // oldest first
}

type attempt struct {
	id          int64
	guid        string
	deliveredAt time.Time
	redelivery  bool
	statusCode  int
	event       string
	action      string
	payload     []byte
	header      http.Header
}

// AddHook creates the hook named as in RUNNERHUB_GITHUB_HOOKS ("app",
// "repo/<owner>/<name>/<id>", "org/<org>/<id>"), with hookID as its X-GitHub-Hook-ID,
// signing with secret and posting to target.
func (s *Server) AddHook(name string, hookID int64, secret string, target Target) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks[name] = &hook{name: name, id: hookID, secret: secret, target: target}
}

// SetHookDown makes every delivery of the hook fail (true) or go through (false).
func (s *Server) SetHookDown(name string, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks[name].down = down
}

// Deliver sends a delivery of event through hook as mode says and returns its GUID.
func (s *Server) Deliver(name, event string, payload []byte, mode Mode) string {
	guid := newGUID()
	s.attempt(name, guid, event, payload, false, mode, time.Now())
	return guid
}

// AddPastAttempt logs a failed attempt age ago that never reached the target.
func (s *Server) AddPastAttempt(name, event string, payload []byte, age time.Duration) string {
	guid := newGUID()
	s.attempt(name, guid, event, payload, false, Dropped, time.Now().Add(-age))
	return guid
}

func (s *Server) attempt(name, guid, event string, payload []byte, redelivery bool, mode Mode, at time.Time) *attempt {
	s.mu.Lock()
	h := s.hooks[name]
	s.mu.Unlock()
	if h == nil {
		s.t.Fatalf("fakegithub: no hook %q", name)
	}
	var action struct {
		Action string `json:"action"`
	}
	_ = json.Unmarshal(payload, &action)
	a := &attempt{id: s.id(), guid: guid, deliveredAt: at.UTC(), redelivery: redelivery, event: event, action: action.Action, payload: payload}
	a.header = http.Header{
		"Content-Type":        {"application/json"},
		"X-Github-Event":      {event},
		"X-Github-Delivery":   {guid},
		"X-Github-Hook-Id":    {strconv.FormatInt(h.id, 10)},
		"User-Agent":          {"GitHub-Hookshot/fake"},
		"X-Hub-Signature-256": {sign(h.secret, payload)},
	}
	switch {
	case mode == Unsent:
		return a
	case mode == Dropped || h.down:
		a.statusCode = http.StatusBadGateway
	default:
		a.statusCode = h.target(context.Background(), a.header.Clone(), payload)
		if mode == Late {
			a.statusCode = http.StatusGatewayTimeout
		}
	}
	s.mu.Lock()
	h.attempts = append(h.attempts, a)
	s.mu.Unlock()
	return a
}

// Redeliveries counts the redeliveries requested of hook.
func (s *Server) Redeliveries(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.redeliveries[name]
}

// Attempts counts the attempts logged for guid in hook (redeliveries included).
func (s *Server) Attempts(name, guid string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, a := range s.hooks[name].attempts {
		if a.guid == guid {
			n++
		}
	}
	return n
}

func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func newGUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func (a *attempt) status() string {
	switch {
	case a.statusCode >= 200 && a.statusCode < 400:
		return "OK"
	case a.statusCode == http.StatusGatewayTimeout:
		return "timed out"
	}
	return "Invalid HTTP Response: " + strconv.Itoa(a.statusCode)
}

func (a *attempt) item() map[string]any {
	return map[string]any{
		"id": a.id, "guid": a.guid, "delivered_at": timestamp(a.deliveredAt), "redelivery": a.redelivery,
		"duration": 0.27, "status": a.status(), "status_code": a.statusCode, "event": a.event,
		"action": nullable(a.action), "installation_id": nil, "repository_id": nil, "throttled_at": nil,
	}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// hookRoutes serves the delivery log and redelivery at the three levels.
func (s *Server) hookRoutes(mux *http.ServeMux) {
	levels := []struct {
		prefix string
		need   auth
		name   func(r *http.Request) string
	}{
		{"/repos/{owner}/{repo}/hooks/{hook_id}", authToken, func(r *http.Request) string {
			return "repo/" + r.PathValue("owner") + "/" + r.PathValue("repo") + "/" + r.PathValue("hook_id")
		}},
		{"/orgs/{org}/hooks/{hook_id}", authToken, func(r *http.Request) string {
			return "org/" + r.PathValue("org") + "/" + r.PathValue("hook_id")
		}},
		{"/app/hook", authJWT, func(*http.Request) string { return "app" }},
	}
	for _, l := range levels {
		s.route(mux, "GET", l.prefix+"/deliveries", l.need, func(w *recorder, r *http.Request) { s.listDeliveries(w, r, l.name(r), l.prefix) })
		s.route(mux, "GET", l.prefix+"/deliveries/{delivery_id}", l.need, func(w *recorder, r *http.Request) { s.getDelivery(w, r, l.name(r)) })
		s.route(mux, "POST", l.prefix+"/deliveries/{delivery_id}/attempts", l.need, func(w *recorder, r *http.Request) { s.redeliver(w, r, l.name(r)) })
	}
}

func (s *Server) hookNamed(name string) *hook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hooks[name]
}

func (s *Server) listDeliveries(w *recorder, r *http.Request, name, _ string) {
	h := s.hookNamed(name)
	if h == nil {
		w.fail(http.StatusNotFound, "Not Found")
		return
	}
	q := r.URL.Query()
	perPage := 30
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			w.json(http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed", "documentation_url": "https://docs.github.com/rest"})
			return
		}
		perPage = n
	}
	s.mu.Lock()
	newest := slices.Clone(h.attempts)
	s.mu.Unlock()
	slices.Reverse(newest)
	if st := q.Get("status"); st != "" {
		newest = slices.DeleteFunc(newest, func(a *attempt) bool {
			ok := a.statusCode >= 200 && a.statusCode < 400
			return (st == "success") != ok
		})
	}
	start := 0
	if c := q.Get("cursor"); c != "" {
		id, err := strconv.ParseInt(strings.TrimPrefix(c, "v1_"), 10, 64)
		if err != nil {
			w.json(http.StatusUnprocessableEntity, map[string]any{"message": "Invalid cursor", "documentation_url": "https://docs.github.com/rest"})
			return
		}
		start = slices.IndexFunc(newest, func(a *attempt) bool { return a.id == id })
		if start < 0 {
			start = len(newest)
		}
	}
	end := min(start+perPage, len(newest))
	items := make([]map[string]any, 0, end-start)
	for _, a := range newest[start:end] {
		items = append(items, a.item())
	}
	if end < len(newest) {
		next := *r.URL
		nq := next.Query()
		nq.Set("per_page", strconv.Itoa(perPage))
		nq.Set("cursor", "v1_"+strconv.FormatInt(newest[end].id, 10))
		next.RawQuery = nq.Encode()
		w.header.Set("Link", fmt.Sprintf(`<%s%s>; rel="next"`, s.URL, next.RequestURI()))
	}
	w.json(http.StatusOK, items)
}

func (s *Server) findAttempt(name string, r *http.Request) (*hook, *attempt) {
	id, _ := pathInt(r, "delivery_id")
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hooks[name]
	if h == nil {
		return nil, nil
	}
	for _, a := range h.attempts {
		if a.id == id {
			return h, a
		}
	}
	return h, nil
}

func (s *Server) getDelivery(w *recorder, r *http.Request, name string) {
	_, a := s.findAttempt(name, r)
	if a == nil {
		w.fail(http.StatusNotFound, "Not Found")
		return
	}
	item := a.item()
	headers := map[string]string{}
	for k := range a.header {
		headers[k] = a.header.Get(k)
	}
	var payload map[string]any
	_ = json.Unmarshal(a.payload, &payload)
	item["url"] = "https://runnerhub.example/api/webhooks/github"
	item["request"] = map[string]any{"headers": headers, "payload": payload}
	item["response"] = map[string]any{"headers": map[string]string{}, "payload": nil}
	w.json(http.StatusOK, item)
}

func (s *Server) redeliver(w *recorder, r *http.Request, name string) {
	h, a := s.findAttempt(name, r)
	if a == nil {
		w.fail(http.StatusNotFound, "Not Found")
		return
	}
	if time.Since(a.deliveredAt) > redeliveryWindow {
		s.mu.Lock()
		s.tooOldRequests++
		s.mu.Unlock()
		w.json(http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed", "documentation_url": "https://docs.github.com/rest",
			"errors": []map[string]any{{"code": "custom", "message": "deliveries older than 3 days cannot be redelivered"}}})
		return
	}
	s.mu.Lock()
	s.redeliveries[h.name]++
	s.mu.Unlock()
	s.attempt(name, a.guid, a.event, a.payload, true, Delivered, time.Now())
	w.json(http.StatusAccepted, map[string]any{})
}

// TooOldRedeliveries counts refused requests to redeliver attempts older than 3 days.
func (s *Server) TooOldRedeliveries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tooOldRequests
}
