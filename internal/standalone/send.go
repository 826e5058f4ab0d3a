package standalone

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/runnerhub/webhooks/internal/webhook"
)

// DefaultHookID is the X-GitHub-Hook-ID the send command and Send use unless told
// otherwise: GitHub always sends one, and a delivery's id in the API is
// <hookId>:<deliveryId>.
const DefaultHookID = "1"

// EventFromFile names the event of a testdata file: "workflow_job.queued.json" →
// "workflow_job".
func EventFromFile(path string) string {
	name, _, _ := strings.Cut(filepath.Base(path), ".")
	return name
}

// NewDeliveryID returns a random GUID like the ones GitHub puts in X-GitHub-Delivery.
func NewDeliveryID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Delivery is one delivery posted as GitHub would post it.
type Delivery struct {
	URL string
	// Secret signs the body; empty sends it unsigned.
	Secret string
	Event  string
	// DeliveryID is X-GitHub-Delivery, HookID X-GitHub-Hook-ID (none when empty).
	DeliveryID, HookID string
	Body               []byte
}

// Post sends d and returns the status and the response body.
func (d Delivery) Post(ctx context.Context) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/runnerhub-send")
	req.Header.Set("X-GitHub-Event", d.Event)
	req.Header.Set("X-GitHub-Delivery", d.DeliveryID)
	if d.HookID != "" {
		req.Header.Set("X-GitHub-Hook-ID", d.HookID)
	}
	if d.Secret != "" {
		req.Header.Set("X-Hub-Signature-256", webhook.Sign(d.Secret, d.Body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// Send posts body to url as GitHub would: signed with secret (unsigned if empty), with
// the delivery headers and hook DefaultHookID. It returns the status and response body.
func Send(ctx context.Context, url, secret, event, deliveryID string, body []byte) (int, []byte, error) {
	return Delivery{URL: url, Secret: secret, Event: event, DeliveryID: deliveryID, HookID: DefaultHookID, Body: body}.Post(ctx)
}
