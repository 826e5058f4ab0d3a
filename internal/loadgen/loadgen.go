// Package loadgen posts signed webhook deliveries to a server over many keep-alive
// connections and measures what came back: the rate, the latency quantiles and the
// statuses. It drives both the local stack's load command (functions/local load) and its
// benchmark, and provides the bare HMAC-only handler they are compared against.
package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnerhub/webhooks/internal/webhook"
)

// Options say what to send and how hard.
type Options struct {
	URL    string
	Secret string
	Event  string
	Body   []byte
	// Bodies, when set, are the deliveries' bodies instead (the n-th delivery's is
	// Bodies[n-1], signed for it), made before the run so that making them is not timed.
	Bodies      [][]byte
	Connections int
	// Count bounds the deliveries sent (at most len(Bodies) with Bodies); the run also
	// ends at Deadline (zero: none).
	Count    int
	Deadline time.Time
	// Rate, when positive, paces deliveries at that many per second (open loop: each is
	// timed from when it was due, so a stalled server shows in the latencies); zero sends
	// as fast as the connections answer (closed loop).
	Rate float64
	// IDPrefix starts every delivery id; the n-th delivery is IDPrefix + n, n from 1.
	IDPrefix string
	// Sent, when set, is told each delivery's id and when it was due, before it is sent.
	Sent func(id string, due time.Time)
}

// Result is what a run measured.
type Result struct {
	Sent     int
	Statuses map[int]int // status code → count; 0 counts transport errors
	Elapsed  time.Duration
	// Latencies of the 2xx answers, sorted.
	Latencies []time.Duration
	// IDs of the deliveries answered 2xx.
	Accepted []string
}

// Rate is the 2xx answers per second.
func (r *Result) Rate() float64 { return float64(len(r.Latencies)) / r.Elapsed.Seconds() }

// Failed counts the answers that were not 2xx, transport errors included.
func (r *Result) Failed() int { return r.Sent - len(r.Latencies) }

// Quantile returns the q-quantile (0 < q ≤ 1) of the 2xx latencies.
func (r *Result) Quantile(q float64) time.Duration { return Quantile(r.Latencies, q) }

// Quantile returns the q-quantile of sorted durations (zero for none).
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*q))]
}

// ID is the n-th delivery id of a run with prefix.
func ID(prefix string, n int) string { return fmt.Sprintf("%s%d", prefix, n) }

// Run sends deliveries until opts.Count are sent, opts.Deadline passes or ctx ends.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Connections <= 0 || opts.Count <= 0 {
		return nil, fmt.Errorf("loadgen: want positive connections and count, got %d and %d", opts.Connections, opts.Count)
	}
	if opts.Bodies != nil && opts.Count > len(opts.Bodies) {
		return nil, fmt.Errorf("loadgen: %d deliveries to send, %d bodies", opts.Count, len(opts.Bodies))
	}
	if !opts.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, opts.Deadline)
		defer cancel()
	}
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: opts.Connections, MaxConnsPerHost: opts.Connections, DisableCompression: true,
	}}
	defer client.CloseIdleConnections()
	sig := webhook.Sign(opts.Secret, opts.Body)

	var next atomic.Int64
	start := time.Now()
	// due is when the n-th delivery should go out: now for a closed loop.
	due := func(n int64) time.Time {
		if opts.Rate <= 0 {
			return time.Now()
		}
		return start.Add(time.Duration(float64(n-1) / opts.Rate * float64(time.Second)))
	}
	type conn struct {
		statuses  map[int]int
		latencies []time.Duration
		accepted  []string
	}
	conns := make([]conn, opts.Connections)
	var wg sync.WaitGroup
	for c := range conns {
		conns[c].statuses = map[int]int{}
		wg.Go(func() {
			mine := &conns[c]
			for ctx.Err() == nil {
				n := next.Add(1)
				if n > int64(opts.Count) {
					return
				}
				at := due(n)
				if wait := time.Until(at); wait > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(wait):
					}
				}
				id := ID(opts.IDPrefix, int(n))
				if opts.Sent != nil {
					opts.Sent(id, at)
				}
				body, bodySig := opts.Body, sig
				if opts.Bodies != nil {
					body = opts.Bodies[n-1]
					bodySig = webhook.Sign(opts.Secret, body)
				}
				status := post(ctx, client, opts, id, body, bodySig)
				mine.statuses[status]++
				if status >= 200 && status < 300 {
					mine.latencies = append(mine.latencies, time.Since(at))
					mine.accepted = append(mine.accepted, id)
				}
			}
		})
	}
	wg.Wait()
	res := &Result{Statuses: map[int]int{}, Elapsed: time.Since(start)}
	for _, c := range conns {
		for status, n := range c.statuses {
			res.Statuses[status] += n
			res.Sent += n
		}
		res.Latencies = append(res.Latencies, c.latencies...)
		res.Accepted = append(res.Accepted, c.accepted...)
	}
	slices.Sort(res.Latencies)
	return res, nil
}

// post sends one delivery and returns its status (0: it did not get one).
func post(ctx context.Context, client *http.Client, opts Options, id string, body []byte, sig string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, opts.URL, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/runnerhub-load")
	req.Header.Set("X-GitHub-Event", opts.Event)
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-GitHub-Hook-ID", "1")
	req.Header.Set("X-Hub-Signature-256", sig)
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	// Read to the end, or the connection is not reused and every request pays a dial.
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// BareHandler is the ceiling the local stack is measured against: it reads the body and
// checks its HMAC, and answers 202 or 401, nothing more.
func BareHandler(secret string) http.Handler {
	v := webhook.NewVerifier(secret)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		if !v.Valid(r.Header.Get("X-Hub-Signature-256"), body) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"success":true}`)
	})
}
