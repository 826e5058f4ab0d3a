// Package httpapi is RunnerHub's one HTTP router. The Lambda functions serve it through
// aws-lambda-go-api-proxy and the local stack serves it with net/http, so both hosts
// answer the same paths the same way.
//
// Each area of the API (ingest, deliveries, jobs and runners, ...) contributes Routes;
// New mounts them, wraps every non-public route in the authenticator, and answers
// unknown paths and wrong methods with JSON errors. The route list is also what the
// OpenAPI document is checked against.
package httpapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/runnerhub/webhooks/internal/httpjson"
)

// Route is one method and path pattern (net/http ServeMux syntax, e.g.
// "/api/jobs/{id}").
type Route struct {
	Method  string
	Pattern string
	Handler http.Handler
	// Public routes answer without authentication (the webhook, which has its own
	// signature check, health, and the dashboard page).
	Public bool
	// ReadOnly marks a route that changes nothing although its method is not GET (minting
	// a WebSocket ticket): read-only tokens may call it.
	ReadOnly bool
}

// Writes reports whether the route changes something: every method but GET and HEAD,
// unless the route is ReadOnly.
func (r Route) Writes() bool {
	return r.Method != http.MethodGet && r.Method != http.MethodHead && !r.ReadOnly
}

// Authenticator wraps handlers that need credentials; write says that the handler
// changes something, which read-only credentials may not.
type Authenticator interface {
	Require(h http.Handler, write bool) http.Handler
}

// New returns the router serving routes. auth may be nil only if every route is public.
func New(auth Authenticator, routes ...[]Route) http.Handler {
	mux := http.NewServeMux()
	methods := map[string][]string{} // pattern → allowed methods
	for _, r := range slices.Concat(routes...) {
		h := r.Handler
		if !r.Public {
			h = auth.Require(h, r.Writes())
		}
		mux.Handle(r.Method+" "+r.Pattern, h)
		methods[r.Pattern] = append(methods[r.Pattern], r.Method)
	}
	for pattern, allowed := range methods {
		allow := strings.Join(allowed, ", ")
		mux.HandleFunc(pattern, func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Allow", allow)
			httpjson.Error(w, http.StatusMethodNotAllowed, "method_not_allowed", req.URL.Path+" accepts "+allow)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		httpjson.Error(w, http.StatusNotFound, "not_found", "no such endpoint: "+req.Method+" "+req.URL.Path)
	})
	return mux
}
