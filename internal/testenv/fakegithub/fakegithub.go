// Package fakegithub is a GitHub REST server for tests: webhook delivery logs and
// redelivery, workflow jobs, self-hosted runners, GitHub App authentication (JWT and
// installation tokens), rate limits and failures on demand.
//
// It serves only operations of ../shared/github-rest/operations.json (an excerpt of
// GitHub's published OpenAPI description), and validates every request it receives and
// every response it gives against that description: a response that does not match fails
// the test, so the fake cannot drift from GitHub. Statuses the excerpt leaves out (401,
// 403, 429, 5xx) are sent in GitHub's error shape ({"message", "documentation_url"}).
package fakegithub

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// Server is a running fake GitHub. Its exported fields may be set before the first
// request; use the methods afterwards.
type Server struct {
	URL string

	t    testing.TB
	http *httptest.Server
	doc  *openapi3.T

	// AppID and PrivateKeyPEM are the fake App's credentials.
	AppID         int64
	PrivateKeyPEM []byte
	appKey        *rsa.PrivateKey

	mu         sync.Mutex
	violations []string
	calls      []string
	tokens     map[string]installationToken
	// Token is accepted as a personal access token when not empty.
	Token string
	// TokenTTL is how long installation tokens last (GitHub: one hour).
	TokenTTL       time.Duration
	tokensIssued   int
	installations  map[string]int64 // owner → installation id
	hooks          map[string]*hook
	jobs           map[string]map[int64]*Job // owner/repo → job id → job
	runners        map[string][]*runner      // scope key → runners
	nextID         int64
	rate           rateState
	failures       []failure
	redeliveries   map[string]int // hook → redelivery requests accepted
	tooOldRequests int
	delay          time.Duration
	events         *jobEvents // nil until SendJobEvents
	// stop ends the job runs still going when the test ends; wg waits for them.
	stop chan struct{}
	wg   sync.WaitGroup
}

type installationToken struct {
	installation int64
	expires      time.Time
}

type failure struct {
	status     int
	retryAfter int // seconds; with 403/429 a secondary rate limit
}

type rateState struct {
	limit, remaining int
	reset            time.Time
}

// operationsFile is the OpenAPI excerpt, found from this source file's directory.
func operationsFile(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "shared", "github-rest", "operations.json")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("fakegithub: the OpenAPI excerpt is missing: %v", err)
	}
	return path
}

// Start starts a fake GitHub on a loopback port; it stops, and fails the test if any
// answer broke the OpenAPI description, when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(operationsFile(t))
	if err != nil {
		t.Fatalf("fakegithub: loading the OpenAPI excerpt: %v", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{
		t: t, doc: doc, AppID: 424242, appKey: key,
		PrivateKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		TokenTTL:      time.Hour,
		tokens:        map[string]installationToken{}, installations: map[string]int64{},
		hooks: map[string]*hook{}, jobs: map[string]map[int64]*Job{}, runners: map[string][]*runner{},
		redeliveries: map[string]int{}, nextID: 1000, stop: make(chan struct{}),
		rate: rateState{limit: 5000, remaining: 5000, reset: time.Now().Add(time.Hour)},
	}
	mux := http.NewServeMux()
	s.routes(mux)
	s.http = httptest.NewServer(mux)
	s.URL = s.http.URL
	t.Cleanup(func() {
		s.mu.Lock()
		close(s.stop) // under mu: startRuns adds no run once it is closed
		s.mu.Unlock()
		s.wg.Wait()
		s.http.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, v := range s.violations {
			t.Errorf("fakegithub: %s", v)
		}
	})
	return s
}

// auth is what an operation requires.
type auth int

const (
	authToken auth = iota // a personal access token or an installation token
	authJWT               // the App's JWT
)

// route serves one operation of the description. It fails start-up for an operation
// the description does not have.
func (s *Server) route(mux *http.ServeMux, method, path string, need auth, h func(w *recorder, r *http.Request)) {
	item := s.doc.Paths.Find(path)
	if item == nil || item.GetOperation(method) == nil {
		s.t.Fatalf("fakegithub: %s %s is not in the OpenAPI excerpt", method, path)
	}
	rt := &routers.Route{Spec: s.doc, Path: path, PathItem: item, Method: method, Operation: item.GetOperation(method)}
	mux.HandleFunc(method+" "+path, func(w http.ResponseWriter, r *http.Request) {
		body, _ := readBody(r)
		rec := &recorder{header: http.Header{}}
		s.serve(rec, r, need, h)
		s.validate(rt, r, body, rec)
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
	})
}

func (s *Server) serve(w *recorder, r *http.Request, need auth, h func(w *recorder, r *http.Request)) {
	s.mu.Lock()
	s.calls = append(s.calls, r.Method+" "+r.URL.Path)
	delay := s.delay
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
		}
	}
	var ok bool
	if need == authJWT {
		ok = s.checkJWT(r)
	} else {
		ok = s.checkToken(r)
	}
	if !ok {
		w.fail(http.StatusUnauthorized, "Bad credentials")
		return
	}
	if !s.spend(w) {
		return
	}
	if f, ok := s.nextFailure(); ok {
		if f.retryAfter > 0 {
			w.header.Set("Retry-After", strconv.Itoa(f.retryAfter))
			w.json(f.status, map[string]string{"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
				"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"})
			return
		}
		w.fail(f.status, "Server Error")
		return
	}
	h(w, r)
}

