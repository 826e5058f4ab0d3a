package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

type denyAll struct{}

func (denyAll) Require(http.Handler, bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusUnauthorized) })
}

// readOnly lets reads through and answers writes 403, as a read token's authenticator.
type readOnly struct{}

func (readOnly) Require(h http.Handler, write bool) http.Handler {
	if write {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) })
	}
	return h
}

// TestRouterTellsWrites: every method but GET and HEAD writes, unless its route says it
// only reads.
func TestRouterTellsWrites(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := New(readOnly{}, []Route{
		{Method: http.MethodGet, Pattern: "/things", Handler: ok},
		{Method: http.MethodHead, Pattern: "/things/{id}", Handler: ok},
		{Method: http.MethodPost, Pattern: "/things", Handler: ok},
		{Method: http.MethodPut, Pattern: "/things/{id}", Handler: ok},
		{Method: http.MethodDelete, Pattern: "/things/{id}", Handler: ok},
		{Method: http.MethodPost, Pattern: "/ticket", Handler: ok, ReadOnly: true},
	})
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/things", http.StatusTeapot},
		{"HEAD", "/things/1", http.StatusTeapot},
		{"POST", "/things", http.StatusForbidden},
		{"PUT", "/things/1", http.StatusForbidden},
		{"DELETE", "/things/1", http.StatusForbidden},
		{"POST", "/ticket", http.StatusTeapot},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
		if w.Code != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, w.Code, c.status)
		}
	}
}

func TestRouter(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := New(denyAll{}, []Route{
		{Method: http.MethodPost, Pattern: "/public", Handler: ok, Public: true},
		{Method: http.MethodGet, Pattern: "/private/{id}", Handler: ok},
	})
	cases := []struct {
		method, path string
		status       int
		code         string
	}{
		{"POST", "/public", http.StatusTeapot, ""},
		{"GET", "/public", http.StatusMethodNotAllowed, "method_not_allowed"},
		{"GET", "/private/7", http.StatusUnauthorized, ""},
		{"GET", "/nowhere", http.StatusNotFound, "not_found"},
	}
	for _, c := range cases {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
		if w.Code != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, w.Code, c.status)
		}
		if c.code != "" {
			var body struct {
				Success bool
				Error   struct{ Code string }
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Success || body.Error.Code != c.code {
				t.Errorf("%s %s: body %s", c.method, c.path, w.Body)
			}
		}
	}
}
