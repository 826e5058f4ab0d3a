package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/runnerhub/webhooks/internal/testenv"
)

// TestLambdaDurations times warm invocations of the built webhook and processor
// bootstraps under aws-lambda-rie against moto, for the README's cost per million
// deliveries: each webhook event in events/ once (a delivery id of its own), then the
// processor on the batch the event source would make of what they queued. The emulator
// does not scale CPU with the template's 256 MB as Lambda does, and moto answers far
// more slowly than DynamoDB: these are wall-clock times dominated by moto's latency.
//
//	go test ./functions/processor -run LambdaDurations -v
func TestLambdaDurations(t *testing.T) {
	env, webhookFn, processorFn := startFunctions(t)
	root := testenv.RepoRoot(t)
	// Cold starts first, untimed: an event refused for its signature, an empty batch.
	webhookFn.Invoke(t, testenv.ReadEvent(t, "webhook-bad-signature.json"))
	processorFn.Invoke(t, []byte(`{"Records":[]}`))

	files, err := filepath.Glob(filepath.Join(root, "events", "webhook-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var report []string
	for _, file := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(file), "webhook-"), ".json")
		if name == "bad-signature" {
			continue
		}
		event := withDeliveryID(t, testenv.ReadEvent(t, filepath.Base(file)), "duration-"+name)
		start := time.Now()
		status := webhookFn.InvokeHTTP(t, event).StatusCode
		took := time.Since(start)
		if status != http.StatusAccepted {
			t.Fatalf("%s: webhook answered %d", name, status)
		}
		report = append(report, fmt.Sprintf("webhook   %-24s %6.1f ms", name, ms(took)))
	}
	sort.Strings(report)

	batch := sqsBatch(t, testenv.ReceiveAll(t, sqs.NewFromConfig(env.Config), env.EventsQueueURL), env.EventsQueueURL)
	start := time.Now()
	failed := processorFn.InvokeSQS(t, batch.payload)
	took := time.Since(start)
	if len(failed) > 0 {
		t.Fatalf("batch item failures %v", failed)
	}
	report = append(report, fmt.Sprintf("processor batch of %d              %6.1f ms (%.1f ms per delivery)", batch.n, ms(took), ms(took)/float64(batch.n)))
	t.Logf("warm invocations under aws-lambda-rie against moto:\n%s", strings.Join(report, "\n"))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// withDeliveryID sets the X-GitHub-Delivery header of an API Gateway event (the
// signature covers the body only).
func withDeliveryID(t *testing.T, event []byte, id string) []byte {
	t.Helper()
	var e map[string]any
	if err := json.Unmarshal(event, &e); err != nil {
		t.Fatal(err)
	}
	headers := e["headers"].(map[string]any)
	for k := range headers {
		if strings.EqualFold(k, "x-github-delivery") {
			headers[k] = id
		}
	}
	out, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type batchEvent struct {
	payload []byte
	n       int
}

// sqsBatch is the SQS event the event source mapping would make of messages.
func sqsBatch(t *testing.T, messages []sqstypes.Message, queueURL string) batchEvent {
	t.Helper()
	e := testenv.SQSEvent(messages, queueURL)
	if len(e.Records) == 0 {
		t.Fatal("the webhook function queued nothing")
	}
	payload, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return batchEvent{payload: payload, n: len(e.Records)}
}