// spend takes one call from the primary budget and sets the rate-limit headers; with the
// budget spent it answers 403 as GitHub does.
func (s *Server) spend(w *recorder) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Now().After(s.rate.reset) {
		s.rate.remaining, s.rate.reset = s.rate.limit, time.Now().Add(time.Hour).Truncate(time.Second)
	}
	exhausted := s.rate.remaining == 0
	if !exhausted {
		s.rate.remaining--
	}
	w.header.Set("X-RateLimit-Limit", strconv.Itoa(s.rate.limit))
	w.header.Set("X-RateLimit-Remaining", strconv.Itoa(s.rate.remaining))
	w.header.Set("X-RateLimit-Used", strconv.Itoa(s.rate.limit-s.rate.remaining))
	w.header.Set("X-RateLimit-Reset", strconv.FormatInt(s.rate.reset.Unix(), 10))
	w.header.Set("X-RateLimit-Resource", "core")
	if exhausted {
		w.fail(http.StatusForbidden, "API rate limit exceeded for installation.")
	}
	return !exhausted
}

// SetRateLimit sets the primary budget: remaining calls until reset, then limit again.
func (s *Server) SetRateLimit(limit, remaining int, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// GitHub's X-RateLimit-Reset is in whole seconds; so is the fake's reset.
	s.rate = rateState{limit: limit, remaining: remaining, reset: reset.Truncate(time.Second)}
}

// SetDelay makes every answer wait d (GitHub being slow).
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// FailNext makes the next n calls answer status (after authentication and rate limits).
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, failure{status: status})
	}
}

// SecondaryLimitNext makes the next call answer 403 with Retry-After, as GitHub's
// secondary rate limit does.
func (s *Server) SecondaryLimitNext(retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, failure{status: http.StatusForbidden, retryAfter: int(retryAfter.Seconds())})
}

func (s *Server) nextFailure() (failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) == 0 {
		return failure{}, false
	}
	f := s.failures[0]
	s.failures = s.failures[1:]
	return f, true
}

// Calls returns "METHOD /path" of every request so far.
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// CountCalls counts the requests whose "METHOD /path" starts with prefix.
func (s *Server) CountCalls(prefix string) int {
	n := 0
	for _, c := range s.Calls() {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

// validate checks the request and the response against the description and records
// what does not match.
func (s *Server) validate(rt *routers.Route, r *http.Request, body []byte, rec *recorder) {
	params := map[string]string{}
	for _, seg := range strings.Split(rt.Path, "/") {
		if strings.HasPrefix(seg, "{") {
			name := strings.Trim(seg, "{}")
			params[name] = r.PathValue(name)
		}
	}
	req := r.Clone(context.Background())
	req.Body = readCloser(body)
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: rt, Options: opts}
	if rec.status < 300 {
		// Requests are checked when the fake accepted them: a refused one was refused.
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			s.violation("request %s %s does not match the description: %v", r.Method, r.URL.Path, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.status, Header: rec.header, Options: opts}
	out.SetBodyBytes(rec.body.Bytes())
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		s.violation("response %d to %s %s does not match the description: %v", rec.status, r.Method, r.URL.Path, err)
	}
	if rt.Operation.Responses.Status(rec.status) == nil {
		// Undocumented here: it must be GitHub's error shape.
		var e struct {
			Message          string `json:"message"`
			DocumentationURL string `json:"documentation_url"`
		}
		if json.Unmarshal(rec.body.Bytes(), &e) != nil || e.Message == "" {
			s.violation("response %d to %s %s is not GitHub's error shape", rec.status, r.Method, r.URL.Path)
		}
	}
}

func (s *Server) violation(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
}

// recorder holds a response until it is validated.
type recorder struct {
	status int
	header http.Header
	body   bytes.Buffer
}

func (w *recorder) json(status int, v any) {
	w.status = status
	w.header.Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(&w.body).Encode(v)
}

func (w *recorder) fail(status int, message string) {
	w.json(status, map[string]string{"message": message, "documentation_url": "https://docs.github.com/rest"})
}

func (w *recorder) noContent() { w.status = http.StatusNoContent }

func (s *Server) id() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	return s.nextID
}

func pathInt(r *http.Request, name string) (int64, bool) {
	n, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	return n, err == nil
}

func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
