package standalone

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"time"

	"github.com/runnerhub/webhooks/internal/api/deliveries"
	"github.com/runnerhub/webhooks/internal/config"
	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/ingest"
	"github.com/runnerhub/webhooks/internal/loadgen"
	"github.com/runnerhub/webhooks/internal/logging"
	"github.com/runnerhub/webhooks/internal/storage/embedded"
)

// LoadOptions configure a load run (functions/local load, make load).
type LoadOptions struct {
	Body  []byte // one delivery, sent again and again under new delivery ids
	Event string
	// DistinctJobs gives each workflow_job delivery a job of its own (workflow_job.id
	// edited, so re-serialised and signed per delivery) instead of all being about one.
	DistinctJobs bool
	Connections  int
	// Count is the deliveries per round and server; Rounds alternate the bare handler
	// and the local stack, so that both see the same machine.
	Count  int
	Rounds int
	// Rate, when positive, paces the local stack at that many deliveries per second for
	// Duration instead (and skips the bare handler): the latency mode.
	Rate     float64
	Duration time.Duration
	// Timeout bounds the whole run, the wait for processing included.
	Timeout time.Duration
	Out     io.Writer
}

// loadSecret signs the load run's deliveries, on both servers.
const loadSecret = "runnerhub-load-secret"

// LoadReport is what a load run measured.
type LoadReport struct {
	Bare, Stack []*loadgen.Result
	// Processed are the times from each delivery's receipt (when it was due to be sent)
	// to its committed processing, sorted.
	Processed []time.Duration
	// Verified counts the accepted deliveries found recorded and finished in the store
	// once it was closed and opened again.
	Accepted, Verified int
}

// Ratio is the local stack's rate over the bare handler's, over all rounds.
func (r *LoadReport) Ratio() float64 { return rate(r.Stack) / rate(r.Bare) }

func rate(results []*loadgen.Result) float64 {
	var n int
	var elapsed time.Duration
	for _, res := range results {
		n, elapsed = n+len(res.Latencies), elapsed+res.Elapsed
	}
	return float64(n) / elapsed.Seconds()
}

// LoadCommand is `load [flags]`: the load test, the bare HMAC-only handler and the local
// stack under the same deliveries, or with -rate the local stack alone at a steady pace
// (make load, make latency). -h prints the flags and returns flag.ErrHelp.
func LoadCommand(ctx context.Context, cfg config.Config, args []string, out, errOut io.Writer) error {
	fs := newFlags("load", "load [flags]", errOut)
	file := fs.String("file", "testdata/workflow_job.queued.json", "the delivery to send, again and again under new delivery ids")
	opts := LoadOptions{Out: out}
	fs.IntVar(&opts.Connections, "connections", 32, "concurrent keep-alive connections")
	fs.IntVar(&opts.Count, "count", 20000, "deliveries per round and server")
	fs.IntVar(&opts.Rounds, "rounds", 3, "rounds, each the bare handler then the local stack")
	fs.Float64Var(&opts.Rate, "rate", 0, "deliveries per second to the local stack alone (latency mode); 0: as fast as answered")
	fs.DurationVar(&opts.Duration, "duration", 30*time.Second, "how long -rate lasts")
	fs.BoolVar(&opts.DistinctJobs, "distinct-jobs", false, "give each delivery a job of its own (default: all about the file's job)")
	fs.DurationVar(&opts.Timeout, "timeout", 5*time.Minute, "bound on the whole run")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof -top)")
	blockProfile := fs.String("blockprofile", "", "write a blocking profile of the run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *blockProfile != "" {
		runtime.SetBlockProfileRate(int(time.Microsecond))
		defer writeProfile("block", *blockProfile, errOut)
	}
	body, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	opts.Body, opts.Event = body, EventFromFile(*file)
	_, err = Load(ctx, cfg, opts)
	return err
}

