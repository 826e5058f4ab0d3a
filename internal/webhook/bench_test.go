package webhook

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkIngestCPU measures what ingest spends per delivery before any I/O: check the
// headers, verify the signature and extract the summary fields (validating the JSON on
// the way), for every workflow_job fixture (7-11 KB, compact JSON as GitHub sends it).
//
//	go test ./internal/webhook -run '^$' -bench . -benchmem
func BenchmarkIngestCPU(b *testing.B) {
	const secret = "benchmark-secret"
	p := &Parser{Verifier: NewVerifier(secret)}
	forEachWorkflowJob(b, func(b *testing.B, body []byte) {
		h := signedHeaders(secret, body)
		for b.Loop() {
			if _, err := p.Parse(h, body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// forEachWorkflowJob runs bench as a sub-benchmark per workflow_job fixture, named after
// the file and its size, with bytes and allocations reported.
func forEachWorkflowJob(b *testing.B, bench func(b *testing.B, body []byte)) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "workflow_job.*.json"))
	for _, file := range files {
		name := filepath.Base(file)
		body := readFixture(b, name)
		b.Run(fmt.Sprintf("%s/%dB", name, len(body)), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			bench(b, body)
		})
	}
}

// BenchmarkHMAC is the floor: the signature check alone.
func BenchmarkHMAC(b *testing.B) {
	body := readFixture(b, "workflow_job.queued.json")
	v := NewVerifier("benchmark-secret")
	sig := Sign("benchmark-secret", body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if !v.Valid(sig, body) {
			b.Fatal("invalid")
		}
	}
}

// BenchmarkSummarize is the JSON scan alone.
func BenchmarkSummarize(b *testing.B) {
	forEachWorkflowJob(b, func(b *testing.B, body []byte) {
		for b.Loop() {
			if _, err := Summarize(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkIngestBreakdown splits the ingest CPU path into the HMAC and the scan, timing
// small batches of each in turn so that all three figures see the same machine speed
// (this benchmark's VM can run twice as slowly from one minute to the next). It reports
// each in ns per delivery and the whole path as a multiple of the HMAC alone.
//
//	go test ./internal/webhook -run '^$' -bench IngestBreakdown
func BenchmarkIngestBreakdown(b *testing.B) {
	const secret, batch = "benchmark-secret", 20
	p := &Parser{Verifier: NewVerifier(secret)}
	forEachWorkflowJob(b, func(b *testing.B, body []byte) {
		b.SetBytes(0) // one op is a round of batches, so a rate per op would mislead
		h := signedHeaders(secret, body)
		var hmacTime, scanTime, parseTime time.Duration
		timeBatch := func(total *time.Duration, step func() bool) {
			start := time.Now()
			for range batch {
				if !step() {
					b.Fatal("delivery refused")
				}
			}
			*total += time.Since(start)
		}
		n := 0
		for b.Loop() {
			timeBatch(&hmacTime, func() bool { return p.Verifier.Valid(h.Signature, body) })
			timeBatch(&scanTime, func() bool { _, err := Summarize(body); return err == nil })
			timeBatch(&parseTime, func() bool { _, err := p.Parse(h, body); return err == nil })
			n += batch
		}
		b.ReportMetric(float64(hmacTime.Nanoseconds())/float64(n), "hmac-ns")
		b.ReportMetric(float64(scanTime.Nanoseconds())/float64(n), "scan-ns")
		b.ReportMetric(float64(parseTime.Nanoseconds())/float64(n), "ingest-ns")
		b.ReportMetric(float64(parseTime)/float64(hmacTime), "ingest/hmac")
	})
}
