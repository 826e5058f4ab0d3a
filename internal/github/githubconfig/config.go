// Package githubconfig reads how RunnerHub reaches GitHub (RUNNERHUB_GITHUB_*,
// RUNNERHUB_RECONCILE_*). It is apart from package github so that every function can
// read the configuration without linking go-github: only those that call GitHub do.
package githubconfig

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// DefaultAPIURL is github.com's REST API; GHES is https://HOST/api/v3.
const DefaultAPIURL = "https://api.github.com"

// Defaults of the reconciler's schedule.
const (
	DefaultInterval = 5 * time.Minute
	DefaultAfter    = 10 * time.Minute
)

// Config is how RunnerHub reaches GitHub. Exactly one kind of credentials, or none: then
// Enabled is false and nothing talks to GitHub.
type Config struct {
	APIURL string // RUNNERHUB_GITHUB_API_URL
	// Token (RUNNERHUB_GITHUB_TOKEN, or the content of RUNNERHUB_GITHUB_TOKEN_FILE).
	Token string
	// AppID (RUNNERHUB_GITHUB_APP_ID) with a private key: AppPrivateKey is read from
	// RUNNERHUB_GITHUB_APP_PRIVATE_KEY_FILE locally; on AWS AppPrivateKeyParameter names
	// the SSM SecureString the function reads at cold start (see LoadPrivateKey).
	AppID                  int64
	AppPrivateKey          []byte
	AppPrivateKeyParameter string
	// InstallationID (RUNNERHUB_GITHUB_APP_INSTALLATION_ID) is optional: without it the
	// installation of each repository or organization is looked up (and remembered).
	InstallationID int64
	// Hooks (RUNNERHUB_GITHUB_HOOKS) are the webhooks whose failed deliveries are redelivered.
	Hooks []Hook
	// RunnerScopes (RUNNERHUB_GITHUB_RUNNER_SCOPE) are where RunnerHub's runners register.
	RunnerScopes []Scope
	// ImportRunners (RUNNERHUB_GITHUB_IMPORT_RUNNERS=1) imports the GitHub runners of the
	// scopes that RunnerHub does not know into the pool whose labels fit.
	ImportRunners bool
	Interval      time.Duration // RUNNERHUB_RECONCILE_INTERVAL
	After         time.Duration // RUNNERHUB_RECONCILE_AFTER
}

// Enabled reports whether credentials are configured.
func (c Config) Enabled() bool { return c.Token != "" || c.AppID != 0 }

// App reports whether the credentials are a GitHub App's.
func (c Config) App() bool { return c.AppID != 0 }

// HookKind is the level a webhook is configured at.
type HookKind string

const (
	HookApp  HookKind = "app"
	HookRepo HookKind = "repo"
	HookOrg  HookKind = "org"
)

// Hook is one watched webhook: the GitHub App's, a repository's or an organization's.
type Hook struct {
	Kind  HookKind
	Owner string // organization, or repository owner
	Repo  string
	ID    int64 // 0 for the App's hook
}

// String is the hook as written in RUNNERHUB_GITHUB_HOOKS, used as the metrics label and
// the checkpoint's name.
func (h Hook) String() string {
	switch h.Kind {
	case HookRepo:
		return fmt.Sprintf("repo/%s/%s/%d", h.Owner, h.Repo, h.ID)
	case HookOrg:
		return fmt.Sprintf("org/%s/%d", h.Owner, h.ID)
	}
	return string(HookApp)
}

// ParseHook reads one entry of RUNNERHUB_GITHUB_HOOKS.
func ParseHook(s string) (Hook, error) {
	parts := strings.Split(s, "/")
	bad := fmt.Errorf("hook %q: want app, repo/<owner>/<name>/<hook_id> or org/<org>/<hook_id>", s)
	id := func(v string) (int64, error) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return 0, bad
		}
		return n, nil
	}
	switch {
	case len(parts) == 1 && parts[0] == string(HookApp):
		return Hook{Kind: HookApp}, nil
	case len(parts) == 4 && parts[0] == string(HookRepo) && parts[1] != "" && parts[2] != "":
		n, err := id(parts[3])
		return Hook{Kind: HookRepo, Owner: parts[1], Repo: parts[2], ID: n}, err
	case len(parts) == 3 && parts[0] == string(HookOrg) && parts[1] != "":
		n, err := id(parts[2])
		return Hook{Kind: HookOrg, Owner: parts[1], ID: n}, err
	}
	return Hook{}, bad
}

// Scope is where runners register: an organization (Repo empty) or one repository.
type Scope struct {
	Owner string
	Repo  string
}

func (s Scope) String() string {
	if s.Repo == "" {
		return "org/" + s.Owner
	}
	return "repo/" + s.Owner + "/" + s.Repo
}

// ParseScope reads org/<org> or repo/<owner>/<name>.
func ParseScope(s string) (Scope, error) {
	parts := strings.Split(s, "/")
	switch {
	case len(parts) == 2 && parts[0] == "org" && parts[1] != "":
		return Scope{Owner: parts[1]}, nil
	case len(parts) == 3 && parts[0] == "repo" && parts[1] != "" && parts[2] != "":
		return Scope{Owner: parts[1], Repo: parts[2]}, nil
	}
	return Scope{}, fmt.Errorf("runner scope %q: want org/<org> or repo/<owner>/<name>", s)
}

