// Package config reads RunnerHub's configuration from the environment. Every variable is
// listed in the README's configuration reference; an invalid value stops start-up with a
// message naming the variable.
package config

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/runnerhub/webhooks/internal/github/githubconfig"
	"github.com/runnerhub/webhooks/internal/ingest"
	"github.com/runnerhub/webhooks/internal/jobs"
)

// Config is everything the functions and the local stack read from the environment.
type Config struct {
	WebhookSecret         string // GITHUB_WEBHOOK_SECRET
	PreviousWebhookSecret string // GITHUB_WEBHOOK_SECRET_PREVIOUS, accepted too during a rotation
	// AllowUnsigned (RUNNERHUB_INSECURE_ALLOW_UNSIGNED=1) lets the local stack accept
	// unsigned deliveries when no secret is set. Never honoured by the Lambda functions.
	AllowUnsigned bool
	// APITokens (RUNNERHUB_API_TOKENS) are the bearer tokens of the management and
	// WebSocket APIs, comma-separated, with the admin role (they may change anything);
	// the local stack generates one when none is set.
	APITokens string
	// APIReadTokens (RUNNERHUB_API_READ_TOKENS) are read-only tokens, comma-separated:
	// every GET, a WebSocket ticket, and a 403 for anything that changes something.
	APIReadTokens string
	MaxBodyBytes  int64 // RUNNERHUB_MAX_BODY_BYTES, default 25 MiB (GitHub's maximum payload)
	// MaxBodyBytesInFlight (RUNNERHUB_MAX_BODY_BYTES_IN_FLIGHT) caps the bytes the webhook
	// bodies being read hold at once, default 4 × MaxBodyBytes.
	MaxBodyBytesInFlight int64
	Retention            time.Duration // RUNNERHUB_RETENTION_DAYS, default 30 days
	LogLevel             slog.Level    // LOG_LEVEL: debug, info, warn, error

	// Pools are the configured runner pools: RUNNERHUB_POOLS (a JSON list of
	// jobs.PoolDocument) or RUNNERHUB_POOLS_FILE (a file with it).
	Pools []jobs.Pool
	// PoolsSource says where Pools came from, for messages: "RUNNERHUB_POOLS", or
	// "RUNNERHUB_POOLS_FILE <path>".
	PoolsSource string
	// PriorityStep is how much waiting one priority point is worth in the pending queue
	// (RUNNERHUB_PRIORITY_STEP_SECONDS, default 60).
	PriorityStep time.Duration
	// RunnerOfflineAfter is how long a runner may go without a heartbeat before it counts
	// as offline (RUNNERHUB_RUNNER_OFFLINE_AFTER, a Go duration, default 5m).
	RunnerOfflineAfter time.Duration
	// ProvisionerInterval is how often the warm-pool and reaping pass runs
	// (RUNNERHUB_PROVISIONER_INTERVAL, a Go duration from 1s, default 30s).
	ProvisionerInterval time.Duration

	// AWS resources (the functions).
	EventsTable    string // RUNNERHUB_EVENTS_TABLE
	EventsQueueURL string // RUNNERHUB_EVENTS_QUEUE_URL
	EventsDLQURL   string // RUNNERHUB_EVENTS_DLQ_URL
	PayloadBucket  string // RUNNERHUB_PAYLOAD_BUCKET
	DemandQueueURL string // RUNNERHUB_DEMAND_QUEUE_URL: scale-up demand and pre-warm signals
	// WSEndpoint (RUNNERHUB_WS_ENDPOINT) is the WebSocket API stage's management endpoint,
	// https://{apiId}.execute-api.{region}.amazonaws.com/{stage}, where the fan-out posts.
	WSEndpoint string
	// FanoutQueueURL (RUNNERHUB_FANOUT_QUEUE_URL) takes the processor's and the API's live
	// updates to the FanoutFunction; unset, they send none.
	FanoutQueueURL string

	// GitHub is how RunnerHub talks back to GitHub (RUNNERHUB_GITHUB_*, RUNNERHUB_RECONCILE_*);
	// without credentials nothing does.
	GitHub githubconfig.Config

	// Local stack.
	Port    int    // PORT, default 3000
	DataDir string // RUNNERHUB_DATA_DIR, default .runnerhub
}

