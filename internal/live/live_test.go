package live_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/auth"
	"github.com/runnerhub/webhooks/internal/live"
)

const (
	token      = "rh_live-test-token-0123456789"
	otherToken = "rh_live-other-token-0123456789"
)

func TestTickets(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	both := live.NewTickets(" "+token+" ,,"+otherToken, "")
	issue := func(tickets *live.Tickets, tok string, at time.Time) string {
		s, expires, err := tickets.Issue(tok, at)
		if err != nil {
			t.Fatal(err)
		}
		if want := at.Add(live.TicketTTL).Truncate(time.Second); !expires.Equal(want) {
			t.Errorf("expires %v, want %v", expires, want)
		}
		return s
	}
	fresh := issue(both, token, now)
	tests := []struct {
		name    string
		tickets *live.Tickets
		ticket  string
		at      time.Time
		want    bool
	}{
		{"fresh", both, fresh, now, true},
		{"one second before expiry", both, fresh, now.Add(live.TicketTTL - time.Second), true},
		{"at expiry", both, fresh, now.Add(live.TicketTTL), false},
		{"used before it was issued (clock skew beyond a minute)", both, fresh, now.Add(-2 * time.Second).Add(-live.TicketTTL), false},
		{"the other token's ticket", both, issue(both, otherToken, now), now, true},
		{"its token was removed", live.NewTickets(otherToken, ""), fresh, now, false},
		{"a token alone", both, token, now, false},
		{"empty", both, "", now, false},
		{"not base64", both, "!!" + fresh[2:], now, false},
		{"truncated", both, fresh[:len(fresh)-4], now, false},
		{"altered", both, fresh[:10] + string(rune(fresh[10]^1)) + fresh[11:], now, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.tickets.Role(tc.ticket, tc.at) == auth.RoleAdmin; got != tc.want {
				t.Errorf("accepted as admin: %v, want %v", got, tc.want)
			}
		})
	}
	if _, _, err := both.Issue("rh_never-configured-0123456789", now); err != live.ErrUnknownToken {
		t.Errorf("Issue for an unknown token: %v, want ErrUnknownToken", err)
	}
	if a, b := issue(both, token, now), issue(both, token, now); a == b {
		t.Error("two tickets issued at the same moment are equal: no nonce")
	}
}

