package webhook

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzParse drives the verify-and-parse entry point with arbitrary bodies and header
// values. Properties: it never panics; a refusal is always a *Rejection with a 4xx/5xx
// status; anything accepted is valid JSON whose routing fields match encoding/json's
// reading of it. Run longer with: go test ./internal/webhook -run '^$' -fuzz FuzzParse
func FuzzParse(f *testing.F) {
	for _, name := range []string{"workflow_job.queued.json", "ping.json", "push.json"} {
		f.Add(readFixture(f, name), "workflow_job", "application/json", true)
	}
	for _, c := range scannerCases {
		f.Add([]byte(c), "push", "application/json", true)
	}
	f.Add([]byte("payload=%7B%22action%22%3A%22queued%22%7D"), "workflow_job", "application/x-www-form-urlencoded", true)
	f.Add([]byte(`{"action":"x"}`), "ping", "text/plain", false)

	const secret = "fuzz-secret"
	p := &Parser{Verifier: NewVerifier(secret)}
	f.Fuzz(func(t *testing.T, body []byte, event, contentType string, sign bool) {
		h := Headers{Event: event, DeliveryID: "d-1", ContentType: contentType, Signature: "sha256=00"}
		if sign {
			h.Signature = Sign(secret, body)
		}
		d, err := p.Parse(h, body)
		if err != nil {
			var rej *Rejection
			if !errors.As(err, &rej) || rej.Status < 400 || rej.Message == "" {
				t.Fatalf("refusal is not a Rejection with a status and message: %#v", err)
			}
			return
		}
		if !sign {
			t.Fatal("accepted a delivery with a wrong signature")
		}
		// A map, not a struct: encoding/json matches struct fields case-insensitively.
		var want map[string]any
		if err := json.Unmarshal(d.Payload, &want); err != nil {
			t.Fatalf("accepted a payload encoding/json rejects: %v", err)
		}
		if s, ok := want["action"].(string); ok && s != d.Action {
			t.Fatalf("action %q, encoding/json reads %q", d.Action, s)
		}
		repo, _ := want["repository"].(map[string]any)
		if s, ok := repo["full_name"].(string); ok && s != d.Repository {
			t.Fatalf("repository %q, encoding/json reads %q", d.Repository, s)
		}
	})
}
