// Package standalone is the one-process host (make run): the whole of RunnerHub in one
// process on one machine, with the same router and processor as the Lambda functions, on
// the embedded store and queue.
package standalone

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnerhub/webhooks/internal/api/deliveries"
	"github.com/runnerhub/webhooks/internal/api/fleet"
	"github.com/runnerhub/webhooks/internal/auth"
	"github.com/runnerhub/webhooks/internal/config"
	"github.com/runnerhub/webhooks/internal/dashboard"
	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/httpapi"
	"github.com/runnerhub/webhooks/internal/ingest"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/live"
	"github.com/runnerhub/webhooks/internal/live/localhub"
	"github.com/runnerhub/webhooks/internal/metrics"
	"github.com/runnerhub/webhooks/internal/processing"
	"github.com/runnerhub/webhooks/internal/provisioning"
	"github.com/runnerhub/webhooks/internal/reconcile"
	"github.com/runnerhub/webhooks/internal/storage/embedded"
	"github.com/runnerhub/webhooks/internal/webhook"
)

// workers process queued deliveries concurrently: their store writes then share bbolt's
// group commits instead of paying an fsync each. A worker is held for the whole wait of its
// commit, so workers bound the deliveries in processing: at 500 deliveries/s, 16 of them
// were all held when a commit took 32 ms or more (a slow fsync on a loaded machine), and
// the queue grew behind them; 32 ride out a 64 ms commit. More would ride out longer
// ones, but deliveries about one job then conflict more: each group commits one change
// of that job, and every other plan of it checked in the group lengthens the commit
// (with 64, make load's ingest rate fell in two runs of three against 16).
const workers = 32

// maxAttempts is how often the local consumer tries a delivery before it dead-letters it,
// matching the events queue's maxReceiveCount in template.yaml.
const maxAttempts = 5

// dbFile is the embedded database's file, inside the data directory.
const dbFile = "runnerhub.db"

// SecretFile is where a generated webhook secret is kept, inside the data directory.
const SecretFile = "webhook-secret"

// TokenFile is where the generated API token is kept, inside the data directory, when
// RUNNERHUB_API_TOKENS is not set.
const TokenFile = "api-token"

// Stack is an opened local stack.
type Stack struct {
	Handler http.Handler
	// SecretSource says where the webhook secret came from, for the start-up banner.
	SecretSource string
	// GeneratedToken is the API token kept in the data directory (TokenFile), used when
	// RUNNERHUB_API_TOKENS is not set (empty otherwise), for the start-up banner.
	GeneratedToken string
	// Routes are what Handler serves (the OpenAPI document is checked against them).
	Routes []httpapi.Route
	// Reconciler talks back to GitHub every RUNNERHUB_RECONCILE_INTERVAL; nil without
	// GitHub credentials.
	Reconciler *reconcile.Reconciler

	db    *embedded.DB
	queue *embedded.Queue
	// provisioning runs its Provisioner, which starts the runners of pools with a
	// provider, on the engine's signals and every RUNNERHUB_PROVISIONER_INTERVAL; nil
	// without GitHub credentials.
	provisioning *provisioning.Loop
	processor    *processing.Processor
	live         *localhub.Server
	fanout       *live.Coalescer
	log          *slog.Logger
	// requests and processing count what is in flight, for the shutdown's log.
	requests, processing atomic.Int64
	// Every resendEvery, the demands of jobs waiting longer than resendAfter go out
	// again, as the ResendDemands schedule does on AWS.
	resendEvery, resendAfter time.Duration
}

