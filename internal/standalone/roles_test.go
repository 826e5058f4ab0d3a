package standalone

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/runnerhub/webhooks/internal/auth"
	"github.com/runnerhub/webhooks/internal/live"
)

// pathParameter matches a route pattern's {name}.
var pathParameter = regexp.MustCompile(`\{[^}]+\}`)

// TestReadTokensOnlyRead calls every route of the stack with a read-only token: every
// one that changes something answers 403 with a JSON message (and changes nothing),
// every read and the WebSocket ticket are served, and the ticket's connection reads.
func TestReadTokensOnlyRead(t *testing.T) {
	const admin, read = "rh_roles-admin-token-0123456789", "rh_roles-read-token-0123456789"
	s, base := startStack(t, map[string]string{
		"RUNNERHUB_API_TOKENS":      admin,
		"RUNNERHUB_API_READ_TOKENS": read,
		"RUNNERHUB_POOLS":           `[{"name": "linux", "labels": ["linux"], "maxRunners": 2}]`,
	})
	call := func(method, path, token, body string) (int, string) {
		t.Helper()
		return apiCall(t, base, token, method, path, body)
	}
	writes := 0
	for _, r := range s.Routes {
		if r.Public {
			continue
		}
		path := pathParameter.ReplaceAllString(r.Pattern, "linux")
		status, body := call(r.Method, path, read, `{"labels": ["linux"], "name": "r1", "pool": "linux"}`)
		wantForbidden := r.Method != http.MethodGet && r.Pattern != live.TicketPath
		switch {
		case wantForbidden && (status != http.StatusForbidden || !strings.Contains(body, `"code":"forbidden"`)):
			t.Errorf("%s %s with a read token: %d %s, want 403 forbidden", r.Method, r.Pattern, status, body)
		case !wantForbidden && (status == http.StatusForbidden || status == http.StatusUnauthorized):
			t.Errorf("%s %s with a read token: %d %s, want it served", r.Method, r.Pattern, status, body)
		}
		if wantForbidden {
			writes++
		}
	}
	if writes < 8 {
		t.Errorf("only %d write routes checked", writes)
	}
	// Nothing the read token tried happened.
	if _, body := call(http.MethodGet, "/api/runners", admin, ""); strings.Contains(body, `"r1"`) {
		t.Errorf("a read token registered a runner: %s", body)
	}
	if _, body := call(http.MethodGet, "/api/pools", admin, ""); strings.Contains(body, `"source":"api"`) {
		t.Errorf("a read token changed a pool: %s", body)
	}

	// A read token's ticket opens a connection that may subscribe, with the read role.
	status, body := call(http.MethodPost, live.TicketPath, read, "")
	var ticket live.TicketResponse
	if err := json.Unmarshal([]byte(body), &ticket); err != nil || status != http.StatusOK {
		t.Fatalf("ticket for a read token: %d %s", status, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws?ticket="+ticket.Data.Ticket, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"action": "subscribe"}`)); err != nil {
		t.Fatal(err)
	}
	_, reply, err := ws.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Event string
		Data  struct{ Role string }
	}
	if err := json.Unmarshal(reply, &m); err != nil || m.Event != live.EventSubscribed || m.Data.Role != "read" {
		t.Errorf("subscribe with a read ticket: %s, want subscribed with role read", reply)
	}
}

// TestGeneratedTokenIsKeptAcrossStarts: without RUNNERHUB_API_TOKENS the local stack
// keeps the API token it generates in the data directory (owner-only), so a dashboard
// stays signed in across restarts; with it, nothing is written.
func TestGeneratedTokenIsKeptAcrossStarts(t *testing.T) {
	for _, tc := range []struct {
		name, tokens string
		kept         bool
	}{
		{"generated", "", true},
		{"configured", "rh_configured-token-0123456789", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(t, dir, map[string]string{"RUNNERHUB_API_TOKENS": tc.tokens})
			open := func() string {
				s, err := Open(cfg, quietLog())
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				return s.GeneratedToken
			}
			first, second := open(), open()
			info, err := os.Stat(filepath.Join(dir, TokenFile))
			if !tc.kept {
				if first != "" || !os.IsNotExist(err) {
					t.Fatalf("token %q, file %v (%v): want none with RUNNERHUB_API_TOKENS set", first, info, err)
				}
				return
			}
			if len(first) < auth.MinTokenLength || first != second {
				t.Fatalf("tokens %q then %q: want one token kept across starts", first, second)
			}
			if err != nil || info.Mode().Perm() != 0o600 {
				t.Fatalf("token file: %v %v, want mode 0600", info, err)
			}
		})
	}
}
