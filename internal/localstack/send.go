package localstack

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

// Send posts body to url as GitHub would: signed with secret (unsigned if empty) and with
// the delivery headers. It returns the status and response body.
func Send(ctx context.Context, url, secret, event, deliveryID string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/runnerhub-send")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", deliveryID)
	req.Header.Set("X-GitHub-Hook-ID", "1")
	if secret != "" {
		req.Header.Set("X-Hub-Signature-256", webhook.Sign(secret, body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}
