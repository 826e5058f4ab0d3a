// Package localhub serves RunnerHub's live updates in the local stack: GET /ws upgrades
// to a WebSocket (coder/websocket) after checking the token or ticket in the query, and
// the connections are this package's live.Sender, in an in-memory live.Registry. The
// protocol, the subscription rules and the fan-out are live.Hub's, exactly as on AWS.
package localhub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/runnerhub/webhooks/internal/auth"
	"github.com/runnerhub/webhooks/internal/httpapi"
	"github.com/runnerhub/webhooks/internal/httpjson"
	"github.com/runnerhub/webhooks/internal/live"
)

// Path is where the local stack serves WebSockets.
const Path = "/ws"

// sendBuffer is how many messages may wait for one slow client. A client that falls
// further behind is disconnected rather than allowed to hold up broadcasts (which only
// ever enqueue here) or the memory of the process.
const sendBuffer = 256

// writeTimeout bounds writing one message to a client.
const writeTimeout = 10 * time.Second

// Server is the local WebSocket host.
type Server struct {
	hub *live.Hub

	mu     sync.Mutex
	conns  map[string]*conn
	closed bool
	wg     sync.WaitGroup
}

var _ live.Sender = (*Server)(nil)

// New returns a server whose live.Hub is h with this package's Registry and the server
// itself as Sender.
func New(h live.Hub) *Server {
	s := &Server{conns: map[string]*conn{}}
	h.Registry, h.Sender = NewRegistry(), s
	if h.Log == nil {
		h.Log = slog.Default()
	}
	s.hub = &h
	return s
}

// Hub is the broadcaster (and the engine's live-update subscriber).
func (s *Server) Hub() *live.Hub { return s.hub }

// Routes serves GET /ws. The route is public in the router's terms because a browser
// cannot send an Authorization header with a WebSocket: the handler checks the token or
// ticket query parameter itself and answers 401 before upgrading.
func (s *Server) Routes() []httpapi.Route {
	return []httpapi.Route{{Method: http.MethodGet, Pattern: Path, Handler: http.HandlerFunc(s.serveWS), Public: true}}
}

// conn is one client connection.
type conn struct {
	id   string
	ws   *websocket.Conn
	out  chan []byte
	done chan struct{} // closed when the connection is to end
	once sync.Once
	// code and reason are the close status the writer sends; 0 closes without one (the
	// client is gone already).
	code   websocket.StatusCode
	reason string
}

// end asks the writer to close the connection, with the first status given.
func (c *conn) end(code websocket.StatusCode, reason string) {
	c.once.Do(func() {
		c.code, c.reason = code, reason
		close(c.done)
	})
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	role := s.hub.Role(r.URL.Query())
	if role == auth.RoleNone {
		httpjson.Error(w, http.StatusUnauthorized, "unauthorized", "a valid API token (?token=) or ticket (?ticket=, from POST "+live.TicketPath+") is required")
		return
	}
	// Recorded, and registered as a Sender, before the handshake completes: the client
	// never sees an open connection that is not recorded (API Gateway likewise completes
	// the handshake only after $connect), and a broadcast that finds the record finds
	// the connection, whose messages wait in its queue until the writer starts.
	c := &conn{id: newID(), out: make(chan []byte, sendBuffer), done: make(chan struct{})}
	if !s.add(c) {
		httpjson.Error(w, http.StatusServiceUnavailable, "stopping", "the server is stopping")
		return
	}
	ctx := context.WithoutCancel(r.Context())
	now := time.Now().UTC()
	if err := s.hub.Connect(ctx, live.Connection{ID: c.id, ConnectedAt: now, ExpiresAt: now.Add(live.ConnectionTTL), Role: role}); err != nil {
		s.remove(c)
		httpjson.Error(w, http.StatusInternalServerError, "unavailable", "cannot record the connection")
		return
	}
	// The server's read and write timeouts are for requests; a WebSocket outlives them,
	// and the deadlines they set stay on the connection after the upgrade.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// Any origin: credentials travel in the URL, never in cookies, so a page of
		// another origin gains nothing it did not already hold (no cross-site hijacking).
		OriginPatterns: []string{"*"},
	})
	if err != nil { // Accept has answered
		c.end(0, "")
		s.remove(c)
		_ = s.hub.Disconnect(ctx, c.id)
		return
	}
	// API Gateway takes client messages up to its message limit and closes the
	// connection (1009) beyond it; a message over MaxRequestBytes but within the limit
	// is answered with an error, as on AWS.
	ws.SetReadLimit(live.MaxMessageBytes)
	c.ws = ws
	if !s.startWriter(c, now.Add(live.ConnectionTTL)) {
		_ = ws.Close(websocket.StatusGoingAway, "server stopping")
		s.remove(c)
		_ = s.hub.Disconnect(ctx, c.id)
		return
	}
	s.read(ctx, c)
}

// read hands each client message to the hub until the connection ends.
func (s *Server) read(ctx context.Context, c *conn) {
	defer func() {
		c.end(0, "")
		s.remove(c)
		_ = s.hub.Disconnect(ctx, c.id)
	}()
	for {
		typ, data, err := c.ws.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			data = []byte("binary message") // answered as malformed, like any non-JSON text
		}
		if err := s.hub.HandleMessage(ctx, c.id, data); err != nil && !errors.Is(err, live.ErrGone) {
			s.hub.Log.Warn("answering a WebSocket message failed", "connection_id", c.id, "error", err)
		}
	}
}

// write sends queued messages, and closes the connection when asked to or when it
// expires, as API Gateway does after 2 hours.
func (s *Server) write(c *conn, expires time.Time) {
	expiry := time.NewTimer(time.Until(expires))
	defer expiry.Stop()
	for {
		select {
		case b := <-c.out:
			ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
			err := c.ws.Write(ctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				c.end(0, "")
			}
		case <-expiry.C:
			c.end(websocket.StatusGoingAway, "connection expired: reconnect")
		case <-c.done:
			if c.code == 0 {
				_ = c.ws.CloseNow()
			} else {
				_ = c.ws.Close(c.code, c.reason)
			}
			return
		}
	}
}

// Send implements live.Sender: it queues, never waits for the client.
func (s *Server) Send(_ context.Context, id string, data []byte) error {
	s.mu.Lock()
	c := s.conns[id]
	s.mu.Unlock()
	if c == nil {
		return live.ErrGone
	}
	select {
	case <-c.done:
		return live.ErrGone
	case c.out <- data:
		return nil
	default:
		c.end(websocket.StatusTryAgainLater, "too slow: reconnect")
		return fmt.Errorf("%w: client too slow", live.ErrGone)
	}
}

// startWriter starts c's writer unless the server is stopping (Close is waiting for
// the writers then, and none may be added).
func (s *Server) startWriter(c *conn, expires time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Go(func() { s.write(c, expires) })
	return true
}

func (s *Server) add(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c.id] = c
	return true
}

func (s *Server) remove(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns[c.id] == c {
		delete(s.conns, c.id)
	}
}

// Count is how many connections are open.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Close ends every connection (the HTTP server's Shutdown does not: they were
// hijacked), refuses new ones, and waits until they are closed.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.end(websocket.StatusGoingAway, "server stopping")
	}
	s.wg.Wait() // the writers close their connections in parallel
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
