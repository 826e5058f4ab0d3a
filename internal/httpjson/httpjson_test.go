package httpjson_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/runnerhub/webhooks/internal/httpjson"
)

func TestEndpoint(t *testing.T) {
	teapot := func(*http.Request, error) *httpjson.Problem {
		return httpjson.NewProblem(http.StatusTeapot, "unknown", "not a problem")
	}
	cases := []struct {
		name    string
		unknown func(*http.Request, error) *httpjson.Problem
		status  int
		data    any
		err     error
		want    int
		body    string
	}{
		{"Success", teapot, http.StatusCreated, map[string]int{"n": 1}, nil,
			http.StatusCreated, `{"success":true,"data":{"n":1}}`},
		{"NilData", teapot, http.StatusOK, nil, nil,
			http.StatusOK, `{"success":true,"data":null}`},
		{"Problem", teapot, 0, nil, httpjson.BadRequest("invalid_parameter", "limit is wrong"),
			http.StatusBadRequest, `{"success":false,"error":{"code":"invalid_parameter","message":"limit is wrong"}}`},
		{"WrappedProblem", teapot, 0, nil, fmt.Errorf("listing: %w", httpjson.NewProblem(http.StatusNotFound, "not_found", "gone")),
			http.StatusNotFound, `{"success":false,"error":{"code":"not_found","message":"gone"}}`},
		{"Unknown", teapot, 0, nil, errors.New("table runnerhub-events: throttled"),
			http.StatusTeapot, `{"success":false,"error":{"code":"unknown","message":"not a problem"}}`},
		{"Internal", httpjson.Internal(slog.New(slog.DiscardHandler)), 0, nil, errors.New("table runnerhub-events: throttled"),
			http.StatusInternalServerError, `{"success":false,"error":{"code":"internal","message":"internal error"}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := httpjson.Endpoint(c.unknown, func(*http.Request) (int, any, error) { return c.status, c.data, c.err })
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/x", nil))
			body, _ := io.ReadAll(w.Body)
			if w.Code != c.want || string(body) != c.body+"\n" {
				t.Errorf("answer %d %s, want %d %s", w.Code, body, c.want, c.body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

func TestProblemError(t *testing.T) {
	if got := httpjson.BadRequest("invalid_body", "name is required").Error(); got != "invalid_body: name is required" {
		t.Errorf("Error() = %q", got)
	}
}

// Messages go out as written: JSON answers are not HTML, so <, > and & are not escaped.
func TestErrorIsNotHTMLEscaped(t *testing.T) {
	w := httptest.NewRecorder()
	httpjson.Error(w, http.StatusUnauthorized, "unauthorized", "Authorization: Bearer <token> & more")
	if want := `"message":"Authorization: Bearer <token> & more"`; !strings.Contains(w.Body.String(), want) {
		t.Errorf("body %s, want %s", w.Body, want)
	}
}