// FromEnv reads the configuration through getenv. Files named by *_FILE variables are
// read here; an SSM parameter is only named (the AWS composition root reads it). Errors
// name the variable, never its value when it is a secret.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		APIURL:                 strings.TrimRight(or(getenv("RUNNERHUB_GITHUB_API_URL"), DefaultAPIURL), "/"),
		Token:                  strings.TrimSpace(getenv("RUNNERHUB_GITHUB_TOKEN")),
		AppPrivateKeyParameter: getenv("RUNNERHUB_GITHUB_APP_PRIVATE_KEY_PARAMETER"),
		Interval:               DefaultInterval,
		After:                  DefaultAfter,
	}
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }

	if !strings.HasPrefix(c.APIURL, "https://") && !strings.HasPrefix(c.APIURL, "http://") {
		fail("RUNNERHUB_GITHUB_API_URL=%q: want an http(s) URL such as %s or https://HOST/api/v3", c.APIURL, DefaultAPIURL)
	}
	if path := getenv("RUNNERHUB_GITHUB_TOKEN_FILE"); path != "" {
		if c.Token != "" {
			fail("set RUNNERHUB_GITHUB_TOKEN or RUNNERHUB_GITHUB_TOKEN_FILE, not both")
		}
		b, err := os.ReadFile(path)
		if err != nil {
			fail("RUNNERHUB_GITHUB_TOKEN_FILE: %v", err)
		}
		c.Token = strings.TrimSpace(string(b))
	}
	positive := func(name string) int64 {
		v := getenv(name)
		if v == "" {
			return 0
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			fail("%s=%q: want a positive integer", name, v)
		}
		return n
	}
	c.AppID = positive("RUNNERHUB_GITHUB_APP_ID")
	c.InstallationID = positive("RUNNERHUB_GITHUB_APP_INSTALLATION_ID")
	if path := getenv("RUNNERHUB_GITHUB_APP_PRIVATE_KEY_FILE"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			fail("RUNNERHUB_GITHUB_APP_PRIVATE_KEY_FILE: %v", err)
		}
		c.AppPrivateKey = b
	}
	hasKey := len(c.AppPrivateKey) > 0 || c.AppPrivateKeyParameter != ""
	switch {
	case c.AppID != 0 && c.Token != "":
		fail("set token or GitHub App credentials, not both")
	case c.AppID != 0 && !hasKey:
		fail("RUNNERHUB_GITHUB_APP_ID needs RUNNERHUB_GITHUB_APP_PRIVATE_KEY_FILE or RUNNERHUB_GITHUB_APP_PRIVATE_KEY_PARAMETER")
	case c.AppID == 0 && hasKey:
		fail("a GitHub App private key needs RUNNERHUB_GITHUB_APP_ID")
	}
	// commaList hands each item of the comma-separated variable name to add; an item it
	// refuses is reported under the variable's name, and the others are still read.
	commaList := func(name string, add func(item string) error) {
		v := getenv(name)
		if v == "" {
			return
		}
		for _, s := range strings.Split(v, ",") {
			if err := add(strings.TrimSpace(s)); err != nil {
				fail("%s: %v", name, err)
			}
		}
	}
	commaList("RUNNERHUB_GITHUB_HOOKS", func(s string) error {
		h, err := ParseHook(s)
		if err != nil {
			return err
		}
		c.Hooks = append(c.Hooks, h)
		if h.Kind == HookApp && c.AppID == 0 {
			return errors.New("the app hook needs GitHub App credentials")
		}
		return nil
	})
	commaList("RUNNERHUB_GITHUB_RUNNER_SCOPE", func(s string) error {
		sc, err := ParseScope(s)
		if err != nil {
			return err
		}
		c.RunnerScopes = append(c.RunnerScopes, sc)
		return nil
	})
	switch v := getenv("RUNNERHUB_GITHUB_IMPORT_RUNNERS"); v {
	case "", "0", "false":
	case "1", "true":
		c.ImportRunners = true
	default:
		fail("RUNNERHUB_GITHUB_IMPORT_RUNNERS=%q: want 1 or 0", v)
	}
	duration := func(name string, dst *time.Duration, lo, hi time.Duration) {
		v := getenv(name)
		if v == "" {
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < lo || d > hi {
			fail("%s=%q: want a duration from %s to %s, such as 5m", name, v, lo, hi)
			return
		}
		*dst = d
	}
	duration("RUNNERHUB_RECONCILE_INTERVAL", &c.Interval, time.Second, 24*time.Hour)
	duration("RUNNERHUB_RECONCILE_AFTER", &c.After, time.Second, 7*24*time.Hour)
	if len(errs) > 0 {
		return c, fmt.Errorf("invalid GitHub configuration: %s", strings.Join(errs, "; "))
	}
	return c, nil
}

func or(v, fallback string) string {
	if v == "" {
		return fallback
	}
	return v
}