// writeProfile writes the named runtime profile to path; a failure is reported to errOut,
// not returned, since the run it profiles has its own result.
func writeProfile(name, path string, errOut io.Writer) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup(name).WriteTo(f, 0)
		f.Close()
	}
	if err != nil {
		fmt.Fprintln(errOut, "runnerhub: write", name, "profile:", err)
	}
}

// Load measures the bare HMAC-only handler and the local stack (opened on cfg with a
// fresh data directory) under the same load in one process, prints what it found to
// opts.Out, and checks that every delivery answered 2xx was recorded durably and
// processed. The error says which promise was broken.
func Load(ctx context.Context, cfg config.Config, opts LoadOptions) (*LoadReport, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "runnerhub-load-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfg.DataDir, cfg.WebhookSecret, cfg.PreviousWebhookSecret = dir, loadSecret, ""
	stack, err := Open(cfg, logging.New(io.Discard, false, cfg.LogLevel))
	if err != nil {
		return nil, err
	}
	defer stack.Close()

	var mu sync.Mutex
	due := map[string]time.Time{}
	report := &LoadReport{}
	stack.OnProcessed(func(rec *delivery.Record) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if at, ok := due[rec.DeliveryID]; ok {
			report.Processed = append(report.Processed, now.Sub(at))
		}
	})
	stackURL, stopStack, err := listen(stack.Serve)
	if err != nil {
		return nil, err
	}
	defer stopStack()
	bareURL, stopBare, err := listen(func(ctx context.Context, ln net.Listener) error {
		srv := &http.Server{Handler: loadgen.BareHandler(loadSecret)}
		go func() { <-ctx.Done(); srv.Close() }()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	defer stopBare()

	rounds, count := opts.Rounds, opts.Count
	if opts.Rate > 0 {
		rounds, count = 1, int(opts.Rate*opts.Duration.Seconds())
	}
	var bodies [][]byte
	if opts.DistinctJobs {
		if bodies, err = distinctJobBodies(opts.Body, count); err != nil {
			return nil, err
		}
	}
	run := func(url, prefix string, count int, rate float64) (*loadgen.Result, error) {
		return loadgen.Run(ctx, loadgen.Options{
			URL: url + ingest.Path, Secret: loadSecret, Event: opts.Event, Body: opts.Body, Bodies: bodies,
			Connections: opts.Connections, Count: count, Rate: rate, IDPrefix: prefix,
			Sent: func(id string, at time.Time) { mu.Lock(); due[id] = at; mu.Unlock() },
		})
	}
	for round := 1; round <= rounds; round++ {
		if opts.Rate <= 0 {
			bare, err := run(bareURL, fmt.Sprintf("bare-%d-", round), count, 0)
			if err != nil {
				return nil, err
			}
			report.Bare = append(report.Bare, bare)
			printResult(opts.Out, "bare HMAC-only handler", round, bare)
		}
		res, err := run(stackURL, fmt.Sprintf("stack-%d-", round), count, opts.Rate)
		if err != nil {
			return nil, err
		}
		report.Stack = append(report.Stack, res)
		printResult(opts.Out, "local stack", round, res)
		// Drained before the next round, so that the bare handler never shares the
		// machine with this round's processing.
		drainStart := time.Now()
		if err := waitProcessed(ctx, stack); err != nil {
			return report, err
		}
		fmt.Fprintf(opts.Out, "round %d  all processed %.1f s after the last answer\n", round, time.Since(drainStart).Seconds())
	}
	var accepted []string
	for _, res := range report.Stack {
		accepted = append(accepted, res.Accepted...)
	}
	report.Accepted = len(accepted)
	stopStack()
	if err := stack.Close(); err != nil {
		return report, err
	}
	mu.Lock()
	slices.Sort(report.Processed)
	mu.Unlock()
	if report.Verified, err = verifyFinished(ctx, dir, accepted); err != nil {
		return report, err
	}
	printSummary(opts.Out, report)
	return report, checkAll(report)
}

// distinctJobBodies edits body into count deliveries, each about a job of its own (ids of
// this run only). They are made before the run: editing and re-serialising a payload
// takes ~150 µs of CPU (a sixth of the whole run's CPU at 500/s), which, done between a
// delivery's due time and its sending, was timed as the server's latency and took the
// cores from the server under test.
func distinctJobBodies(body []byte, count int) ([][]byte, error) {
	first := int64(time.Now().UnixNano() % 1e12)
	bodies := make([][]byte, count)
	for i := range bodies {
		var err error
		if bodies[i], err = (deliveries.PayloadEdit{JobID: first + int64(i+1)}).Apply(body); err != nil {
			return nil, fmt.Errorf("make the deliveries of distinct jobs: %w", err)
		}
	}
	return bodies, nil
}

// listen serves on a loopback port until the returned stop is called (it may be called
// more than once) and returns the server's URL.
func listen(serve func(context.Context, net.Listener) error) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = serve(ctx, ln) }()
	return "http://" + ln.Addr().String(), sync.OnceFunc(func() { cancel(); <-done }), nil
}

