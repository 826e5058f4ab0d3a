package github

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	gh "github.com/google/go-github/v88/github"
)

// DefaultCallTimeout bounds one REST call (a redirect or a token refresh included).
const DefaultCallTimeout = 10 * time.Second

// idleConnections is how many connections to the API the client keeps open for reuse.
// http.DefaultTransport keeps 2 per host, so a burst of concurrent calls (the
// provisioner mints a JIT configuration per demand) would close and dial again, TLS
// handshake included, nearly every connection it used.
const idleConnections = 64

// secondaryBackoff is how long calls pause after a secondary rate limit that names no
// Retry-After (GitHub's documentation: wait at least a minute).
const secondaryBackoff = time.Minute

var (
	// ErrNotFound: GitHub answered 404 (the job, run, repository or runner is gone, or
	// the credentials cannot see it).
	ErrNotFound = errors.New("not found on GitHub")
	// ErrUnavailable: GitHub answered 5xx or could not be reached in time.
	ErrUnavailable = errors.New("GitHub unavailable")
)

// StatusError is an answer of GitHub's that this package has no sentinel for (403 without
// a rate limit, 422...): the provisioner tells its causes apart by Code.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string { return fmt.Sprintf("GitHub answered %d: %s", e.Code, e.Message) }

// RateLimitedError says calls are refused until Until: GitHub's primary limit is spent
// (X-RateLimit-Remaining 0) or it asked for a pause (secondary limit, Retry-After).
type RateLimitedError struct {
	Until     time.Time
	Secondary bool
}

func (e *RateLimitedError) Error() string {
	kind := "primary"
	if e.Secondary {
		kind = "secondary"
	}
	return fmt.Sprintf("GitHub %s rate limit: calls paused until %s", kind, e.Until.UTC().Format(time.RFC3339))
}

// Observer learns the rate-limit budget GitHub reports on each answer (a gauge).
type Observer interface {
	RateLimitRemaining(resource string, remaining int)
}

// Client calls GitHub with the configured credentials. It is safe for concurrent use.
type Client struct {
	cfg      Config
	timeout  time.Duration
	observer Observer
	log      *slog.Logger
	now      func() time.Time

	// token is the client for token authentication, or the one installation's when
	// InstallationID is set; app authenticates as the App itself (JWT). With an App and
	// no installation id, installations holds one client per installation id found.
	token *gh.Client
	app   *gh.Client
	apps  *ghinstallation.AppsTransport
	base  http.RoundTripper

	mu            sync.Mutex
	installations map[int64]*gh.Client
	owners        map[string]int64 // "owner" or "owner/repo" → installation id
	pausedUntil   time.Time
	pauseWasSoft  bool
	// core is the last primary budget GitHub reported, for Background calls.
	core gh.Rate
}

// backgroundReserve is the part of the primary budget Background calls leave to the
// others: a reconciler may wait for the next window, a runner being started may not.
const backgroundReserve = 0.1

type backgroundKey struct{}

// Background marks the calls made with ctx as able to wait (the reconciler's): they are
// refused, as by a rate limit, once the budget left is within the last tenth, so that
// calls that cannot wait (JIT configurations) still find some.
func Background(ctx context.Context) context.Context {
	return context.WithValue(ctx, backgroundKey{}, true)
}

func (c *Client) reserved(ctx context.Context) error {
	if ctx.Value(backgroundKey{}) == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rate := c.core
	if rate.Limit > 0 && float64(rate.Remaining) <= backgroundReserve*float64(rate.Limit) && rate.Reset.After(c.now()) {
		return &RateLimitedError{Until: rate.Reset.Time}
	}
	return nil
}

// Options tune New; the zero value is production's.
type Options struct {
	Timeout   time.Duration     // per call, DefaultCallTimeout when zero
	Transport http.RoundTripper // http.DefaultTransport, keeping idleConnections, when nil
	Observer  Observer
	Log       *slog.Logger
	Now       func() time.Time
}

// New builds a client for cfg, which must be Enabled and, for an App, carry the private
// key (AppPrivateKey).
func New(cfg Config, o Options) (*Client, error) {
	if !cfg.Enabled() {
		return nil, errors.New("no GitHub credentials configured")
	}
	c := &Client{
		cfg: cfg, timeout: o.Timeout, observer: o.Observer, log: o.Log, now: o.Now, base: o.Transport,
		installations: map[int64]*gh.Client{}, owners: map[string]int64{},
	}
	if c.timeout <= 0 {
		c.timeout = DefaultCallTimeout
	}
	if c.base == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = idleConnections
		c.base = tr
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if !cfg.App() {
		var err error
		c.token, err = c.newREST(c.base, cfg.Token)
		return c, err
	}
	if len(cfg.AppPrivateKey) == 0 {
		return nil, errors.New("GitHub App private key not loaded")
	}
	var err error
	if c.apps, err = ghinstallation.NewAppsTransport(c.base, cfg.AppID, cfg.AppPrivateKey); err != nil {
		// The error names the parsing problem, never the key.
		return nil, fmt.Errorf("GitHub App private key: %w", err)
	}
	c.apps.BaseURL = cfg.APIURL
	if c.app, err = c.newREST(c.apps, ""); err != nil {
		return nil, err
	}
	if cfg.InstallationID != 0 {
		c.token, err = c.installationClient(cfg.InstallationID)
	}
	return c, err
}

func (c *Client) newREST(rt http.RoundTripper, token string) (*gh.Client, error) {
	base := c.cfg.APIURL + "/"
	opts := []gh.ClientOptionsFunc{gh.WithTransport(rt), gh.WithURLs(&base, &base), gh.WithUserAgent("runnerhub-webhooks")}
	if token != "" {
		opts = append(opts, gh.WithAuthToken(token))
	}
	return gh.NewClient(opts...)
}

