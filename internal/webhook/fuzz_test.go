package webhook

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse drives the verify-and-parse entry point with arbitrary bodies and header
// values. Properties: it never panics; a refusal is always a *Rejection with a 4xx/5xx
// status; the scanner accepts exactly what encoding/json accepts as an object (both
// directions: a false rejection would lose a delivery) and reads the same summary fields;
// a signed payload is refused as malformed only when encoding/json refuses it too.
// Run longer with: go test ./internal/webhook -run '^$' -fuzz FuzzParse
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
		checkAgainstEncodingJSON(t, body)

		h := Headers{Event: event, DeliveryID: "d-1", ContentType: contentType, Signature: "sha256=" + strings.Repeat("0", 64)}
		if sign {
			h.Signature = Sign(secret, body)
		}
		d, err := p.Parse(h, body)
		if err != nil {
			var rej *Rejection
			if !errors.As(err, &rej) || rej.Status < 400 || rej.Message == "" {
				t.Fatalf("refusal is not a Rejection with a status and message: %#v", err)
			}
			if _, isObject := decodeObject(d.Payload); rej.Reason == "malformed_json" && isObject {
				t.Fatalf("refused as malformed a payload encoding/json reads as an object: %v", err)
			}
			return
		}
		if !sign {
			t.Fatal("accepted a delivery with a wrong signature")
		}
		checkAgainstEncodingJSON(t, d.Payload)
	})
}
