// Package httpapi is RunnerHub's one HTTP router. The Lambda functions serve it through
// aws-lambda-go-api-proxy and the local stack serves it with net/http, so both hosts
// answer the same paths the same way.
package httpapi

import (
	"net/http"

	"github.com/runnerhub/webhooks/internal/httpjson"
	"github.com/runnerhub/webhooks/internal/ingest"
)

// Routes are the handlers a host provides; nil ones are not served by that host.
type Routes struct {
	Ingest  http.Handler // POST /api/webhooks/github
	Metrics http.Handler // GET /metrics
}

// New returns the router. Unknown paths and wrong methods get JSON errors like every
// other failure.
func New(r Routes) http.Handler {
	mux := http.NewServeMux()
	if r.Ingest != nil {
		mux.Handle(ingest.Path, allow(http.MethodPost, r.Ingest))
	}
	if r.Metrics != nil {
		mux.Handle("/metrics", allow(http.MethodGet, r.Metrics))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		httpjson.Error(w, http.StatusNotFound, "not_found", "no such endpoint: "+req.Method+" "+req.URL.Path)
	})
	return mux
}

func allow(method string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", method)
			httpjson.Error(w, http.StatusMethodNotAllowed, "method_not_allowed", r.URL.Path+" accepts "+method+" only")
			return
		}
		h.ServeHTTP(w, r)
	})
}