// waitProcessed waits until the stack's queue is empty (and fails if any delivery was
// dead-lettered).
func waitProcessed(ctx context.Context, s *Stack) error {
	for {
		pending, dead, err := s.queue.Depth()
		if err != nil {
			return err
		}
		if dead > 0 {
			letters, err := s.queue.DeadLetters()
			if err != nil || len(letters) == 0 {
				return fmt.Errorf("%d deliveries were dead-lettered", dead)
			}
			return fmt.Errorf("%d deliveries were dead-lettered, %s first after %d attempts: %s", dead, letters[0].DeliveryID, letters[0].Attempts, letters[0].LastError)
		}
		if pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d accepted deliveries still unprocessed at the timeout", pending)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// verifyFinished opens the closed store in dir again and counts the deliveries among ids
// that it holds finished; any other is an error.
func verifyFinished(ctx context.Context, dir string, ids []string) (int, error) {
	db, err := embedded.Open(filepath.Join(dir, dbFile))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	store := db.Store()
	for i, id := range ids {
		rec, err := store.Get(ctx, delivery.Key{HookID: "1", DeliveryID: id})
		if err != nil {
			return i, fmt.Errorf("accepted delivery %s: %w", id, err)
		}
		if !rec.State.Done() {
			return i, fmt.Errorf("accepted delivery %s is %s, not processed", id, rec.State)
		}
	}
	return len(ids), nil
}

// checkAll fails a run in which any answer was not 2xx.
func checkAll(r *LoadReport) error {
	for _, res := range slices.Concat(r.Bare, r.Stack) {
		if res.Failed() > 0 {
			return fmt.Errorf("%d of %d deliveries were not answered 2xx: %v", res.Failed(), res.Sent, res.Statuses)
		}
	}
	return nil
}

func printResult(w io.Writer, server string, round int, r *loadgen.Result) {
	fmt.Fprintf(w, "round %d  %-24s %8.0f deliveries/s  p50 %6.2f ms  p99 %6.2f ms  (%d sent, statuses %v)\n",
		round, server, r.Rate(), millis(r.Quantile(0.50)), millis(r.Quantile(0.99)), r.Sent, r.Statuses)
}

func printSummary(w io.Writer, r *LoadReport) {
	if len(r.Bare) > 0 {
		fmt.Fprintf(w, "bare %.0f/s, local stack %.0f/s: ratio %.2f\n", rate(r.Bare), rate(r.Stack), r.Ratio())
	}
	fmt.Fprintf(w, "receipt to committed processing: p50 %.2f ms  p99 %.2f ms  max %.2f ms\n",
		millis(loadgen.Quantile(r.Processed, 0.50)), millis(loadgen.Quantile(r.Processed, 0.99)), millis(loadgen.Quantile(r.Processed, 1)))
	fmt.Fprintf(w, "verified: %d of %d accepted deliveries recorded and processed in the reopened store\n", r.Verified, r.Accepted)
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
