package webhook

import (
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkIngestCPU measures what ingest spends per delivery before any I/O: check the
// headers, verify the signature and extract the routing fields (validating the JSON on
// the way), for every workflow_job fixture (7-11 KB, compact JSON as GitHub sends it).
//
//	go test ./internal/webhook -run '^$' -bench . -benchmem
func BenchmarkIngestCPU(b *testing.B) {
	const secret = "benchmark-secret"
	p := &Parser{Verifier: NewVerifier(secret)}
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "workflow_job.*.json"))
	for _, file := range files {
		name := filepath.Base(file)
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
