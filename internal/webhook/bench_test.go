package webhook

import (
	"fmt"
	"testing"
)

// BenchmarkIngestCPU measures what ingest spends per delivery before any I/O: verify
// the signature and extract the routing fields (validating the JSON on the way).
//
//	go test ./internal/webhook -run '^$' -bench . -benchmem
func BenchmarkIngestCPU(b *testing.B) {
	const secret = "benchmark-secret"
	p := &Parser{Verifier: NewVerifier(secret)}
	for _, name := range []string{"workflow_job.queued.json", "workflow_job.in_progress.json", "workflow_job.completed.json"} {
		body := readFixture(b, name)
		h := signedHeaders(secret, body)
		b.Run(fmt.Sprintf("%s/%dB", name, len(body)), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Parse(h, body); err != nil {
					b.Fatal(err)
				}
			}
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

// BenchmarkExtractRouting is the JSON scan alone.
func BenchmarkExtractRouting(b *testing.B) {
	body := readFixture(b, "workflow_job.queued.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ExtractRouting(body); err != nil {
			b.Fatal(err)
		}
	}
}
