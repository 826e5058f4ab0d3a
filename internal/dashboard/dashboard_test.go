package dashboard

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/runnerhub/webhooks/internal/httpapi"
)

func TestServesPageWithoutData(t *testing.T) {
	h := httpapi.New(nil, Routes())
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	body := w.Body.String()
	for _, want := range []string{"<title>RunnerHub webhooks</title>", `id="queue"`, `id="pools"`, `id="runners"`, `id="events"`, `id="jobs"`, `id="events-chart"`, `id="queue-chart"`, `id="conclusions"`, `id="diagnosis"`, "sessionStorage"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	// Only the root is the page; other paths stay JSON 404s.
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/index.html", nil))
	if w.Code != http.StatusNotFound {
		t.Fatalf("GET /index.html: %d", w.Code)
	}
}
