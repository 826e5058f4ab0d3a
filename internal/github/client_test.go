package github_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/github"
	"github.com/runnerhub/webhooks/internal/testenv/fakegithub"
)

// gauge records what the client reports of the rate-limit budget.
type gauge struct {
	mu        sync.Mutex
	remaining map[string]int
}

func (g *gauge) RateLimitRemaining(resource string, n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.remaining == nil {
		g.remaining = map[string]int{}
	}
	g.remaining[resource] = n
}

func (g *gauge) get(resource string) (int, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, ok := g.remaining[resource]
	return n, ok
}

func tokenClient(t *testing.T, fake *fakegithub.Server, o github.Options) *github.Client {
	t.Helper()
	fake.Token = "github_pat_test"
	c, err := github.New(github.Config{APIURL: fake.URL, Token: fake.Token}, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAppAuthenticationEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name           string
		installationID bool // configured, or looked up from the repository
	}{
		{"installation configured", true},
		{"installation looked up", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := fakegithub.Start(t)
			// ghinstallation refreshes a token a minute before it expires: a 62-second
			// token is due for refresh after two seconds.
			fake.TokenTTL = 62 * time.Second
			inst := fake.AddInstallation("octo")
			fake.PutJob("octo/app", fakegithub.Job{ID: 7, RunID: 3, Name: "build", Status: "queued", Labels: []string{"linux"}})
			cfg := github.Config{APIURL: fake.URL, AppID: fake.AppID, AppPrivateKey: fake.PrivateKeyPEM}
			if tc.installationID {
				cfg.InstallationID = inst
			}
			c, err := github.New(cfg, github.Options{})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for range 2 {
				job, err := c.Job(ctx, "octo", "app", 7)
				if err != nil {
					t.Fatal(err)
				}
				if job.GetStatus() != "queued" {
					t.Fatalf("status %q", job.GetStatus())
				}
			}
			if n := fake.TokensIssued(); n != 1 {
				t.Fatalf("installation tokens minted for two calls: %d, want 1 (the token is reused)", n)
			}
			lookups := fake.CountCalls("GET /repos/octo/app/installation")
			if want := map[bool]int{true: 0, false: 1}[tc.installationID]; lookups != want {
				t.Fatalf("installation lookups: %d, want %d", lookups, want)
			}
			time.Sleep(2100 * time.Millisecond)
			if _, err := c.Job(ctx, "octo", "app", 7); err != nil {
				t.Fatalf("after the token's refresh time: %v", err)
			}
			if n := fake.TokensIssued(); n != 2 {
				t.Fatalf("installation tokens after the refresh time: %d, want 2", n)
			}
		})
	}
}

func TestAppWithAnotherKeyIsRefused(t *testing.T) {
	fake := fakegithub.Start(t)
	other := fakegithub.Start(t) // same App id, another key
	inst := fake.AddInstallation("octo")
	fake.PutJob("octo/app", fakegithub.Job{ID: 7, Status: "queued", Labels: []string{"linux"}})
	c, err := github.New(github.Config{APIURL: fake.URL, AppID: fake.AppID, AppPrivateKey: other.PrivateKeyPEM, InstallationID: inst}, github.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Job(context.Background(), "octo", "app", 7)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("a JWT signed with the wrong key: %v, want a 401", err)
	}
	if fake.TokensIssued() != 0 {
		t.Fatal("a token was minted for a wrong JWT")
	}
}

