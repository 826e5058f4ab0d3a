package provisioning

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/runnerhub/webhooks/internal/checkpoint"
	"github.com/runnerhub/webhooks/internal/github"
)

// JITError is a pool's latest failure to have a just-in-time configuration minted,
// kept until one is minted for the pool again: what health shows.
type JITError struct {
	Pool  string `json:"pool"`
	Scope string `json:"scope"` // where its runners register; "" when it has nowhere
	// Cause is forbidden (403), invalid (422), rate_limited, not_found, unavailable,
	// no_scope or other.
	Cause string `json:"cause"`
	Error string `json:"error"`
	// Since is the first failure of this cause in a row, At the latest, Count how many.
	Since time.Time `json:"since"`
	At    time.Time `json:"at"`
	Count int       `json:"count"`
}

// JIT failure causes.
const (
	CauseForbidden   = "forbidden"
	CauseInvalid     = "invalid"
	CauseRateLimited = "rate_limited"
	CauseNotFound    = "not_found"
	CauseUnavailable = "unavailable"
	CauseNoScope     = "no_scope"
	CauseOther       = "other"
)

// hints say what an operator can do about each cause.
var hints = map[string]string{
	CauseForbidden:   `the credentials may not register runners there: give the token or App "Self-hosted runners: write" on the organization, or "Administration: write" on the repository`,
	CauseInvalid:     "GitHub refused the request: check the pool's labels and runnerGroupId",
	CauseRateLimited: "GitHub's rate limit is spent: runners start again when it resets",
	CauseNotFound:    "the organization or repository does not exist, or the credentials cannot see it",
	CauseUnavailable: "GitHub could not be reached",
	CauseNoScope:     `set the pool's "runnerScope", or RUNNERHUB_GITHUB_RUNNER_SCOPE to exactly one scope`,
}

func jitCause(err error) string {
	var limited *github.RateLimitedError
	var status *github.StatusError
	switch {
	case errors.As(err, &limited):
		return CauseRateLimited
	case errors.As(err, &status) && status.Code == http.StatusForbidden:
		return CauseForbidden
	case errors.As(err, &status) && status.Code == http.StatusUnprocessableEntity:
		return CauseInvalid
	case errors.Is(err, github.ErrNotFound):
		return CauseNotFound
	case errors.Is(err, github.ErrUnavailable):
		return CauseUnavailable
	}
	return CauseOther
}

// jitFailed records a pool's failure to mint (or, with no scope, to ask for) a JIT
// configuration. It is logged once per cause in a row, not once per demand: a pool
// whose credentials lack a permission would otherwise log every job.
func (p *Provisioner) jitFailed(ctx context.Context, pool, scope string, err error) {
	cause := jitCause(err)
	if scope == "" {
		cause = CauseNoScope
	}
	p.Metrics.JITFailed(pool, cause)
	now := p.now()
	p.mu.Lock()
	prev, had := p.failing[pool]
	e := JITError{Pool: pool, Scope: scope, Cause: cause, Error: err.Error(), Since: now, At: now, Count: 1}
	if had && prev.Cause == cause {
		e.Since, e.Count = prev.Since, prev.Count+1
	}
	if p.failing == nil {
		p.failing = map[string]JITError{}
	}
	p.failing[pool] = e
	p.mu.Unlock()
	if had && prev.Cause == cause {
		p.log().DebugContext(ctx, "JIT configuration refused again", "pool", pool, "cause", cause, "count", e.Count)
		return
	}
	p.log().ErrorContext(ctx, "no runners can start: GitHub refuses JIT configurations", "pool", pool, "scope", scope,
		"cause", cause, "hint", hints[cause], "error", err)
}

// jitMinted clears a pool's JIT failure, saying so when there was one.
func (p *Provisioner) jitMinted(ctx context.Context, pool string) {
	p.mu.Lock()
	prev, had := p.failing[pool]
	delete(p.failing, pool)
	p.mu.Unlock()
	if had {
		p.log().InfoContext(ctx, "JIT configurations are minted again", "pool", pool, "cause_was", prev.Cause, "failures", prev.Count)
	}
}

// JITErrors returns each pool's current JIT failure, by pool name.
func (p *Provisioner) JITErrors() []JITError {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]JITError, 0, len(p.failing))
	for _, e := range p.failing {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b JITError) int { return strings.Compare(a.Pool, b.Pool) })
	return out
}

// Problems describes each pool's current JIT failure, for health (see problems). A nil
// Provisioner (no GitHub credentials) has none. It is deliveries.Deps.Problems' shape.
func (p *Provisioner) Problems(context.Context) ([]string, error) {
	if p == nil {
		return nil, nil
	}
	return problems(p.JITErrors()), nil
}

// problems describes JIT failures for health, which is public: the pool and the cause,
// nothing that names a repository.
func problems(failures []JITError) []string {
	var out []string
	for _, e := range failures {
		out = append(out, fmt.Sprintf("runners cannot start in pool %s: GitHub refused its JIT configurations %d times since %s (%s); see the log",
			e.Pool, e.Count, e.Since.UTC().Format(time.RFC3339), e.Cause))
	}
	return out
}

// JITCheckpoint is the checkpoint under which the ProvisionerFunction keeps its current
// JIT failures, for the ApiFunction's health: on AWS the two run apart.
const JITCheckpoint = "provisioner-jit-failures"

// SaveJITErrors stores the current JIT failures under JITCheckpoint when they changed
// since p last saved them. Environments of the function save in turn: the checkpoint
// holds the latest one's view, so a pool that mints again anywhere is cleared.
func (p *Provisioner) SaveJITErrors(ctx context.Context, store checkpoint.Store) error {
	data, err := json.Marshal(p.JITErrors())
	if err != nil {
		return err
	}
	p.mu.Lock()
	same := p.saved != nil && bytes.Equal(p.saved, data)
	p.mu.Unlock()
	if same {
		return nil
	}
	if err := store.PutCheckpoint(ctx, JITCheckpoint, data); err != nil {
		return fmt.Errorf("saving the JIT failures: %w", err)
	}
	p.mu.Lock()
	p.saved = data
	p.mu.Unlock()
	return nil
}

// SavedProblems returns a deliveries.Deps.Problems that describes the JIT failures a
// ProvisionerFunction saved in store (SaveJITErrors).
func SavedProblems(store checkpoint.Store) func(context.Context) ([]string, error) {
	return func(ctx context.Context) ([]string, error) {
		data, err := store.Checkpoint(ctx, JITCheckpoint)
		if err != nil || data == nil {
			return nil, err
		}
		var failures []JITError
		if err := json.Unmarshal(data, &failures); err != nil {
			return nil, fmt.Errorf("the JIT failures checkpoint: %w", err)
		}
		return problems(failures), nil
	}
}
