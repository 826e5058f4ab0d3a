package loadgen

import (
	"context"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/runnerhub/webhooks/internal/webhook"
)

// The deliveries carry the bodies made before the run, the n-th delivery the n-th body,
// each signed for itself; a run cannot send more deliveries than it has bodies.
func TestBodiesMadeBeforeTheRun(t *testing.T) {
	const secret = "load-secret"
	var mu sync.Mutex
	got := map[string]string{} // delivery id → body
	verifier := webhook.NewVerifier(secret)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !verifier.Valid(r.Header.Get("X-Hub-Signature-256"), body) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		got[r.Header.Get("X-GitHub-Delivery")] = string(body)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	bodies := [][]byte{[]byte(`{"n":1}`), []byte(`{"n":2}`), []byte(`{"n":3}`)}
	tests := []struct {
		name    string
		count   int
		wantErr string
	}{
		{name: "every body", count: 3},
		{name: "the first bodies", count: 2},
		{name: "more deliveries than bodies", count: 4, wantErr: "4 deliveries to send, 3 bodies"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clear(got)
			prefix := strings.ReplaceAll(tt.name, " ", "-") + "-"
			res, err := Run(context.Background(), Options{
				URL: srv.URL, Secret: secret, Event: "ping", Body: []byte(`{"unused":true}`), Bodies: bodies,
				Connections: 2, Count: tt.count, IDPrefix: prefix,
			})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Failed() > 0 {
				t.Fatalf("statuses %v, want %d × 202", res.Statuses, tt.count)
			}
			want := map[string]string{}
			for n := 1; n <= tt.count; n++ {
				want[ID(prefix, n)] = string(bodies[n-1])
			}
			if !maps.Equal(got, want) {
				t.Fatalf("received %v, want %v", got, want)
			}
		})
	}
}