// Open opens the data directory and builds the stack.
func Open(cfg config.Config, log *slog.Logger) (*Stack, error) {
	secret, source, err := resolveSecret(cfg)
	if err != nil {
		return nil, err
	}
	if secret == "" {
		log.Warn("INSECURE: no webhook secret and RUNNERHUB_INSECURE_ALLOW_UNSIGNED=1: accepting unsigned deliveries; never expose this instance")
	}
	db, err := embedded.Open(filepath.Join(cfg.DataDir, dbFile))
	if err != nil {
		return nil, err
	}
	store, queue := db.Store(), db.Queue(maxAttempts)
	// Health shares this process with every writer: the writes that fail are its to see.
	failures := &deliveries.WriteFailures{}
	if err := warnOverriddenPools(store, cfg, log); err != nil {
		db.Close()
		return nil, err
	}
	m := metrics.New()
	m.Log = log
	m.WatchQueues(delivery.DepthGauges(queue))
	ing := &ingest.Handler{
		Parser:               &webhook.Parser{Verifier: webhook.NewVerifier(secret, cfg.PreviousWebhookSecret), AllowUnsigned: cfg.AllowUnsigned},
		Store:                failures.Store(store),
		Queue:                failures.Queue(queue),
		MaxBodyBytes:         cfg.MaxBodyBytes,
		MaxBodyBytesInFlight: cfg.MaxBodyBytesInFlight,
		Log:                  log,
		Metrics:              m,
		Now:                  time.Now,
	}
	tokens, generated, err := resolveTokens(cfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	tickets := live.NewTickets(cmp.Or(cfg.APITokens, generated), cfg.APIReadTokens)
	hub := localhub.New(live.Hub{Access: live.Access{Tokens: tokens, Tickets: tickets}, Pools: store, Log: log})
	// Live updates leave the committing goroutine at once: the fan-out runs on its own
	// (Serve starts it), at most once per live.CoalesceInterval.
	fanout := live.NewCoalescer(hub.Hub(), live.CoalesceInterval, live.CoalescerBuffer)
	announcer := &live.Announcer{Outbox: fanout, Idle: func() bool { return hub.Count() == 0 }, Log: log}
	rm := m.Reconciler()
	client, err := newGitHub(cfg, log, rm)
	if err != nil {
		db.Close()
		return nil, err
	}
	// The provisioner's loop hears the engine's signals; it can start runners only with
	// GitHub credentials, which mint their JIT configurations.
	var (
		loop        *provisioning.Loop
		provisioner *provisioning.Provisioner
	)
	if client != nil {
		loop = &provisioning.Loop{Interval: cfg.ProvisionerInterval, Log: log}
	}
	signals := &jobs.SignalSender{Signals: localSignals{log: log, provisioner: loop}, Log: log}
	// One engine for the processor and the fleet API: every commit, a delivery's or a
	// runner operation's, is heard by the same subscribers.
	engine := cfg.Engine(failures.Jobs(store), failures.Store(store), signals, m, jobs.Log{Logger: log}, announcer)
	if loop != nil {
		provisioner = newProvisioner(cfg, log, client, engine, m)
		loop.Provisioner = provisioner
	}
	runners := fleet.Deps{Engine: engine, OfflineAfter: cfg.RunnerOfflineAfter, PoolsSource: cfg.PoolsSource, Log: log}
	runners.PoolChanged = announcer.AnnouncePoolChanges()
	m.WatchPools(runners.PoolStatus)
	// The reconciler's and the provisioner's runner changes go through the engine, whose
	// subscribers send their signals: they send none themselves.
	reconciler := newReconciler(cfg, log, client, store, queue, engine, rm)
	routes := slices.Concat(ing.Routes(), m.Routes(), dashboard.Routes(),
		hub.Routes(), live.TicketRoutes(tickets, "", time.Now),
		deliveries.Routes(deliveries.Deps{
			Store: store, Lister: store, Counters: store, JobCounters: store, Queue: queue, DeadLetters: queue,
			// POST /api/webhooks/test goes through the webhook endpoint itself.
			Ingest: ing, Secret: secret, Retention: cfg.Retention, Failures: failures, Log: log, GivenUp: reconcile.GivenUpCount(store, time.Now),
			Problems: provisioner.Problems,
		}),
		fleet.Routes(runners), backupRoutes(db, log), diagnosisRoutes(cfg, log, store, engine, reconciler))
	s := &Stack{
		Routes:         routes,
		Reconciler:     reconciler,
		provisioning:   loop,
		SecretSource:   source,
		GeneratedToken: generated,
		db:             db,
		queue:          queue,
		processor: &processing.Processor{
			Deliveries: failures.Store(store),
			Counters:   store,
			Engine:     engine,
			Signals:    signals.Signals,
			Observer:   m,
			Log:        log,
			Now:        time.Now,
		},
		live:        hub,
		fanout:      fanout,
		log:         log,
		resendEvery: resendEvery,
		resendAfter: jobs.DefaultResendAfter,
	}
	s.Handler = s.counted(httpapi.New(tokens, routes))
	return s, nil
}

// counted counts the requests h is serving.
func (s *Stack) counted(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		defer s.requests.Add(-1)
		h.ServeHTTP(w, r)
	})
}

