package standalone

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/runnerhub/webhooks/internal/live"
)

// TestLiveUpdates is the local stack end to end as a dashboard uses it: a ticket from
// POST /api/ws/ticket, a WebSocket on /ws, a subscription, and the messages a signed
// delivery causes once processed.
func TestLiveUpdates(t *testing.T) {
	const token = "rh_local-live-test-token-0123456789"
	_, base := startFleetStack(t, token)
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/ws"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("refused without credentials", func(t *testing.T) {
		for _, q := range []string{"", "?token=wrong-token-0123456789", "?ticket=forged"} {
			_, resp, err := websocket.Dial(ctx, wsURL+q, nil)
			if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s: %v, want 401", q, err)
			}
		}
		resp, err := http.Post(base+live.TicketPath, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("a ticket without a token: %d, want 401", resp.StatusCode)
		}
	})

	req, _ := http.NewRequest(http.MethodPost, base+live.TicketPath, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var answer live.TicketResponse
	err = json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if ticket := answer.Data; err != nil || resp.StatusCode != http.StatusOK || !answer.Success || ticket.Ticket == "" ||
		ticket.ExpiresIn != 60 || ticket.URL != "" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("ticket: %d %+v %v", resp.StatusCode, answer, err)
	}

	ws, _, err := websocket.Dial(ctx, wsURL+"?ticket="+answer.Data.Ticket, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	type message struct {
		Event string         `json:"event"`
		Room  string         `json:"room"`
		Data  map[string]any `json:"data"`
	}
	// next returns the next message; a post carries one, or a JSON array of them.
	var pending []message
	next := func() (event, room string, data map[string]any) {
		t.Helper()
		for len(pending) == 0 {
			_, b, err := ws.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != '[' {
				b = []byte("[" + string(b) + "]")
			}
			if err := json.Unmarshal(b, &pending); err != nil {
				t.Fatal(err)
			}
		}
		m := pending[0]
		pending = pending[1:]
		return m.Event, m.Room, m.Data
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"action":"subscribe","repositories":["codertocat/hello-world"]}`)); err != nil {
		t.Fatal(err)
	}
	if ev, _, data := next(); ev != live.EventSubscribed || !slices.Equal(toStrings(data["repositories"]), []string{"codertocat/hello-world"}) {
		t.Fatalf("subscribe answered %s %v", ev, data)
	}

	status, body, err := Send(ctx, base+"/api/webhooks/github", testSecret, "workflow_job", "live-1", fixture(t, "workflow_job.queued.json"))
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("delivery: %d %s %v", status, body, err)
	}
	const room = "repo:Codertocat/Hello-World"
	want := []struct{ event, room string }{{live.EventWorkflowJob, room}, {live.EventWebhook, room}, {live.EventPoolStatus, ""}}
	for _, w := range want {
		ev, r, data := next()
		if ev != w.event || r != w.room {
			t.Fatalf("received %s in %q (%v), want %s in %q", ev, r, data, w.event, w.room)
		}
		switch ev {
		case live.EventWorkflowJob:
			job, _ := data["job"].(map[string]any)
			if data["action"] != "queued" || job["id"] != float64(289782451) || job["pool"] != "ubuntu" {
				t.Errorf("workflow-job data %v", data)
			}
		case live.EventPoolStatus:
			if data["pool"] != "ubuntu" || data["pending"] != float64(1) {
				t.Errorf("pool-status data %v", data)
			}
		}
	}

	// A change no delivery caused is announced too: a runner registered through the API
	// takes the waiting job at once.
	register, _ := http.NewRequest(http.MethodPost, base+"/api/runners",
		strings.NewReader(`{"name":"u-1","pool":"ubuntu","labels":["ubuntu-latest"]}`))
	register.Header.Set("Authorization", "Bearer "+token)
	register.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(register)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("register runner: %v %v", resp, err)
	}
	resp.Body.Close()
	ev, r, data := next()
	job, _ := data["job"].(map[string]any)
	if ev != live.EventWorkflowJob || r != room || data["action"] != "allocation" || job["allocation"] != "reserved" {
		t.Fatalf("after registration: %s in %q: %v", ev, r, data)
	}
	if ev, _, data := next(); ev != live.EventPoolStatus || data["pool"] != "ubuntu" || data["pending"] != float64(0) {
		t.Fatalf("after registration: %s %v, want pool-status with nothing pending", ev, data)
	}

	// So is a pool created, replaced or deleted through the API, with the pool's counts.
	for _, change := range []struct{ method, body string }{
		{http.MethodPut, `{"labels":["ubuntu-latest"],"minIdle":1,"maxRunners":5}`},
		{http.MethodDelete, ""},
	} {
		if code, body := apiCall(t, base, token, change.method, "/api/pools/ubuntu", change.body); code/100 != 2 {
			t.Fatalf("%s pool: %d %s", change.method, code, body)
		}
		if ev, _, data := next(); ev != live.EventPoolStatus || data["pool"] != "ubuntu" || data["idle"] != float64(0) {
			t.Fatalf("after %s /api/pools/ubuntu: %s %v, want pool-status of ubuntu", change.method, ev, data)
		}
	}
}

func toStrings(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}
