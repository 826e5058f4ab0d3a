package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/testenv"
)

// BenchmarkColdStart starts the built bootstrap under aws-lambda-rie once per iteration
// and invokes it once, as a cold start does, reporting the init phase (configuration,
// AWS clients, router) as the emulator measures it and the bootstrap's size. ns/op is
// the whole cold invocation: emulator start, process start, init and the first answer.
// Nothing is stored: the event is refused for its signature, so no AWS endpoint is needed.
//
//	go test ./functions/webhook -run '^$' -bench ColdStart -benchtime 20x
func BenchmarkColdStart(b *testing.B) {
	bootstrap := testenv.BuildFunction(b, "WebhookFunction")
	info, err := os.Stat(bootstrap)
	if err != nil {
		b.Fatal(err)
	}
	event, err := os.ReadFile(filepath.Join(testenv.RepoRoot(b), "events", "webhook-bad-signature.json"))
	if err != nil {
		b.Fatal(err)
	}
	env := []string{
		"AWS_ENDPOINT_URL=http://127.0.0.1:1", // never called
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"RUNNERHUB_EVENTS_TABLE=events",
		"RUNNERHUB_EVENTS_QUEUE_URL=http://127.0.0.1:1/000000000000/events",
		"RUNNERHUB_PAYLOAD_BUCKET=payloads",
		"GITHUB_WEBHOOK_SECRET=" + testenv.EventsSecret,
	}
	var inits time.Duration
	for b.Loop() {
		fn := testenv.StartLambda(b, bootstrap, env)
		invoke(b, fn, event, 401)
		inits += fn.InitDuration(b)
		fn.Stop()
	}
	b.ReportMetric(float64(inits.Microseconds())/1000/float64(b.N), "init-ms")
	b.ReportMetric(float64(info.Size())/(1<<20), "bootstrap-MiB")
}
