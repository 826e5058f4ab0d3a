package ingest_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/runnerhub/webhooks/internal/ingest"
	"github.com/runnerhub/webhooks/internal/storage/embedded"
	"github.com/runnerhub/webhooks/internal/webhook"
)

// The Handler is the webhook endpoint: it answers 202 only once the delivery is recorded
// and queued. Here it runs on the embedded store and queue, as the local stack does; the
// Lambda function gives it DynamoDB, S3 and SQS instead.
func ExampleHandler() {
	dir, err := os.MkdirTemp("", "ingest-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	db, err := embedded.Open(filepath.Join(dir, "runnerhub.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	h := &ingest.Handler{
		Parser:       &webhook.Parser{Verifier: webhook.NewVerifier("webhook-secret")},
		Store:        db.Store(),
		Queue:        db.Queue(5),
		MaxBodyBytes: 25 << 20,
		Log:          slog.New(slog.DiscardHandler),
		Now:          time.Now,
	}

	body := []byte(`{"zen":"Design for failure.","hook_id":1}`)
	req := httptest.NewRequest(http.MethodPost, ingest.Path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "ping")
	req.Header.Set("X-GitHub-Delivery", "d-1")
	req.Header.Set("X-Hub-Signature-256", webhook.Sign("webhook-secret", body))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))

	req = httptest.NewRequest(http.MethodPost, ingest.Path, bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "ping") // no delivery id, no signature: refused unread
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))
	// Output:
	// 202 {"success":true,"message":"pong","deliveryId":"d-1"}
	// 400 {"success":false,"error":{"code":"missing_delivery","message":"X-GitHub-Delivery header is required"}}
}