// DefaultProvisionerInterval is RUNNERHUB_PROVISIONER_INTERVAL's default.
const DefaultProvisionerInterval = 30 * time.Second

// FromEnv reads the configuration through getenv (os.Getenv in production).
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		WebhookSecret:         getenv("GITHUB_WEBHOOK_SECRET"),
		PreviousWebhookSecret: getenv("GITHUB_WEBHOOK_SECRET_PREVIOUS"),
		EventsTable:           getenv("RUNNERHUB_EVENTS_TABLE"),
		EventsQueueURL:        getenv("RUNNERHUB_EVENTS_QUEUE_URL"),
		EventsDLQURL:          getenv("RUNNERHUB_EVENTS_DLQ_URL"),
		PayloadBucket:         getenv("RUNNERHUB_PAYLOAD_BUCKET"),
		DemandQueueURL:        getenv("RUNNERHUB_DEMAND_QUEUE_URL"),
		WSEndpoint:            getenv("RUNNERHUB_WS_ENDPOINT"),
		FanoutQueueURL:        getenv("RUNNERHUB_FANOUT_QUEUE_URL"),
		APITokens:             getenv("RUNNERHUB_API_TOKENS"),
		APIReadTokens:         getenv("RUNNERHUB_API_READ_TOKENS"),
		DataDir:               or(getenv("RUNNERHUB_DATA_DIR"), ".runnerhub"),
	}
	var errs []string
	fail := func(name, value, want string) { errs = append(errs, fmt.Sprintf("%s=%q: %s", name, value, want)) }

	switch v := getenv("RUNNERHUB_INSECURE_ALLOW_UNSIGNED"); v {
	case "", "0", "false":
	case "1", "true":
		c.AllowUnsigned = true
	default:
		fail("RUNNERHUB_INSECURE_ALLOW_UNSIGNED", v, "want 1 or 0")
	}
	c.MaxBodyBytes = 25 << 20
	if v := getenv("RUNNERHUB_MAX_BODY_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1024 || n > 100<<20 {
			fail("RUNNERHUB_MAX_BODY_BYTES", v, "want a byte count from 1024 to 104857600")
		}
		c.MaxBodyBytes = n
	}
	c.MaxBodyBytesInFlight = ingest.DefaultInFlightBodies * c.MaxBodyBytes
	if v := getenv("RUNNERHUB_MAX_BODY_BYTES_IN_FLIGHT"); v != "" {
		// Twice the largest body: reading one grows its buffer by doubling.
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 2*c.MaxBodyBytes || n > 16<<30 {
			fail("RUNNERHUB_MAX_BODY_BYTES_IN_FLIGHT", v, fmt.Sprintf("want a byte count from %d (twice RUNNERHUB_MAX_BODY_BYTES) to 17179869184", 2*c.MaxBodyBytes))
		}
		c.MaxBodyBytesInFlight = n
	}
	c.Retention = 30 * 24 * time.Hour
	if v := getenv("RUNNERHUB_RETENTION_DAYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 3650 {
			fail("RUNNERHUB_RETENTION_DAYS", v, "want whole days from 1 to 3650")
		}
		c.Retention = time.Duration(n) * 24 * time.Hour
	}
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			fail("LOG_LEVEL", v, "want debug, info, warn or error")
		}
	}
	c.PriorityStep = jobs.DefaultPriorityStep
	if v := getenv("RUNNERHUB_PRIORITY_STEP_SECONDS"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > 10_000_000 {
			fail("RUNNERHUB_PRIORITY_STEP_SECONDS", v, "want whole seconds from 0 to 10000000")
		}
		c.PriorityStep = time.Duration(n) * time.Second
	}
	c.RunnerOfflineAfter = jobs.DefaultOfflineAfter
	if v := getenv("RUNNERHUB_RUNNER_OFFLINE_AFTER"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Second || d > 24*time.Hour {
			fail("RUNNERHUB_RUNNER_OFFLINE_AFTER", v, "want a duration from 10s to 24h, such as 90s or 5m")
		}
		c.RunnerOfflineAfter = d
	}
	c.ProvisionerInterval = DefaultProvisionerInterval
	if v := getenv("RUNNERHUB_PROVISIONER_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > time.Hour {
			fail("RUNNERHUB_PROVISIONER_INTERVAL", v, "want a duration from 1s to 1h, such as 30s")
		}
		c.ProvisionerInterval = d
	}
	if err := c.readPools(getenv); err != nil {
		errs = append(errs, err.Error())
	}
	gh, err := githubconfig.FromEnv(getenv)
	if err != nil {
		errs = append(errs, err.Error())
	}
	c.GitHub = gh
	for _, p := range c.Pools {
		if p.Provider == nil {
			continue // starts no runners, so they need nowhere to register
		}
		if _, err := p.RegistrationScope(gh.RunnerScopes); err != nil {
			errs = append(errs, err.Error())
		}
	}
	c.Port = 3000
	if v := getenv("PORT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 65535 {
			fail("PORT", v, "want a TCP port number")
		}
		c.Port = n
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("invalid configuration: %s", strings.Join(errs, "; "))
	}
	return c, nil
}

