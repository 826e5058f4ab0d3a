// Package livetest is the conformance suite of RunnerHub's live updates: every host
// (the local WebSocket hub, and the AWS WebSocket API as its Lambda handler, DynamoDB
// and apigatewaymanagementapi see it) must connect, subscribe, broadcast and forget
// connections the same way, observed from the client's side of the socket.
package livetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/live"
	"github.com/runnerhub/webhooks/internal/testenv/suite"
)

// Client is one connected client of the host under test.
type Client interface {
	// Send sends one text message to the server.
	Send(t testing.TB, text string)
	// Next returns the next message the client receives; it fails the test when none
	// comes within a few seconds.
	Next(t testing.TB) []byte
	// Close closes the connection as a client does (a close frame; $disconnect on AWS).
	Close(t testing.TB)
}

// Harness is one host, with fresh, empty state.
type Harness struct {
	// Hub is the host's hub (Registry, Sender and Access set), whose fan-out delivers
	// what commits announce.
	Hub *live.Hub
	// Token is a valid admin API token and ReadToken a valid read-only one;
	// Hub.Access.Tickets accepts tickets issued for either.
	Token, ReadToken string
	// Dial opens a connection with query as the URL's query string, as a client would.
	// A refused handshake returns a nil Client and the HTTP status the client saw.
	Dial func(t testing.TB, query url.Values) (Client, int)
	// Gone makes connection id (client c) vanish without a trace: its record stays,
	// as when API Gateway's $disconnect is lost, and sending to it fails the way the
	// platform reports a closed connection (API Gateway: 410 GoneException).
	Gone func(t testing.TB, c Client, id string)
}

// Run runs the suite; newHarness is called once per subtest.
func Run(t *testing.T, newHarness func(t *testing.T) *Harness) {
	suite.Run(t, newHarness, suite.Cases[*Harness]{
		{"connect requires a token or ticket", testConnect},
		{"a connection has its credentials' role", testRole},
		{"subscribe and unsubscribe report the subscription", testSubscribe},
		{"messages reach their rooms and global ones every subscriber", testRooms},
		{"unsubscribed rooms receive nothing", testUnsubscribe},
		{"malformed messages are answered and the connection stays open", testMalformed},
		{"subscriptions are bounded", testTooMany},
		{"a forgotten connection is told to reconnect", testUnknown},
		{"a gone connection is forgotten", testGone},
		{"expired records are ignored", testExpired},
		{"closing forgets the connection", testClose},
		{"large messages are trimmed", testTrimmed},
		{"concurrent subscriptions are all kept", testConcurrentUpdates},
		{"a broadcast is one post per connection", testCoalesced},
		{"the audience of a room is its subscribers and everything's", testAudience},
	})
}

// envelope is a received message.
type envelope struct {
	Event string          `json:"event"`
	Room  string          `json:"room"`
	Data  json.RawMessage `json:"data"`
	At    time.Time       `json:"at"`
}

func decode(t testing.TB, b []byte) envelope {
	t.Helper()
	var e envelope
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("received %q, not a message envelope: %v", b, err)
	}
	if e.At.IsZero() {
		t.Errorf("message %s has no \"at\"", b)
	}
	return e
}

type subscription struct {
	ConnectionID string   `json:"connectionId"`
	Role         string   `json:"role"`
	All          bool     `json:"all"`
	Repositories []string `json:"repositories"`
}

type errorData struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func send(t testing.TB, c Client, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	c.Send(t, string(b))
}

// request sends a request and decodes the reply, which must be event want.
func request[T any](t testing.TB, c Client, req map[string]any, want string) T {
	t.Helper()
	send(t, c, req)
	e := decode(t, c.Next(t))
	if e.Event != want {
		t.Fatalf("%v answered %s %s, want %s", req, e.Event, e.Data, want)
	}
	var v T
	if err := json.Unmarshal(e.Data, &v); err != nil {
		t.Fatalf("%s data %s: %v", e.Event, e.Data, err)
	}
	return v
}