// installationClient authenticates as one installation of the App: ghinstallation mints
// its token with the App's JWT and refreshes it a minute before it expires.
func (c *Client) installationClient(id int64) (*gh.Client, error) {
	tr := ghinstallation.NewFromAppsTransport(c.apps, id)
	tr.BaseURL = c.cfg.APIURL
	// Without options ghinstallation posts a JSON null, which the API's schema (an
	// object) does not allow.
	tr.InstallationTokenOptions = &gh.InstallationTokenOptions{}
	return c.newREST(tr, "")
}

// forOwner returns the client that acts on owner's (and repo's, when not empty)
// resources: the token's, or the App installation's that covers them.
func (c *Client) forOwner(ctx context.Context, owner, repo string) (*gh.Client, error) {
	if c.token != nil {
		return c.token, nil
	}
	key := owner
	if repo != "" {
		key += "/" + repo
	}
	c.mu.Lock()
	id, known := c.owners[key]
	c.mu.Unlock()
	if !known {
		var inst *gh.Installation
		err := c.call(ctx, func(ctx context.Context) (*gh.Response, error) {
			var resp *gh.Response
			var err error
			if repo != "" {
				inst, resp, err = c.app.Apps.GetRepositoryInstallation(ctx, owner, repo)
			} else {
				inst, resp, err = c.app.Apps.GetOrganizationInstallation(ctx, owner)
			}
			return resp, err
		})
		if err != nil {
			return nil, fmt.Errorf("finding the App installation of %s: %w", key, err)
		}
		id = inst.GetID()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.owners[key] = id
	if cl, ok := c.installations[id]; ok {
		return cl, nil
	}
	cl, err := c.installationClient(id)
	if err != nil {
		return nil, err
	}
	c.installations[id] = cl
	return cl, nil
}

// call runs one REST call with the per-call timeout, feeds the rate-limit gauge, and
// turns GitHub's answers into this package's errors. While a rate limit pause lasts it
// does not call at all.
func (c *Client) call(ctx context.Context, f func(ctx context.Context) (*gh.Response, error)) error {
	if err := c.paused(); err != nil {
		return err
	}
	if err := c.reserved(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := f(ctx)
	if resp != nil && resp.Response != nil && resp.Rate.Limit > 0 {
		resource := cmpOr(resp.Rate.Resource, "core")
		if c.observer != nil {
			c.observer.RateLimitRemaining(resource, resp.Rate.Remaining)
		}
		if resource == "core" {
			c.mu.Lock()
			c.core = resp.Rate
			c.mu.Unlock()
		}
		if resp.Rate.Remaining == 0 && resp.Rate.Reset.After(c.now()) {
			// The budget is spent: the next call would be refused anyway.
			c.pause(resp.Rate.Reset.Time, false)
		}
	}
	return c.classify(resp, err)
}

func (c *Client) classify(resp *gh.Response, err error) error {
	var (
		accepted *gh.AcceptedError
		primary  *gh.RateLimitError
		abuse    *gh.AbuseRateLimitError
		answer   *gh.ErrorResponse
	)
	switch {
	case err == nil, errors.As(err, &accepted):
		// A 202 (redelivery requested) is success.
		return nil
	case errors.As(err, &primary):
		until := primary.Rate.Reset.Time
		if !until.After(c.now()) {
			until = c.now().Add(secondaryBackoff)
		}
		return c.pause(until, false)
	case errors.As(err, &abuse):
		wait := secondaryBackoff
		if abuse.RetryAfter != nil && *abuse.RetryAfter > 0 {
			wait = *abuse.RetryAfter
		}
		return c.pause(c.now().Add(wait), true)
	}
	if resp != nil && resp.Response != nil {
		code := resp.StatusCode
		if (code == http.StatusTooManyRequests || code == http.StatusForbidden) && resp.Header.Get("Retry-After") != "" {
			// A pause asked for without go-github recognising it as a secondary limit.
			secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			return c.pause(c.now().Add(max(time.Duration(secs)*time.Second, time.Second)), true)
		}
		switch {
		case code == http.StatusNotFound:
			return fmt.Errorf("%w: %s", ErrNotFound, describe(answer, err))
		case code >= 500:
			return fmt.Errorf("%w: %d %s", ErrUnavailable, code, describe(answer, err))
		}
		return &StatusError{Code: code, Message: describe(answer, err)}
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	// No answer: refused, timed out, DNS.
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

func describe(answer *gh.ErrorResponse, err error) string {
	if errors.As(err, &answer) && answer.Message != "" {
		return answer.Message
	}
	return err.Error()
}

func (c *Client) pause(until time.Time, secondary bool) error {
	c.mu.Lock()
	if until.After(c.pausedUntil) {
		c.pausedUntil, c.pauseWasSoft = until, secondary
		c.log.Warn("GitHub rate limit reached: pausing calls", "until", until.UTC(), "secondary", secondary)
	}
	c.mu.Unlock()
	return &RateLimitedError{Until: until, Secondary: secondary}
}

func (c *Client) paused() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now().Before(c.pausedUntil) {
		return &RateLimitedError{Until: c.pausedUntil, Secondary: c.pauseWasSoft}
	}
	return nil
}

// PausedUntil is when calls resume after a rate limit (zero when not paused).
func (c *Client) PausedUntil() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now().Before(c.pausedUntil) {
		return c.pausedUntil
	}
	return time.Time{}
}

func cmpOr(v, fallback string) string {
	if v == "" {
		return fallback
	}
	return v
}
