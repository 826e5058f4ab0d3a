package localstack

import (
	"bytes"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/ingest"
	"github.com/runnerhub/webhooks/internal/webhook"
)

// BenchmarkLocalStackIngest is the load test: 32 concurrent connections over loopback each
// post signed ~8 KB workflow_job deliveries (every one a new delivery id) to a running local
// stack, which records each durably (group-committed fsync) before answering 202. It
// reports deliveries per second and the 99th percentile latency.
//
//	go test ./internal/localstack -run '^$' -bench LocalStackIngest -benchtime 20000x
func BenchmarkLocalStackIngest(b *testing.B) {
	const clients = 32
	s, err := Open(testConfig(b, b.TempDir(), nil), quietLog())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	url := serve(b, s) + ingest.Path
	body := fixture(b, "workflow_job.queued.json")
	sig := webhook.Sign(testSecret, body)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}

	var next atomic.Int64
	latencies := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-GitHub-Event", "workflow_job")
				req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("load-%d", n))
				req.Header.Set("X-Hub-Signature-256", sig)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
				latencies[c] = append(latencies[c], time.Since(t0))
				if resp.StatusCode != http.StatusAccepted {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	var all []time.Duration
	for _, l := range latencies {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if len(all) > 0 {
		b.ReportMetric(float64(len(all))/elapsed.Seconds(), "deliveries/s")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	}
}