func subscribe(t testing.TB, c Client, repos ...string) subscription {
	t.Helper()
	req := map[string]any{"action": "subscribe"}
	if repos != nil {
		req["repositories"] = repos
	}
	return request[subscription](t, c, req, live.EventSubscribed)
}

// connect opens a connection with the harness's token.
func connect(t testing.TB, h *Harness) Client {
	t.Helper()
	c, status := h.Dial(t, url.Values{"token": {h.Token}})
	if c == nil {
		t.Fatalf("connecting with a valid token: status %d", status)
	}
	return c
}

// connectSubscribed connects, subscribes to repos (nil: everything) and returns the
// client and its connection id.
func connectSubscribed(t testing.TB, h *Harness, repos ...string) (Client, string) {
	t.Helper()
	c := connect(t, h)
	s := subscribe(t, c, repos...)
	if s.ConnectionID == "" {
		t.Fatal("the subscribed reply carries no connectionId")
	}
	return c, s.ConnectionID
}

// expectOnly checks that c receives exactly want (encoded messages), in order, and
// nothing else: a ping's pong marks the end, since a connection's messages arrive in
// the order they were sent.
func expectOnly(t testing.TB, c Client, want ...[]byte) {
	t.Helper()
	send(t, c, map[string]any{"action": "ping"})
	var got [][]byte
	for {
		b := c.Next(t)
		if b[0] != '[' && decode(t, b).Event == live.EventPong {
			break
		}
		got = append(got, unbatch(t, b)...)
	}
	if !slices.EqualFunc(got, want, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Errorf("received\n%s\nwant\n%s", lines(got), lines(want))
	}
}

// unbatch splits a post into its messages: a JSON array of envelopes, or one envelope.
func unbatch(t testing.TB, post []byte) [][]byte {
	t.Helper()
	if post[0] != '[' {
		return [][]byte{post}
	}
	var batch []json.RawMessage
	if err := json.Unmarshal(post, &batch); err != nil {
		t.Fatalf("received %q, not a JSON array of messages: %v", post, err)
	}
	if len(batch) < 2 {
		t.Errorf("received an array of %d messages; one message goes alone", len(batch))
	}
	msgs := make([][]byte, len(batch))
	for i, m := range batch {
		msgs[i] = m
	}
	return msgs
}

func lines(msgs [][]byte) string {
	if len(msgs) == 0 {
		return "  (nothing)"
	}
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "  %s\n", m)
	}
	return b.String()
}

func encode(t testing.TB, m live.Message) []byte {
	t.Helper()
	b, err := live.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// record returns connection id's record, or false.
func record(t testing.TB, h *Harness, id string) (live.Connection, bool) {
	t.Helper()
	conns, err := h.Hub.Registry.List(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		if c.ID == id {
			return c, true
		}
	}
	return live.Connection{}, false
}

// waitForget waits until connection id has no record.
func waitForget(t testing.TB, h *Harness, id string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, ok := record(t, h, id); !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("connection %s is still recorded", id)
		}
	}
}

