package ingest_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/ingest"
)

// untouchable is a request body that fails the test if anything reads it.
type untouchable struct{ t *testing.T }

func (u untouchable) Read([]byte) (int, error) {
	u.t.Error("the body of a request refused on its headers was read")
	return 0, io.EOF
}

// A request its headers condemn is answered without reading a byte of its body, whatever
// length it declares.
func TestRefusedOnHeadersReadsNothing(t *testing.T) {
	body := fixtureBody(t, "workflow_job.queued.json")
	cases := []struct {
		name   string
		edit   func(h map[string]string)
		length int64
		status int
		reason string
	}{
		{"no GitHub headers", func(h map[string]string) { clear(h) }, 25 << 20, 400, "missing_event"},
		{"missing delivery", func(h map[string]string) { delete(h, "X-GitHub-Delivery") }, 25 << 20, 400, "missing_delivery"},
		{"missing signature", func(h map[string]string) { delete(h, "X-Hub-Signature-256") }, 25 << 20, 401, "missing_signature"},
		{"signature not sha256 hex", func(h map[string]string) { h["X-Hub-Signature-256"] = "sha1=abc" }, 25 << 20, 401, "bad_signature"},
		{"missing content type", func(h map[string]string) { delete(h, "Content-Type") }, 25 << 20, 415, "unsupported_content_type"},
		{"text/plain", func(h map[string]string) { h["Content-Type"] = "text/plain" }, 25 << 20, 415, "unsupported_content_type"},
		{"declared too large", nil, 25 << 20, 413, "body_too_large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			h := signed(body, "workflow_job", "n-1")
			if c.edit != nil {
				c.edit(h)
			}
			req := httptest.NewRequest(http.MethodPost, ingest.Path, untouchable{t})
			req.ContentLength = c.length
			for k, v := range h {
				req.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			f.handler.ServeHTTP(w, req)
			if w.Code != c.status || !strings.Contains(w.Body.String(), `"code":"`+c.reason+`"`) {
				t.Fatalf("got %d %s, want %d %s", w.Code, w.Body, c.status, c.reason)
			}
		})
	}
}

// stalled is a body that has sent nothing yet: its first Read reports on reading and
// then waits for the test to end it.
type stalled struct {
	reading chan<- struct{}
	end     <-chan struct{}
}

func (s stalled) Read([]byte) (int, error) {
	s.reading <- struct{}{}
	<-s.end
	return 0, errors.New("connection closed")
}

// Bodies being read share one budget of buffered bytes. Buffers follow what arrived, not
// what was declared: stalled requests declaring 25 MiB each hold only a first small
// buffer. Past the budget the answer is 503 with Retry-After and nothing is written;
// once the stalled requests end, their bytes are free again.
func TestBodyBytesInFlightAreCapped(t *testing.T) {
	f := newFixture(t)
	f.handler.MaxBodyBytes = 25 << 20
	f.handler.MaxBodyBytesInFlight = 16 << 10 // four first buffers of 4 KiB
	body := fixtureBody(t, "workflow_job.queued.json")
	reading, end := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	stalledStatus := make([]int, 4)
	for i := range stalledStatus {
		req := httptest.NewRequest(http.MethodPost, ingest.Path, stalled{reading: reading, end: end})
		req.ContentLength = 25 << 20
		for k, v := range signed(body, "workflow_job", fmt.Sprint("stalled-", i)) {
			req.Header.Set(k, v)
		}
		wg.Go(func() {
			w := httptest.NewRecorder()
			f.handler.ServeHTTP(w, req)
			stalledStatus[i] = w.Code
		})
		<-reading
	}

	req := httptest.NewRequest(http.MethodPost, ingest.Path, bytes.NewReader(body))
	for k, v := range signed(body, "workflow_job", "over-budget") {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, req)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" ||
		!strings.Contains(w.Body.String(), `"code":"busy"`) {
		t.Fatalf("over the budget: got %d %v %s, want 503 busy with Retry-After", w.Code, w.Header(), w.Body)
	}
	if f.rec.creates != 0 {
		t.Fatal("a delivery refused for the budget was written")
	}

	close(end)
	wg.Wait()
	for i, status := range stalledStatus {
		if status != http.StatusBadRequest {
			t.Errorf("stalled request %d: %d, want 400 (body never arrived)", i, status)
		}
	}
	if got := f.post(t, body, signed(body, "workflow_job", "after")); got.status != http.StatusAccepted {
		t.Fatalf("after the stalled requests ended: %d %v", got.status, got.body)
	}
}

// A body that stops arriving is cut off at BodyReadTimeout: GitHub sends the whole body at
// once, so nothing legitimate waits that long.
func TestSlowBodyIsCutOff(t *testing.T) {
	f := newFixture(t)
	f.handler.BodyReadTimeout = 300 * time.Millisecond
	srv := httptest.NewServer(f.handler)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := fixtureBody(t, "workflow_job.queued.json")
	var head strings.Builder
	fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n", ingest.Path, len(body))
	for k, v := range signed(body, "workflow_job", "slow-1") {
		fmt.Fprintf(&head, "%s: %s\r\n", k, v)
	}
	head.WriteString("\r\n")
	if _, err := io.WriteString(conn, head.String()); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(body[:100]); err != nil { // and then nothing more
		t.Fatal(err)
	}
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || time.Since(start) > 3*time.Second {
		t.Fatalf("got %d after %v, want 400 soon after the 300 ms deadline", resp.StatusCode, time.Since(start))
	}
	if f.rec.creates != 0 {
		t.Fatal("a cut-off body was written")
	}
}
