package standalone

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/ingest"
)

// attackConnections and attackDeclared are the memory-exhaustion attack of the hardening
// review: 200 connections, each declaring GitHub's maximum body of 25 MiB.
const (
	attackConnections = 200
	attackDeclared    = 25 << 20
	// heapBound is what the attack may add to the heap (HeapAlloc, sampled without forcing
	// a collection, so garbage counts). Each connection costs net/http about 10 KiB
	// (request, headers, buffered reader and writer) and ingest a body buffer that follows
	// what arrived: 4 KiB for a silent sender, 32 KiB after the trickle below.
	heapBound = 32 << 20
)

// Unauthenticated senders cannot exhaust memory: connections that declare 25 MiB and send
// nothing (without GitHub's headers), or send plausible headers and then trickle bytes,
// leave the heap within heapBound, and a signed delivery sent meanwhile still gets its 202.
func TestIngestMemoryUnderAttack(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 400 connections")
	}
	_, base := startStack(t, nil)
	addr := strings.TrimPrefix(base, "http://")
	peak := watchHeap(t)

	t.Run("declared 25 MiB, no GitHub headers", func(t *testing.T) {
		conns := dialAll(t, addr, func(i int) string {
			return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", ingest.Path, attackDeclared)
		})
		for i, c := range conns {
			// Answered at once: the body is never waited for.
			if status := readStatus(t, c, 5*time.Second); status != http.StatusBadRequest {
				t.Fatalf("connection %d: %d, want 400", i, status)
			}
		}
	})

	t.Run("plausible headers, trickled body", func(t *testing.T) {
		conns := dialAll(t, addr, func(i int) string {
			return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nContent-Type: application/json\r\n"+
				"X-GitHub-Event: workflow_job\r\nX-GitHub-Delivery: attack-%d\r\nX-Hub-Signature-256: sha256=%s\r\n\r\n",
				ingest.Path, attackDeclared, i, strings.Repeat("0", 64))
		})
		var stop atomic.Bool
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Go(func() { // 1 KiB every 100 ms: 20 KiB each by the end
				chunk := bytes.Repeat([]byte(" "), 1<<10)
				for range 20 {
					if stop.Load() {
						return
					}
					if _, err := c.Write(chunk); err != nil {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			})
		}
		time.Sleep(time.Second) // the attack is well under way

		body := fixture(t, "workflow_job.queued.json")
		req, _ := http.NewRequest(http.MethodPost, base+ingest.Path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "workflow_job")
		req.Header.Set("X-GitHub-Delivery", "genuine-1")
		req.Header.Set("X-Hub-Signature-256", signature(body))
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("a signed delivery during the attack: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("a signed delivery during the attack: %d, want 202", resp.StatusCode)
		}
		wg.Wait()
		stop.Store(true)
	})

	grown := peak()
	t.Logf("heap growth under attack: %.1f MiB (bound %d MiB)", float64(grown)/(1<<20), heapBound>>20)
	if grown > heapBound {
		t.Fatalf("the heap grew by %d MiB under attack, bound %d MiB", grown>>20, heapBound>>20)
	}
}

// watchHeap samples HeapAlloc every 10 ms from now on; the function it returns stops the
// sampling and reports the largest growth over the level at the start.
func watchHeap(t *testing.T) func() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > base && ms.HeapAlloc-base > peak.Load() {
				peak.Store(ms.HeapAlloc - base)
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-stopped
		return peak.Load()
	}
}

// dialAll opens attackConnections connections to addr, writes head(i) on connection i,
// and closes them when the test ends.
func dialAll(t *testing.T, addr string, head func(i int) string) []net.Conn {
	conns := make([]net.Conn, attackConnections)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, head(i)); err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	return conns
}

func readStatus(t *testing.T, c net.Conn, within time.Duration) int {
	c.SetReadDeadline(time.Now().Add(within))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// net/http buffers a request's headers whole before any handler runs; the local server
// caps them at maxHeaderBytes (net/http's default would let each connection hold 1 MB).
func TestOversizedHeadersAreRefused(t *testing.T) {
	_, base := startStack(t, nil)
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nX-Padding: %s\r\n\r\n", ingest.Path, strings.Repeat("p", 2*maxHeaderBytes))
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	if status := readStatus(t, c, 5*time.Second); status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("headers of %d KiB: %d, want 431", 2*maxHeaderBytes>>10, status)
	}
}