func TestErrorsAreClassified(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(f *fakegithub.Server)
		job    int64
		wantIs error
	}{
		{"404", func(f *fakegithub.Server) {}, 99, github.ErrNotFound},
		{"500", func(f *fakegithub.Server) { f.FailNext(1, http.StatusInternalServerError) }, 7, github.ErrUnavailable},
		{"502", func(f *fakegithub.Server) { f.FailNext(1, http.StatusBadGateway) }, 7, github.ErrUnavailable},
		{"slower than the call timeout", func(f *fakegithub.Server) { f.SetDelay(2 * time.Second) }, 7, github.ErrUnavailable},
		{"403", func(f *fakegithub.Server) { f.FailNext(1, http.StatusForbidden) }, 7, &github.StatusError{Code: http.StatusForbidden}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := fakegithub.Start(t)
			fake.PutJob("octo/app", fakegithub.Job{ID: 7, Status: "queued", Labels: []string{"linux"}})
			tc.setup(fake)
			c := tokenClient(t, fake, github.Options{Timeout: 300 * time.Millisecond})
			start := time.Now()
			_, err := c.Job(context.Background(), "octo", "app", tc.job)
			var status *github.StatusError
			if want, ok := tc.wantIs.(*github.StatusError); ok {
				if !errors.As(err, &status) || status.Code != want.Code {
					t.Fatalf("error %v, want a StatusError %d", err, want.Code)
				}
			} else if !errors.Is(err, tc.wantIs) {
				t.Fatalf("error %v, want one wrapping %v", err, tc.wantIs)
			}
			if time.Since(start) > time.Second {
				t.Fatalf("the call took %s despite the 300ms timeout", time.Since(start))
			}
			fake.SetDelay(0)
			if _, err := c.Job(context.Background(), "octo", "app", 7); err != nil {
				t.Fatalf("the next call: %v", err)
			}
		})
	}
}

func TestRateLimitsPauseCallsAndResume(t *testing.T) {
	for _, tc := range []struct {
		name      string
		limit     func(f *fakegithub.Server)
		secondary bool
	}{
		{"primary budget spent", func(f *fakegithub.Server) { f.SetRateLimit(5000, 1, time.Now().Add(2*time.Second)) }, false},
		{"secondary limit with Retry-After", func(f *fakegithub.Server) { f.SecondaryLimitNext(2 * time.Second) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := fakegithub.Start(t)
			fake.PutJob("octo/app", fakegithub.Job{ID: 7, Status: "queued", Labels: []string{"linux"}})
			g := &gauge{}
			c := tokenClient(t, fake, github.Options{Observer: g})
			ctx := context.Background()
			tc.limit(fake)
			// Primary: this call spends the last unit. Secondary: it is refused.
			_, err := c.Job(ctx, "octo", "app", 7)
			var limited *github.RateLimitedError
			if tc.secondary != errors.As(err, &limited) {
				t.Fatalf("first call: %v", err)
			}
			if !tc.secondary {
				if n, ok := g.get("core"); !ok || n != 0 {
					t.Fatalf("runnerhub_github_rate_limit_remaining{core}: %d (%v), want 0", n, ok)
				}
			}
			calls := len(fake.Calls())
			_, err = c.Job(ctx, "octo", "app", 7)
			if !errors.As(err, &limited) || limited.Secondary != tc.secondary {
				t.Fatalf("call during the pause: %v, want a RateLimitedError (secondary %v)", err, tc.secondary)
			}
			if len(fake.Calls()) != calls {
				t.Fatal("the client called GitHub during a rate-limit pause")
			}
			if c.PausedUntil().IsZero() {
				t.Fatal("PausedUntil is zero during the pause")
			}
			time.Sleep(time.Until(limited.Until) + 100*time.Millisecond)
			if _, err := c.Job(ctx, "octo", "app", 7); err != nil {
				t.Fatalf("after the pause: %v", err)
			}
			if n, _ := g.get("core"); n <= 0 {
				t.Fatalf("remaining after the reset: %d", n)
			}
		})
	}
}

func TestDeliveriesPageAndRedeliver(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hook   string
		app    bool
		hookID int64
	}{
		{"repository hook", "repo/octo/app/12", false, 12},
		{"organization hook", "org/octo/13", false, 13},
		{"App hook", "app", true, 14},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := fakegithub.Start(t)
			fake.AddHook(tc.hook, tc.hookID, "s3cret", func(context.Context, http.Header, []byte) int { return http.StatusAccepted })
			var guids []string
			for range 250 {
				guids = append(guids, fake.Deliver(tc.hook, "ping", []byte(`{"zen":"hi"}`), fakegithub.Dropped))
			}
			cfg := github.Config{APIURL: fake.URL, Token: "github_pat_test"}
			fake.Token = cfg.Token
			if tc.app {
				cfg = github.Config{APIURL: fake.URL, AppID: fake.AppID, AppPrivateKey: fake.PrivateKeyPEM}
			}
			c, err := github.New(cfg, github.Options{})
			if err != nil {
				t.Fatal(err)
			}
			hook, err := github.ParseHook(tc.hook)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			var all []github.Delivery
			cursor, pages := "", 0
			for {
				page, next, err := c.ListDeliveries(ctx, hook, cursor, 100)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				all = append(all, page...)
				if next == "" {
					break
				}
				cursor = next
			}
			if pages != 3 || len(all) != 250 {
				t.Fatalf("%d deliveries in %d pages, want 250 in 3", len(all), pages)
			}
			if all[0].GUID != guids[249] || all[249].GUID != guids[0] || all[0].OK() {
				t.Fatalf("not newest first, or a dropped delivery counts as OK: %+v", all[0])
			}
			if err := c.Redeliver(ctx, hook, all[0].ID); err != nil {
				t.Fatalf("redelivery (202): %v", err)
			}
			if fake.Attempts(tc.hook, guids[249]) != 2 {
				t.Fatal("the redelivery was not attempted")
			}
			id, err := c.HookID(ctx, hook, all[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			if id != strconv.FormatInt(tc.hookID, 10) {
				t.Fatalf("hook id %q, want %d", id, tc.hookID)
			}
		})
	}
}