// warnOverriddenPools warns about each configured pool that a pool created through the
// API replaces: editing the configuration changes nothing for that pool until the API's
// is deleted, which is easy to forget.
func warnOverriddenPools(store jobs.Store, cfg config.Config, log *slog.Logger) error {
	stored, err := store.Pools(context.Background())
	if err != nil {
		return fmt.Errorf("read the pools created through the API: %w", err)
	}
	for _, p := range stored {
		if slices.ContainsFunc(cfg.Pools, func(c jobs.Pool) bool { return c.Name == p.Name }) {
			log.Warn("a configured pool is overridden by one created through the API; DELETE /api/pools/"+p.Name+" to use the configured one",
				"pool", p.Name, "configured_in", cfg.PoolsSource)
		}
	}
	return nil
}

// resendEvery is how often the local stack looks for jobs whose demand is due again.
const resendEvery = time.Minute

// maxHeaderBytes bounds a request's headers, which net/http buffers whole before any
// handler runs: GitHub's are under 2 KB, and net/http's default of 1 MB would let each
// unauthenticated connection hold a megabyte.
const maxHeaderBytes = 64 << 10

// Close closes the database.
func (s *Stack) Close() error { return s.db.Close() }

// Serve answers HTTP on ln and processes the queue until ctx ends, then drains in-flight
// requests and stops. Messages still queued stay in the file for the next start.
func (s *Stack) Serve(ctx context.Context, ln net.Listener) error {
	// The webhook route sets its own, shorter, body deadline (ingest.BodyReadTimeout).
	srv := &http.Server{Handler: s.Handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, MaxHeaderBytes: maxHeaderBytes}
	if n, err := s.queue.Recover(); err != nil {
		return err
	} else if n > 0 {
		s.log.Info("resuming deliveries left unprocessed by the last run", "count", n)
	}
	var wg sync.WaitGroup
	workCtx, stopWork := context.WithCancel(context.Background())
	for range workers {
		wg.Go(func() { s.consume(workCtx) })
	}
	wg.Go(func() { s.resendDemands(workCtx) })
	wg.Go(func() { s.fanout.Run(workCtx) })
	if s.Reconciler != nil {
		wg.Go(func() { every(workCtx, s.Reconciler.Interval, func(ctx context.Context) { s.Reconciler.Run(ctx) }) })
	}
	if s.provisioning != nil {
		wg.Go(func() { s.provisioning.Run(workCtx) })
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.log.Info("stopping: finishing what is in flight",
		"requests", s.requests.Load(), "deliveries_processing", s.processing.Load(), "websockets", s.live.Count())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if shutdownErr := srv.Shutdown(shutdownCtx); err == nil {
		err = shutdownErr
	}
	s.live.Close() // WebSockets are hijacked: Shutdown leaves them open
	stopWork()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	s.logStopped(err)
	return err
}

// logStopped says how the stack stopped and what it leaves for the next start.
func (s *Stack) logStopped(err error) {
	queued, dead, depthErr := s.queue.Depth()
	attrs := []any{"deliveries_queued", queued, "dead_lettered", dead, "requests_unfinished", s.requests.Load()}
	switch {
	case depthErr != nil:
		attrs = append(attrs, "queue_error", depthErr)
	case queued > 0:
		attrs = append(attrs, "note", "queued deliveries are processed at the next start")
	}
	if err != nil {
		s.log.Error("stopped", append(attrs, "error", err)...)
		return
	}
	s.log.Info("stopped", attrs...)
}

// consume feeds the processor from the embedded queue, acknowledging what it finished
// and handing failures back to the queue (which dead-letters repeat offenders). It takes
// one delivery at a time: a worker that took several processed them one after the other,
// each waiting for its own commit, while idle workers could have taken them.
func (s *Stack) consume(ctx context.Context) {
	for {
		items, err := s.queue.Receive(ctx, 1)
		if err != nil {
			return // only when ctx ends
		}
		for _, it := range items {
			s.processing.Add(1)
			err := s.processor.Process(ctx, it.Message)
			s.processing.Add(-1)
			if err == nil {
				s.queue.Ack(it.ID)
				continue
			}
			s.log.Error("processing failed", "delivery_id", it.DeliveryID, "attempt", it.Attempts+1, "error", err)
			if err := s.queue.Nack(it.ID, err); err != nil {
				s.log.Error("dead-lettering failed", "delivery_id", it.DeliveryID, "error", err)
			}
		}
	}
}

// resendDemands sends the demands of jobs still waiting again, every resendEvery, until
// ctx ends.
func (s *Stack) resendDemands(ctx context.Context) {
	every(ctx, s.resendEvery, func(ctx context.Context) {
		if _, err := s.processor.ResendDemands(ctx, s.resendAfter); err != nil && ctx.Err() == nil {
			s.log.Error("resending demands failed", "error", err)
		}
	})
}

// resolveSecret picks the webhook secret: GITHUB_WEBHOOK_SECRET if set; none at all with
// the insecure development switch; otherwise one generated once and kept in the data
// directory, so the local stack is never open by accident and survives restarts.
func resolveSecret(cfg config.Config) (secret, source string, err error) {
	switch {
	case cfg.WebhookSecret != "":
		return cfg.WebhookSecret, "GITHUB_WEBHOOK_SECRET", nil
	case cfg.AllowUnsigned:
		return "", "none (RUNNERHUB_INSECURE_ALLOW_UNSIGNED=1)", nil
	}
	path := filepath.Join(cfg.DataDir, SecretFile)
	secret, generated, err := kept(path, func() string {
		buf := make([]byte, 32)
		_, _ = rand.Read(buf) // crypto/rand.Read never fails on supported platforms
		return hex.EncodeToString(buf)
	})
	if err != nil {
		return "", "", fmt.Errorf("webhook secret: %w", err)
	}
	if generated {
		return secret, path + " (generated)", nil
	}
	return secret, path, nil
}

// resolveTokens takes RUNNERHUB_API_TOKENS (and RUNNERHUB_API_READ_TOKENS) when set.
// Otherwise the admin token is the one kept in the data directory (TokenFile), generated
// at the first start, so an open dashboard stays signed in across restarts; it is
// returned too, for the banner.
func resolveTokens(cfg config.Config) (*auth.Tokens, string, error) {
	if cfg.APITokens != "" {
		t, err := auth.ParseRoles(cfg.APITokens, cfg.APIReadTokens)
		return t, "", err
	}
	token, _, err := kept(filepath.Join(cfg.DataDir, TokenFile), auth.Generate)
	if err != nil {
		return nil, "", fmt.Errorf("API token: %w", err)
	}
	t, err := auth.ParseRoles(token, cfg.APIReadTokens)
	return t, token, err
}

// kept returns the value stored in path, or stores a new one from generate (the file
// readable by its owner only) and reports that it did.
func kept(path string, generate func() string) (value string, generated bool, err error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), false, nil
	}
	value = generate()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", false, fmt.Errorf("create data directory: %w", err)
	}
	if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("store %s: %w", path, err)
	}
	return value, true, nil
}

// Secret returns the webhook secret the local stack uses for cfg, as resolveSecret does,
// for tools that sign test deliveries. It never generates one.
func Secret(cfg config.Config) string {
	if cfg.WebhookSecret != "" {
		return cfg.WebhookSecret
	}
	b, _ := os.ReadFile(filepath.Join(cfg.DataDir, SecretFile))
	return strings.TrimSpace(string(b))
}
