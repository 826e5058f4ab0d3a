// Package dashboard serves the single-page dashboard at GET /: one HTML file with its
// script and styles inline, no build step. The page holds no data: it asks for the API
// token (or takes it from the URL fragment that `make run` prints, which never reaches
// the server), keeps it in session storage only, and reads everything through the
// authenticated API and WebSocket, falling back to polling when the socket drops.
package dashboard

import (
	_ "embed"
	"net/http"

	"github.com/runnerhub/webhooks/internal/httpapi"
)

//go:embed index.html
var page []byte

// Routes serves the page. It is public: the page is the same for everyone and carries
// no data.
func Routes() []httpapi.Route {
	return []httpapi.Route{{Method: http.MethodGet, Pattern: "/{$}", Public: true, Handler: http.HandlerFunc(serve)}}
}

func serve(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self' ws: wss:; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	_, _ = w.Write(page)
}