func TestAccess(t *testing.T) {
	tokens, err := auth.ParseRoles(token, otherToken)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tickets := live.NewTickets(token, otherToken)
	ticket, _, err := tickets.Issue(token, now)
	if err != nil {
		t.Fatal(err)
	}
	readTicket, _, err := tickets.Issue(otherToken, now)
	if err != nil {
		t.Fatal(err)
	}
	full := live.Access{Tokens: tokens, Tickets: tickets}
	// The read token's role changed to admin since its ticket was issued: a ticket has
	// its token's role as configured now.
	promoted := live.Access{Tickets: live.NewTickets(token+","+otherToken, "")}
	tests := []struct {
		name   string
		access live.Access
		query  url.Values
		want   auth.Role
	}{
		{"token", full, url.Values{"token": {token}}, auth.RoleAdmin},
		{"ticket", full, url.Values{"ticket": {ticket}}, auth.RoleAdmin},
		{"read token", full, url.Values{"token": {otherToken}}, auth.RoleRead},
		{"ticket of a read token", full, url.Values{"ticket": {readTicket}}, auth.RoleRead},
		{"ticket of a token now admin", promoted, url.Values{"ticket": {readTicket}}, auth.RoleAdmin},
		{"neither", full, url.Values{"other": {token}}, auth.RoleNone},
		{"wrong token wins over a good ticket", full, url.Values{"token": {"x"}, "ticket": {ticket}}, auth.RoleNone},
		{"no token configured", live.Access{Tickets: tickets}, url.Values{"token": {token}}, auth.RoleNone},
		{"no tickets configured", live.Access{Tokens: tokens}, url.Values{"ticket": {ticket}}, auth.RoleNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.access.Role(tc.query, now); got != tc.want {
				t.Errorf("Role = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSubscriptionWants(t *testing.T) {
	some := live.Subscription{Repositories: []string{"octo-org/a", "octo-org/b"}}
	tests := []struct {
		name string
		sub  live.Subscription
		room string
		want bool
	}{
		{"its room", some, "repo:octo-org/a", true},
		{"its room in other case", some, "repo:Octo-Org/B", true},
		{"another room", some, "repo:octo-org/c", false},
		{"global", some, "", true},
		{"everything, any room", live.Subscription{All: true}, "repo:x/y", true},
		{"everything, global", live.Subscription{All: true}, "", true},
		{"nothing, global", live.Subscription{}, "", false},
		{"nothing, a room", live.Subscription{}, "repo:octo-org/a", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.sub.Wants(tc.room); got != tc.want {
				t.Errorf("Wants(%q) = %v, want %v", tc.room, got, tc.want)
			}
		})
	}
}

func TestChangeApply(t *testing.T) {
	ab := live.Subscription{Repositories: []string{"o/a", "o/b"}}
	tests := []struct {
		name   string
		from   live.Subscription
		change live.SubscriptionChange
		want   live.Subscription
	}{
		{"subscribe some", live.Subscription{}, live.SubscriptionChange{Subscribe: true, Repositories: []string{"o/b", "o/c"}},
			live.Subscription{Repositories: []string{"o/b", "o/c"}}},
		{"subscribe more", ab, live.SubscriptionChange{Subscribe: true, Repositories: []string{"o/a", "o/c"}},
			live.Subscription{Repositories: []string{"o/a", "o/b", "o/c"}}},
		{"subscribe everything keeps the rooms", ab, live.SubscriptionChange{Subscribe: true}, live.Subscription{All: true, Repositories: ab.Repositories}},
		{"unsubscribe one", ab, live.SubscriptionChange{Repositories: []string{"o/a", "o/z"}}, live.Subscription{Repositories: []string{"o/b"}}},
		{"unsubscribe the last", live.Subscription{Repositories: []string{"o/a"}}, live.SubscriptionChange{Repositories: []string{"o/a"}}, live.Subscription{}},
		{"unsubscribe everything", live.Subscription{All: true, Repositories: ab.Repositories}, live.SubscriptionChange{}, live.Subscription{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			from := live.Subscription{All: tc.from.All, Repositories: slices.Clone(tc.from.Repositories)}
			got := tc.change.Apply(from)
			if got.All != tc.want.All || !slices.Equal(got.Repositories, tc.want.Repositories) {
				t.Errorf("Apply = %+v, want %+v", got, tc.want)
			}
			if !slices.Equal(from.Repositories, tc.from.Repositories) {
				t.Errorf("Apply changed its argument: %v", from.Repositories)
			}
		})
	}
}

func TestChangeFits(t *testing.T) {
	full := make([]string, live.MaxRepositories-1)
	for i := range full {
		full[i] = "o/r" + strings.Repeat("x", i)
	}
	s := live.Subscription{Repositories: full}
	if !(live.SubscriptionChange{Subscribe: true, Repositories: []string{"o/new"}}).Fits(s) {
		t.Error("the last free place is refused")
	}
	if (live.SubscriptionChange{Subscribe: true, Repositories: []string{"o/new", "o/other"}}).Fits(s) {
		t.Error("one repository too many fits")
	}
	if !(live.SubscriptionChange{Subscribe: true}).Fits(s) || !(live.SubscriptionChange{Repositories: full}).Fits(s) {
		t.Error("subscribing to everything or unsubscribing must always fit")
	}
}

func TestEncode(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	big := strings.Repeat("x", live.MaxMessageBytes)
	tests := []struct {
		name    string
		msg     live.Message
		want    string // "" when Encode must fail
		trimmed bool
	}{
		{"small", live.Message{Event: "ping", Room: "repo:o/r", Data: map[string]int{"n": 1}, At: at, Brief: "unused"},
			`{"event":"ping","room":"repo:o/r","data":{"n":1},"at":"2024-05-01T12:00:00Z"}`, false},
		{"global, no data", live.Message{Event: "pong", At: at}, `{"event":"pong","at":"2024-05-01T12:00:00Z"}`, false},
		{"too large: its brief", live.Message{Event: "workflow-job", Data: big, At: at, Brief: live.Trimmed{Trimmed: true, Href: "/api/jobs/1"}},
			`{"event":"workflow-job","data":{"trimmed":true,"href":"/api/jobs/1"},"at":"2024-05-01T12:00:00Z"}`, true},
		{"too large without a brief", live.Message{Event: "push-event", Data: big, At: at}, "", false},
		{"too large even as a brief", live.Message{Event: "push-event", Data: big, Brief: big, At: at}, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := live.Encode(tc.msg)
			if tc.want == "" {
				if err == nil {
					t.Errorf("encoded %d bytes, want an error", len(b))
				}
				return
			}
			if err != nil || string(b) != tc.want {
				t.Errorf("Encode = %s, %v; want %s", b, err, tc.want)
			}
			if len(b) > live.MaxMessageBytes {
				t.Errorf("%d bytes exceed the limit", len(b))
			}
		})
	}
	// The limit is inclusive: a message of exactly MaxMessageBytes is sent whole.
	pad := live.Message{Event: "e", At: at}
	base, _ := json.Marshal(pad)
	pad.Data = strings.Repeat("y", live.MaxMessageBytes-len(base)-len(`,"data":""`))
	if b, err := live.Encode(pad); err != nil || len(b) != live.MaxMessageBytes {
		t.Errorf("a message of exactly the limit: %d bytes, %v", len(b), err)
	}
}