func TestRunnersJITConfigAndDelete(t *testing.T) {
	for _, scope := range []string{"org/octo", "repo/octo/app"} {
		t.Run(scope, func(t *testing.T) {
			fake := fakegithub.Start(t)
			for i := range 130 {
				fake.AddRunner(scope, "static-"+strconv.Itoa(i), []string{"self-hosted", "linux"}, "online", false)
			}
			c := tokenClient(t, fake, github.Options{})
			sc, err := github.ParseScope(scope)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			cfg, err := c.GenerateJITConfig(ctx, sc, github.JITRequest{Name: "rh-1", RunnerGroupID: 1, Labels: []string{"linux", "gpu"}})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.EncodedConfig == "" || cfg.Runner.Name != "rh-1" || cfg.Runner.ID == 0 ||
				strings.Join(cfg.Runner.Labels, ",") != "self-hosted,linux,gpu" {
				t.Fatalf("JIT config %+v", cfg.Runner)
			}
			runners, err := c.ListRunners(ctx, sc)
			if err != nil || len(runners) != 131 {
				t.Fatalf("%d runners over two pages, %v; want 131", len(runners), err)
			}
			for _, r := range runners {
				want := "self-hosted,linux"
				if r.Name == "rh-1" {
					want = "self-hosted,linux,gpu"
				}
				if strings.Join(r.Labels, ",") != want {
					t.Fatalf("runner %s labels %q, want %q", r.Name, r.Labels, want)
				}
			}
			for range 2 { // the second DELETE meets a 404: already gone is success
				if err := c.DeleteRunner(ctx, sc, cfg.Runner.ID); err != nil {
					t.Fatal(err)
				}
			}
			if names := fake.RunnerNames(scope); len(names) != 130 {
				t.Fatalf("%d runners left, want 130", len(names))
			}
			if sc.Repo == "" {
				tok, err := c.OrgRegistrationToken(ctx, sc.Owner)
				if err != nil || tok.Token == "" || time.Until(tok.ExpiresAt) < 50*time.Minute {
					t.Fatalf("registration token %+v, %v", tok, err)
				}
			}
		})
	}
}

// Background calls leave the budget's last tenth to the others.
func TestBackgroundCallsLeaveAReserve(t *testing.T) {
	fake := fakegithub.Start(t)
	fake.PutJob("octo/app", fakegithub.Job{ID: 7, Status: "queued", Labels: []string{"linux"}})
	c := tokenClient(t, fake, github.Options{})
	fake.SetRateLimit(100, 11, time.Now().Add(time.Hour))
	ctx := context.Background()
	if _, err := c.Job(github.Background(ctx), "octo", "app", 7); err != nil {
		t.Fatalf("with 11 of 100 left: %v", err)
	}
	calls := len(fake.Calls())
	_, err := c.Job(github.Background(ctx), "octo", "app", 7)
	var limited *github.RateLimitedError
	if !errors.As(err, &limited) || len(fake.Calls()) != calls {
		t.Fatalf("a background call with 10 of 100 left: %v (%d calls made)", err, len(fake.Calls())-calls)
	}
	if _, err := c.Job(ctx, "octo", "app", 7); err != nil {
		t.Fatalf("a foreground call with 10 of 100 left: %v", err)
	}
}
