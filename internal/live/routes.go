package live

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/runnerhub/webhooks/internal/auth"
	"github.com/runnerhub/webhooks/internal/httpapi"
	"github.com/runnerhub/webhooks/internal/httpjson"
)

// TicketPath issues WebSocket tickets.
const TicketPath = "/api/ws/ticket"

// Ticket is what POST /api/ws/ticket answers, as the management API does:
// {"success": true, "data": {...}}.
type Ticket struct {
	Ticket    string    `json:"ticket"`
	ExpiresAt time.Time `json:"expiresAt"`
	ExpiresIn int       `json:"expiresIn"` // seconds
	// URL is the WebSocket URL to add ?ticket= to, when it is not this host's /ws (on
	// AWS the WebSocket API has a host of its own).
	URL string `json:"url,omitempty"`
}

// TicketResponse is the success envelope of POST /api/ws/ticket.
type TicketResponse struct {
	Success bool   `json:"success"`
	Data    Ticket `json:"data"`
}

// ClientURL is the URL clients connect to for a WebSocket API management endpoint
// (https://{apiId}.execute-api.{region}.amazonaws.com/{stage} → wss://...), "" for "".
func ClientURL(endpoint string) string {
	if rest, ok := strings.CutPrefix(endpoint, "https://"); ok {
		return "wss://" + rest
	}
	if rest, ok := strings.CutPrefix(endpoint, "http://"); ok {
		return "ws://" + rest
	}
	return endpoint
}

// TicketRoutes serves POST /api/ws/ticket behind the router's authentication: a
// browser, which cannot set an Authorization header on a WebSocket, trades its token for
// a ticket it may put in the WebSocket URL. wsURL is the WebSocket URL announced, empty
// for the same host's /ws.
func TicketRoutes(tickets *Tickets, wsURL string, now func() time.Time) []httpapi.Route {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ticket, expires, err := tickets.Issue(auth.FromRequest(r), now())
		if errors.Is(err, ErrUnknownToken) {
			// The router let the token in, so RUNNERHUB_API_TOKENS and the tickets' keys
			// disagree: a configuration bug, not the caller's.
			httpjson.Error(w, http.StatusInternalServerError, "ticket_unavailable", "no ticket key for this token")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		httpjson.Write(w, http.StatusOK, TicketResponse{Success: true, Data: Ticket{
			Ticket: ticket, ExpiresAt: expires.UTC(), ExpiresIn: int(TicketTTL / time.Second), URL: wsURL,
		}})
	})
	// Minting a ticket changes nothing: a read-only token may, and its tickets read.
	return []httpapi.Route{{Method: http.MethodPost, Pattern: TicketPath, Handler: h, ReadOnly: true}}
}
