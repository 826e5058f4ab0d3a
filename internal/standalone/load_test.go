package standalone

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/ingest"
	"github.com/runnerhub/webhooks/internal/loadgen"
)

// BenchmarkLocalStackIngest is the load test: 32 concurrent connections over loopback each
// post signed ~7 KB workflow_job deliveries (every one a new delivery id) to a running local
// stack, which records each durably (group-committed fsync) before answering 202. It
// reports deliveries per second and the 99th percentile latency. `make load` measures the
// same against the bare HMAC-only handler in one run, and checks every delivery processed.
//
//	go test ./internal/standalone -run '^$' -bench LocalStackIngest -benchtime 20000x
func BenchmarkLocalStackIngest(b *testing.B) {
	_, base := startStack(b, nil)
	url := base + ingest.Path
	b.ReportAllocs()
	b.ResetTimer()
	res, err := loadgen.Run(context.Background(), loadgen.Options{
		URL: url, Secret: testSecret, Event: "workflow_job", Body: fixture(b, "workflow_job.queued.json"),
		Connections: 32, Count: b.N, IDPrefix: "load-",
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if res.Failed() > 0 || res.Statuses[http.StatusAccepted] != b.N {
		b.Fatalf("statuses %v, want %d × 202", res.Statuses, b.N)
	}
	b.ReportMetric(res.Rate(), "deliveries/s")
	b.ReportMetric(float64(res.Quantile(0.99).Microseconds())/1000, "p99-ms")
}

// A small load run measures both servers and finds every accepted delivery processed in
// the store it opens again.
func TestLoadVerifiesEveryDelivery(t *testing.T) {
	var out strings.Builder
	report, err := Load(context.Background(), testConfig(t, t.TempDir(), nil), LoadOptions{
		Body: fixture(t, "workflow_job.queued.json"), Event: "workflow_job",
		Connections: 4, Count: 50, Rounds: 2, Timeout: time.Minute, Out: &out,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, &out)
	}
	if report.Accepted != 100 || report.Verified != 100 || len(report.Processed) != 100 {
		t.Fatalf("accepted %d, verified %d, timed %d: want 100 each\n%s", report.Accepted, report.Verified, len(report.Processed), &out)
	}
	if len(report.Bare) != 2 || report.Ratio() <= 0 || !strings.Contains(out.String(), "ratio") {
		t.Fatalf("no comparison with the bare handler:\n%s", &out)
	}
}

// The verification fails for an accepted delivery that is missing or not yet processed.
func TestLoadVerificationFindsUnprocessed(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(testConfig(t, dir, nil), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	rec := &delivery.Record{Key: delivery.Key{HookID: "1", DeliveryID: "received-only"}, Event: "ping", ReceivedAt: time.Now(), State: delivery.Received, Payload: []byte(`{}`)}
	if _, err := s.db.Store().Create(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, id := range []string{"received-only", "never-sent"} {
		if _, err := verifyFinished(context.Background(), dir, []string{id}); err == nil {
			t.Errorf("delivery %s passed verification", id)
		}
	}
}