// readPools reads RUNNERHUB_POOLS or RUNNERHUB_POOLS_FILE (not both).
func (c *Config) readPools(getenv func(string) string) error {
	inline, file := getenv("RUNNERHUB_POOLS"), getenv("RUNNERHUB_POOLS_FILE")
	var data []byte
	source := "RUNNERHUB_POOLS"
	switch {
	case inline != "" && file != "":
		return fmt.Errorf("set RUNNERHUB_POOLS or RUNNERHUB_POOLS_FILE, not both")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("RUNNERHUB_POOLS_FILE: %w", err)
		}
		data, source = b, "RUNNERHUB_POOLS_FILE "+file
	default:
		data = []byte(inline)
	}
	pools, err := jobs.ParsePools(data)
	if err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	c.Pools, c.PoolsSource = pools, source
	return nil
}

// RequireAWS checks that the AWS resource names a function needs are set.
func (c Config) RequireAWS(names ...string) error {
	values := map[string]string{
		"RUNNERHUB_EVENTS_TABLE":     c.EventsTable,
		"RUNNERHUB_EVENTS_QUEUE_URL": c.EventsQueueURL,
		"RUNNERHUB_EVENTS_DLQ_URL":   c.EventsDLQURL,
		"RUNNERHUB_PAYLOAD_BUCKET":   c.PayloadBucket,
		"RUNNERHUB_DEMAND_QUEUE_URL": c.DemandQueueURL,
		"RUNNERHUB_WS_ENDPOINT":      c.WSEndpoint,
		"RUNNERHUB_FANOUT_QUEUE_URL": c.FanoutQueueURL,
	}
	var missing []string
	for _, n := range names {
		if values[n] == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("invalid configuration: %s must be set", strings.Join(missing, ", "))
	}
	return nil
}

func or(v, fallback string) string {
	if v == "" {
		return fallback
	}
	return v
}

// Engine builds the job engine from the configuration (RUNNERHUB_POOLS,
// RUNNERHUB_PRIORITY_STEP_SECONDS, RUNNERHUB_RUNNER_OFFLINE_AFTER) on store, reading
// delivery records again from deliveries after a conflict, with subscribers hearing of
// every commit in order: every host builds it here, so they cannot differ.
func (c Config) Engine(store jobs.Store, deliveries jobs.Deliveries, subscribers ...jobs.Subscriber) *jobs.Engine {
	return &jobs.Engine{Store: store, Deliveries: deliveries, Pools: c.Pools, Step: c.PriorityStep,
		OfflineAfter: c.RunnerOfflineAfter, Subscribers: subscribers}
}