// age makes connection id's record a minute older, past the grace a just-connected
// connection gets when the platform calls it gone.
func age(t testing.TB, h *Harness, id string) live.Connection {
	t.Helper()
	c, ok := record(t, h, id)
	if !ok {
		t.Fatalf("connection %s is not recorded", id)
	}
	c.ConnectedAt = c.ConnectedAt.Add(-time.Minute)
	if err := h.Hub.Registry.Put(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func testConnect(t *testing.T, h *Harness) {
	// ticket issues a ticket for token, age ago.
	ticket := func(token string, age time.Duration) string {
		tickets := h.Hub.Access.Tickets
		if token != h.Token {
			tickets = live.NewTickets(token, "")
		}
		s, _, err := tickets.Issue(token, time.Now().Add(-age))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	query := func(kv ...string) func() url.Values {
		return func() url.Values {
			q := url.Values{}
			for i := 0; i < len(kv); i += 2 {
				q.Add(kv[i], kv[i+1])
			}
			return q
		}
	}
	tests := []struct {
		name  string
		query func() url.Values
		ok    bool
	}{
		{"token", query("token", h.Token), true},
		{"ticket", func() url.Values { return url.Values{"ticket": {ticket(h.Token, 0)}} }, true},
		{"a ticket is good for its whole minute", func() url.Values {
			return url.Values{"ticket": {ticket(h.Token, live.TicketTTL-5*time.Second)}}
		}, true},
		{"nothing", query(), false},
		{"wrong token", query("token", "rh_not-the-configured-token"), false},
		{"token in the ticket parameter", query("ticket", h.Token), false},
		{"expired ticket", func() url.Values { return url.Values{"ticket": {ticket(h.Token, live.TicketTTL+time.Second)}} }, false},
		{"ticket of another token", func() url.Values { return url.Values{"ticket": {ticket("rh_another-token-0123456789", 0)}} }, false},
		{"altered ticket", func() url.Values {
			valid := ticket(h.Token, 0)
			return url.Values{"ticket": {valid[:len(valid)-2] + flip(valid[len(valid)-2:])}}
		}, false},
		{"wrong token beside a valid ticket", func() url.Values {
			return url.Values{"token": {"rh_not-the-configured-token"}, "ticket": {ticket(h.Token, 0)}}
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := count(t, h)
			c, status := h.Dial(t, tc.query())
			switch {
			case tc.ok && c == nil:
				t.Fatalf("refused with %d, want connected", status)
			case !tc.ok && c != nil:
				c.Close(t)
				t.Fatal("connected, want 401")
			case !tc.ok:
				if status != http.StatusUnauthorized {
					t.Errorf("refused with %d, want 401", status)
				}
				if n := count(t, h); n != before {
					t.Errorf("%d connection records after a refused connection, want %d", n, before)
				}
				return
			}
			// Recorded by the time the client sees the connection open.
			if n := count(t, h); n != before+1 {
				t.Errorf("%d connection records, want %d", n, before+1)
			}
			expectOnly(t, c) // a new connection receives nothing until it subscribes
			id := subscribe(t, c, "octo-org/a").ConnectionID
			c.Close(t)
			waitForget(t, h, id)
		})
	}
}

// testRole: a read token's connection, and that of a ticket minted with it, may
// subscribe, and its record and replies carry the read role; an admin's carry admin.
func testRole(t *testing.T, h *Harness) {
	ticket := func(token string) string {
		s, _, err := h.Hub.Access.Tickets.Issue(token, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct {
		name  string
		query url.Values
		role  string
	}{
		{"read token", url.Values{"token": {h.ReadToken}}, "read"},
		{"ticket of a read token", url.Values{"ticket": {ticket(h.ReadToken)}}, "read"},
		{"admin token", url.Values{"token": {h.Token}}, "admin"},
		{"ticket of an admin token", url.Values{"ticket": {ticket(h.Token)}}, "admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, status := h.Dial(t, tc.query)
			if c == nil {
				t.Fatalf("refused with %d, want connected", status)
			}
			defer c.Close(t)
			got := subscribe(t, c, "octo-org/a")
			if got.Role != tc.role {
				t.Errorf("subscribed as %q, want %q", got.Role, tc.role)
			}
			if rec, ok := record(t, h, got.ConnectionID); !ok || rec.Role.String() != tc.role {
				t.Errorf("record %+v (found %v), want role %s", rec, ok, tc.role)
			}
		})
	}
}

// flip changes a base64url string without making it invalid base64url.
func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

func count(t testing.TB, h *Harness) int {
	t.Helper()
	conns, err := h.Hub.Registry.List(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return len(conns)
}

func testSubscribe(t *testing.T, h *Harness) {
	c := connect(t, h)
	defer c.Close(t)
	steps := []struct {
		req     map[string]any
		event   string
		all     bool
		repos   []string
		comment string
	}{
		{map[string]any{"action": "subscribe", "repositories": []string{"Octo-Org/Hello-World", "octo-org/other", "octo-org/hello-world"}},
			live.EventSubscribed, false, []string{"octo-org/hello-world", "octo-org/other"}, "lower-cased, sorted, unique"},
		{map[string]any{"action": "subscribe", "repositories": []string{"octo-org/third"}}, live.EventSubscribed, false,
			[]string{"octo-org/hello-world", "octo-org/other", "octo-org/third"}, "added to the others"},
		{map[string]any{"action": "subscribe"}, live.EventSubscribed, true,
			[]string{"octo-org/hello-world", "octo-org/other", "octo-org/third"}, "everything"},
		{map[string]any{"action": "unsubscribe", "repositories": []string{"OCTO-ORG/OTHER", "octo-org/never-subscribed"}},
			live.EventUnsubscribed, true, []string{"octo-org/hello-world", "octo-org/third"}, "one room less, still everything"},
		{map[string]any{"action": "unsubscribe"}, live.EventUnsubscribed, false, []string{}, "nothing"},
	}
	var id string
	for _, s := range steps {
		got := request[subscription](t, c, s.req, s.event)
		if id == "" {
			id = got.ConnectionID
		}
		if got.ConnectionID == "" || got.ConnectionID != id || got.All != s.all || !slices.Equal(got.Repositories, s.repos) {
			t.Fatalf("%v (%s) answered %+v, want connection %s, all %v, repositories %q", s.req, s.comment, got, id, s.all, s.repos)
		}
		rec, ok := record(t, h, id)
		if !ok || rec.All != s.all || !slices.Equal(rec.Repositories, slices.Clip(nonEmpty(s.repos))) {
			t.Fatalf("after %v the record is %+v (found %v), want all %v, repositories %q", s.req, rec, ok, s.all, s.repos)
		}
	}
}

func nonEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func testRooms(t *testing.T, h *Harness) {
	a, _ := connectSubscribed(t, h, "octo-org/a")
	b, _ := connectSubscribed(t, h, "octo-org/b", "octo-org/c")
	all, _ := connectSubscribed(t, h)
	idle := connect(t, h)
	at := time.Now().UTC().Truncate(time.Millisecond)
	inA := live.Message{Event: live.EventPush, Room: live.Room("Octo-Org/A"), At: at, Data: map[string]any{"ref": "refs/heads/main"}}
	inB := live.Message{Event: live.EventWebhook, Room: live.Room("octo-org/b"), At: at, Data: map[string]any{"event": "push"}}
	global := live.Message{Event: live.EventPoolStatus, At: at, Data: map[string]any{"pool": "linux", "pending": 1}}
	elsewhere := live.Message{Event: live.EventPing, Room: live.Room("octo-org/elsewhere"), At: at, Data: map[string]any{"zen": "z"}}
	if err := h.Hub.Broadcast(context.Background(), inA, inB, global, elsewhere); err != nil {
		t.Fatal(err)
	}
	expectOnly(t, a, encode(t, inA), encode(t, global))
	expectOnly(t, b, encode(t, inB), encode(t, global))
	expectOnly(t, all, encode(t, inA), encode(t, inB), encode(t, global), encode(t, elsewhere))
	expectOnly(t, idle)
	if e := decode(t, encode(t, inA)); e.Room != "repo:Octo-Org/A" || e.Event != "push-event" {
		t.Errorf("envelope %+v, want event push-event in room repo:Octo-Org/A", e)
	}
	for _, c := range []Client{a, b, all, idle} {
		c.Close(t)
	}
}

func testUnsubscribe(t *testing.T, h *Harness) {
	c, _ := connectSubscribed(t, h, "octo-org/a", "octo-org/b")
	defer c.Close(t)
	request[subscription](t, c, map[string]any{"action": "unsubscribe", "repositories": []string{"octo-org/a"}}, live.EventUnsubscribed)
	at := time.Now().UTC()
	inA := live.Message{Event: live.EventPush, Room: live.Room("octo-org/a"), At: at, Data: 1}
	inB := live.Message{Event: live.EventPush, Room: live.Room("octo-org/b"), At: at, Data: 2}
	if err := h.Hub.Broadcast(context.Background(), inA, inB); err != nil {
		t.Fatal(err)
	}
	expectOnly(t, c, encode(t, inB))
	request[subscription](t, c, map[string]any{"action": "unsubscribe"}, live.EventUnsubscribed)
	if err := h.Hub.Broadcast(context.Background(), inA, inB, live.Message{Event: live.EventPoolStatus, At: at}); err != nil {
		t.Fatal(err)
	}
	expectOnly(t, c) // not even global messages: it asked for nothing
}

func testMalformed(t *testing.T, h *Harness) {
	c, _ := connectSubscribed(t, h, "octo-org/a")
	defer c.Close(t)
	tests := []struct{ name, text string }{
		{"not JSON", "hello"},
		{"not an object", `["subscribe"]`},
		{"no action", `{"repositories": ["octo-org/a"]}`},
		{"unknown action", `{"action": "dance"}`},
		{"unknown field", `{"action": "subscribe", "repository": "octo-org/a"}`},
		{"not a full name", `{"action": "subscribe", "repositories": ["no-slash"]}`},
		{"empty list", `{"action": "unsubscribe", "repositories": []}`},
		{"repositories not a list", `{"action": "subscribe", "repositories": "octo-org/a"}`},
		{"two objects", `{"action": "ping"} {"action": "ping"}`},
		{"ping with repositories", `{"action": "ping", "repositories": ["octo-org/a"]}`},
		{"too large", `{"action": "subscribe", "repositories": ["` + strings.Repeat("a", live.MaxRequestBytes) + `/b"]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c.Send(t, tc.text)
			e := decode(t, c.Next(t))
			var d errorData
			if err := json.Unmarshal(e.Data, &d); err != nil || e.Event != live.EventError || d.Code != "bad_message" || d.Message == "" {
				t.Fatalf("answered %s %s, want an error event with code bad_message and a message", e.Event, e.Data)
			}
			expectOnly(t, c) // still open and answering
		})
	}
	// And the subscription is untouched.
	msg := live.Message{Event: live.EventPush, Room: live.Room("octo-org/a"), At: time.Now().UTC(), Data: 1}
	if err := h.Hub.Broadcast(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	expectOnly(t, c, encode(t, msg))
}

func testTooMany(t *testing.T, h *Harness) {
	c := connect(t, h)
	defer c.Close(t)
	repos := make([]string, live.MaxRepositories)
	for i := range repos {
		repos[i] = fmt.Sprintf("octo-org/repo-%03d", i)
	}
	if got := subscribe(t, c, repos...); len(got.Repositories) != live.MaxRepositories {
		t.Fatalf("subscribed to %d repositories, want %d", len(got.Repositories), live.MaxRepositories)
	}
	d := request[errorData](t, c, map[string]any{"action": "subscribe", "repositories": []string{"octo-org/one-more"}}, live.EventError)
	if d.Code != "bad_message" {
		t.Errorf("error code %q, want bad_message", d.Code)
	}
	if got := subscribe(t, c); !got.All || len(got.Repositories) != live.MaxRepositories {
		t.Errorf("subscribing to everything: %+v", got)
	}
}

func testUnknown(t *testing.T, h *Harness) {
	c, id := connectSubscribed(t, h, "octo-org/a")
	defer c.Close(t)
	if err := h.Hub.Registry.Delete(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	d := request[errorData](t, c, map[string]any{"action": "subscribe"}, live.EventError)
	if d.Code != "unknown_connection" {
		t.Errorf("error code %q, want unknown_connection", d.Code)
	}
	if _, ok := record(t, h, id); ok {
		t.Error("a subscribe request recreated a forgotten connection")
	}
}

func testGone(t *testing.T, h *Harness) {
	stays, _ := connectSubscribed(t, h)
	defer stays.Close(t)
	gone, id := connectSubscribed(t, h)
	age(t, h, id)
	h.Gone(t, gone, id)
	if _, ok := record(t, h, id); !ok {
		t.Fatal("Gone removed the record; it must stay for the broadcast to find")
	}
	msg := live.Message{Event: live.EventPoolStatus, At: time.Now().UTC(), Data: map[string]any{"pool": "linux"}}
	if err := h.Hub.Broadcast(context.Background(), msg); err != nil {
		t.Errorf("Broadcast: %v; a gone connection is not an error", err)
	}
	if _, ok := record(t, h, id); ok {
		t.Error("the gone connection is still recorded after a broadcast reached it")
	}
	expectOnly(t, stays, encode(t, msg))
}

func testExpired(t *testing.T, h *Harness) {
	c, id := connectSubscribed(t, h)
	defer c.Close(t)
	rec := age(t, h, id)
	rec.ExpiresAt = time.Now().Add(-time.Second)
	if err := h.Hub.Registry.Put(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if _, ok := record(t, h, id); ok {
		t.Fatal("List returns an expired record")
	}
	if err := h.Hub.Broadcast(context.Background(), live.Message{Event: live.EventPoolStatus, At: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	expectOnly(t, c)
	d := request[errorData](t, c, map[string]any{"action": "subscribe"}, live.EventError)
	if d.Code != "unknown_connection" {
		t.Errorf("subscribing on an expired record: error code %q, want unknown_connection", d.Code)
	}
}

func testClose(t *testing.T, h *Harness) {
	c, id := connectSubscribed(t, h)
	c.Close(t)
	waitForget(t, h, id)
}

func testTrimmed(t *testing.T, h *Harness) {
	c, _ := connectSubscribed(t, h)
	defer c.Close(t)
	big := live.Message{
		Event: live.EventWorkflowJob, Room: live.Room("octo-org/a"), At: time.Now().UTC(),
		Data:  map[string]any{"job": map[string]any{"id": 7, "name": strings.Repeat("x", 2*live.MaxMessageBytes)}},
		Brief: map[string]any{"trimmed": true, "href": live.JobHref(7), "job": map[string]any{"id": 7}},
	}
	if err := h.Hub.Broadcast(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	got := c.Next(t)
	e := decode(t, got)
	var brief struct {
		Trimmed bool   `json:"trimmed"`
		Href    string `json:"href"`
	}
	if err := json.Unmarshal(e.Data, &brief); err != nil || !brief.Trimmed || brief.Href != "/api/jobs/7" || len(got) > live.MaxMessageBytes {
		t.Errorf("received %d bytes with data %s; want the brief with trimmed and href, under %d bytes", len(got), e.Data, live.MaxMessageBytes)
	}
	expectOnly(t, c)
}

// testConcurrentUpdates checks the Registry port directly: subscriptions of one
// connection changed at the same time (separate Lambda invocations on AWS) all land.
func testConcurrentUpdates(t *testing.T, h *Harness) {
	ctx := context.Background()
	now := time.Now().UTC()
	id := "concurrent-" + fmt.Sprint(now.UnixNano())
	if err := h.Hub.Registry.Put(ctx, live.Connection{ID: id, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 8 {
		want = append(want, fmt.Sprintf("octo-org/repo-%d", i))
	}
	suite.Race(len(want), func(i int) {
		if _, err := h.Hub.Registry.Update(ctx, id, live.SubscriptionChange{Subscribe: true, Repositories: []string{want[i]}}, time.Now()); err != nil {
			t.Error(err)
		}
	})
	rec, ok := record(t, h, id)
	if !ok || !slices.Equal(rec.Repositories, want) {
		t.Errorf("record %+v (found %v), want repositories %q", rec, ok, want)
	}
	if _, err := h.Hub.Registry.Update(ctx, "never-connected", live.SubscriptionChange{Subscribe: true}, now); !errors.Is(err, live.ErrUnknownConnection) {
		t.Errorf("updating an unknown connection: %v, want ErrUnknownConnection", err)
	}
}

// testCoalesced: the messages of one broadcast that a connection wants reach it in one
// post, a JSON array of the envelopes in order; a single message goes as its envelope.
func testCoalesced(t *testing.T, h *Harness) {
	c, _ := connectSubscribed(t, h, "octo-org/a")
	defer c.Close(t)
	at := time.Now().UTC().Truncate(time.Millisecond)
	msgs := []live.Message{
		{Event: live.EventWorkflowJob, Room: live.Room("octo-org/a"), At: at, Data: map[string]any{"job": map[string]any{"id": 1}}},
		{Event: live.EventPush, Room: live.Room("octo-org/elsewhere"), At: at, Data: 0},
		{Event: live.EventWebhook, Room: live.Room("octo-org/a"), At: at, Data: map[string]any{"event": "workflow_job"}},
		{Event: live.EventPoolStatus, At: at, Data: map[string]any{"pool": "linux"}},
	}
	if err := h.Hub.Broadcast(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	want := "[" + string(encode(t, msgs[0])) + "," + string(encode(t, msgs[2])) + "," + string(encode(t, msgs[3])) + "]"
	if got := string(c.Next(t)); got != want {
		t.Errorf("received\n  %s\nwant one post\n  %s", got, want)
	}
	if err := h.Hub.Broadcast(context.Background(), msgs[1], msgs[2]); err != nil {
		t.Fatal(err)
	}
	if got := c.Next(t); string(got) != string(encode(t, msgs[2])) {
		t.Errorf("received %s, want the one message it wants, as its envelope", got)
	}
	expectOnly(t, c)
}

// testAudience checks the Registry port directly: a room's audience is its
// subscribers and those of everything, a message without a room reaches every
// connection subscribed to anything, and unsubscribing or forgetting a connection takes
// it out of its rooms.
func testAudience(t *testing.T, h *Harness) {
	ctx := context.Background()
	a, idA := connectSubscribed(t, h, "Octo-Org/A")
	defer a.Close(t)
	b, idB := connectSubscribed(t, h, "octo-org/b", "octo-org/a")
	defer b.Close(t)
	all, idAll := connectSubscribed(t, h)
	defer all.Close(t)
	idle := connect(t, h)
	defer idle.Close(t)
	ids := func(rooms ...string) []string {
		t.Helper()
		conns, err := h.Hub.Registry.Audience(ctx, rooms, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range conns {
			for _, room := range rooms {
				if !c.Wants(room) {
					continue
				}
				out = append(out, c.ID)
				break
			}
		}
		slices.Sort(out)
		return out
	}
	sorted := func(s ...string) []string { slices.Sort(s); return s }
	steps := []struct {
		name  string
		rooms []string
		want  []string
	}{
		{"one room, as GitHub spells it", []string{live.Room("octo-org/A")}, sorted(idA, idB, idAll)},
		{"another room", []string{live.Room("octo-org/b")}, sorted(idB, idAll)},
		{"a room nobody asked for", []string{live.Room("octo-org/nobody")}, []string{idAll}},
		{"two rooms", []string{live.Room("octo-org/a"), live.Room("octo-org/b")}, sorted(idA, idB, idAll)},
		{"no room", []string{""}, sorted(idA, idB, idAll)},
	}
	for _, s := range steps {
		if got := ids(s.rooms...); !slices.Equal(got, s.want) {
			t.Errorf("%s: audience %q, want %q", s.name, got, s.want)
		}
	}
	request[subscription](t, b, map[string]any{"action": "unsubscribe", "repositories": []string{"octo-org/a"}}, live.EventUnsubscribed)
	if got, want := ids(live.Room("octo-org/a")), sorted(idA, idAll); !slices.Equal(got, want) {
		t.Errorf("after b unsubscribed from octo-org/a: audience %q, want %q", got, want)
	}
	request[subscription](t, all, map[string]any{"action": "unsubscribe"}, live.EventUnsubscribed)
	if err := h.Hub.Registry.Delete(ctx, idA); err != nil {
		t.Fatal(err)
	}
	if got := ids(live.Room("octo-org/a")); len(got) != 0 {
		t.Errorf("after unsubscribing everything and forgetting a: audience %q, want nobody", got)
	}
	if got := ids(""); !slices.Equal(got, []string{idB}) {
		t.Errorf("no room: audience %q, want only %s", got, idB)
	}
}
