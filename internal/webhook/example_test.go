package webhook_test

import (
	"fmt"

	"github.com/runnerhub/webhooks/internal/webhook"
)

// A Verifier checks X-Hub-Signature-256 over the exact bytes received, against the current
// secret and, during a rotation, the previous one.
func ExampleVerifier_Valid() {
	body := []byte(`{"zen":"Keep it logically awesome."}`)
	v := webhook.NewVerifier("new-secret", "old-secret")

	fmt.Println(v.Valid(webhook.Sign("new-secret", body), body))
	fmt.Println(v.Valid(webhook.Sign("old-secret", body), body))
	fmt.Println(v.Valid(webhook.Sign("stranger", body), body))
	// Output:
	// true
	// true
	// false
}

// A Parser judges a delivery's headers before its body is read (Admit), then the
// signature and the payload (Verify); Parse does both for a body already in memory.
func ExampleParser() {
	p := &webhook.Parser{Verifier: webhook.NewVerifier("secret")}
	body := []byte(`{"action":"queued","repository":{"full_name":"octo/repo"},"workflow_job":{"id":1}}`)
	h := webhook.Headers{
		Event:       "workflow_job",
		DeliveryID:  "72d3162e-cc78-11e3-81ab-4c9367dc0958",
		Signature:   webhook.Sign("secret", body),
		ContentType: "application/json",
	}

	admitted, err := p.Admit(h)
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := p.Verify(admitted, body)
	fmt.Println(d.Event, d.Action, d.Repository, err)

	h.Signature = ""
	_, err = p.Admit(h)
	fmt.Println(err)
	// Output:
	// workflow_job queued octo/repo <nil>
	// missing_signature: X-Hub-Signature-256 header is required
}
