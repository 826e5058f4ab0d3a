package localhub_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/runnerhub/webhooks/internal/auth"
	"github.com/runnerhub/webhooks/internal/httpapi"
	"github.com/runnerhub/webhooks/internal/live"
	"github.com/runnerhub/webhooks/internal/live/livetest"
	"github.com/runnerhub/webhooks/internal/live/localhub"
)

// testReadToken is the read-only token of the tests.
const testReadToken = "rh_localhub-read-token-0123456789"

const testToken = "rh_localhub-test-token-0123456789"

func TestConformance(t *testing.T) {
	livetest.Run(t, newHarness)
}

// newHarness serves a hub through the router, as the local stack does.
func newHarness(t *testing.T) *livetest.Harness {
	tokens, err := auth.ParseRoles(testToken, testReadToken)
	if err != nil {
		t.Fatal(err)
	}
	srv := localhub.New(live.Hub{
		Access: live.Access{Tokens: tokens, Tickets: live.NewTickets(testToken, testReadToken)},
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	web := httptest.NewServer(httpapi.New(tokens, srv.Routes()))
	t.Cleanup(func() {
		srv.Close()
		web.Close()
	})
	wsURL := "ws" + strings.TrimPrefix(web.URL, "http") + localhub.Path
	return &livetest.Harness{
		Hub:   srv.Hub(),
		Token: testToken, ReadToken: testReadToken,
		Dial: func(t testing.TB, query url.Values) (livetest.Client, int) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, wsURL+"?"+query.Encode(), nil)
			if err != nil {
				if resp == nil {
					t.Fatalf("dialing %s: %v", wsURL, err)
				}
				return nil, resp.StatusCode
			}
			c.SetReadLimit(2 * live.MaxMessageBytes)
			return &client{c: c}, 101
		},
		Gone: func(t testing.TB, c livetest.Client, id string) {
			// The socket dies without a close frame; the server forgets it. The record is
			// then put back, as a record whose $disconnect was lost stays on AWS.
			rec := recordOf(t, srv.Hub(), id)
			_ = c.(*client).c.CloseNow()
			for deadline := time.Now().Add(5 * time.Second); stillListed(t, srv.Hub(), id); time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the server did not notice the dropped connection")
				}
			}
			if err := srv.Hub().Registry.Put(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// listed returns the hub's unexpired connection records.
func listed(t testing.TB, h *live.Hub) []live.Connection {
	t.Helper()
	conns, err := h.Registry.List(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return conns
}

func recordOf(t testing.TB, h *live.Hub, id string) live.Connection {
	t.Helper()
	conns := listed(t, h)
	i := slices.IndexFunc(conns, func(c live.Connection) bool { return c.ID == id })
	if i < 0 {
		t.Fatalf("connection %s is not recorded", id)
	}
	return conns[i]
}

func stillListed(t testing.TB, h *live.Hub, id string) bool {
	return slices.ContainsFunc(listed(t, h), func(c live.Connection) bool { return c.ID == id })
}

// client is a coder/websocket client, as a dashboard would use the endpoint.
type client struct {
	c *websocket.Conn
}

func (c *client) Send(t testing.TB, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.c.Write(ctx, websocket.MessageText, []byte(text)); err != nil {
		t.Fatalf("sending: %v", err)
	}
}

func (c *client) Next(t testing.TB) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	typ, b, err := c.c.Read(ctx)
	if err != nil {
		t.Fatalf("receiving: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("received a %v message, want text", typ)
	}
	return b
}

func (c *client) Close(testing.TB) { _ = c.c.Close(websocket.StatusNormalClosure, "") }

// A client that stops reading is disconnected once its queue is full, instead of
// holding up broadcasts (which never wait) or growing the process's memory.
func TestSlowClientIsDisconnected(t *testing.T) {
	h := newHarness(t)
	c, status := h.Dial(t, url.Values{"token": {testToken}})
	if c == nil {
		t.Fatalf("connecting: %d", status)
	}
	c.Send(t, `{"action":"subscribe"}`)
	c.Next(t)
	big := live.Message{Event: live.EventPoolStatus, At: time.Now().UTC(), Data: strings.Repeat("x", 100_000)}
	start := time.Now()
	for range 400 { // 40 MB: more than the queue and the socket buffers hold
		if err := h.Hub.Broadcast(context.Background(), big); err != nil {
			t.Fatal(err)
		}
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("broadcasting to a client that does not read took %v", elapsed)
	}
	ws := c.(*client).c
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			if got := websocket.CloseStatus(err); got != websocket.StatusTryAgainLater {
				t.Errorf("connection ended with %v (status %v), want close status %v", err, got, websocket.StatusTryAgainLater)
			}
			break
		}
	}
	for deadline := time.Now().Add(5 * time.Second); len(listed(t, h.Hub)) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the slow client is still recorded")
		}
	}
}
