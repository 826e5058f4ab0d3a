package jobs

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/runnerhub/webhooks/internal/github/githubconfig"
	"github.com/runnerhub/webhooks/internal/provider"
)

// Defaults of the pool fields that start runners.
const (
	DefaultBootTimeout   = 5 * time.Minute
	DefaultIdleTimeout   = 15 * time.Minute
	DefaultRunnerGroupID = 1
)

// PoolDocument is a pool in JSON (RUNNERHUB_POOLS, the stores, the API), timeouts as Go
// durations such as "5m". Read, an absent field takes its default; written, every
// field is there.
type PoolDocument struct {
	Name          string           `json:"name,omitempty"`
	Labels        []string         `json:"labels"`
	MinIdle       int              `json:"minIdle"`
	MaxRunners    int              `json:"maxRunners"`
	Provider      *provider.Config `json:"provider"`
	BootTimeout   string           `json:"bootTimeout,omitempty"`
	IdleTimeout   string           `json:"idleTimeout,omitempty"`
	Ephemeral     *bool            `json:"ephemeral,omitempty"`
	Prewarm       int              `json:"prewarm"`
	RunnerScope   *string          `json:"runnerScope"` // null: RUNNERHUB_GITHUB_RUNNER_SCOPE
	RunnerGroupID *int64           `json:"runnerGroupId,omitempty"`
}

// Document returns p as it is written.
func (p Pool) Document() PoolDocument {
	d := PoolDocument{
		Name: p.Name, Labels: p.Labels, MinIdle: p.MinIdle, MaxRunners: p.MaxRunners,
		Provider: p.Provider, BootTimeout: p.BootTimeout.String(), IdleTimeout: p.IdleTimeout.String(),
		Ephemeral: &p.Ephemeral, Prewarm: p.Prewarm, RunnerGroupID: &p.RunnerGroupID,
	}
	if d.Labels == nil {
		d.Labels = []string{}
	}
	if p.RunnerScope != "" {
		d.RunnerScope = &p.RunnerScope
	}
	return d
}

// Pool returns the pool d describes, with defaults for what it leaves out. A timeout
// that is not a duration is an error naming it; other values are checked by Validate.
func (d PoolDocument) Pool() (Pool, error) {
	p := Pool{
		Name: d.Name, Labels: d.Labels, MinIdle: d.MinIdle, MaxRunners: d.MaxRunners, Provider: d.Provider,
		BootTimeout: DefaultBootTimeout, IdleTimeout: DefaultIdleTimeout, Ephemeral: true,
		Prewarm: d.Prewarm, RunnerGroupID: DefaultRunnerGroupID,
	}
	var bad []string
	for _, t := range []struct {
		name, text string
		to         *time.Duration
	}{{"bootTimeout", d.BootTimeout, &p.BootTimeout}, {"idleTimeout", d.IdleTimeout, &p.IdleTimeout}} {
		if t.text == "" {
			continue
		}
		v, err := time.ParseDuration(t.text)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s %q is not a duration such as 5m", t.name, t.text))
		}
		*t.to = v
	}
	if d.Ephemeral != nil {
		p.Ephemeral = *d.Ephemeral
	}
	if d.RunnerScope != nil {
		p.RunnerScope = *d.RunnerScope
	}
	if d.RunnerGroupID != nil {
		p.RunnerGroupID = *d.RunnerGroupID
	}
	if len(bad) > 0 {
		return p, fmt.Errorf("pool %q: %s", d.Name, strings.Join(bad, "; "))
	}
	return p, nil
}

// MarshalJSON writes p's Document.
func (p Pool) MarshalJSON() ([]byte, error) { return json.Marshal(p.Document()) }

// UnmarshalJSON reads a PoolDocument, refusing unknown fields.
func (p *Pool) UnmarshalJSON(data []byte) error {
	var d PoolDocument
	if err := strictDecode(data, &d); err != nil {
		return err
	}
	var err error
	*p, err = d.Pool()
	return err
}

// RegistrationScope is where the pool's runners register with GitHub: its runnerScope,
// or else the one scope of RUNNERHUB_GITHUB_RUNNER_SCOPE (defaults). With neither, its
// runners have nowhere to register: start-up refuses a pool with a provider in that
// case (package config), and the provisioner, for a pool created through the API,
// starts none.
func (p Pool) RegistrationScope(defaults []githubconfig.Scope) (githubconfig.Scope, error) {
	if p.RunnerScope != "" {
		return githubconfig.ParseScope(p.RunnerScope)
	}
	if len(defaults) == 1 {
		return defaults[0], nil
	}
	return githubconfig.Scope{}, fmt.Errorf("pool %q has no runnerScope, and RUNNERHUB_GITHUB_RUNNER_SCOPE names %d scopes, not exactly one: its runners have nowhere to register", p.Name, len(defaults))
}

// provisioningProblems says what is wrong with the fields that start runners.
func (p Pool) provisioningProblems() []string {
	var out []string
	if p.Provider != nil {
		out = append(out, p.Provider.Problems()...)
	}
	if p.BootTimeout < time.Second || p.BootTimeout > 24*time.Hour {
		out = append(out, "bootTimeout must be from 1s to 24h")
	}
	if p.IdleTimeout < time.Second || p.IdleTimeout > 7*24*time.Hour {
		out = append(out, "idleTimeout must be from 1s to 168h")
	}
	if p.Prewarm < 0 || p.Prewarm > max(p.MaxRunners, 0) {
		out = append(out, fmt.Sprintf("prewarm must be from 0 to maxRunners (%d)", p.MaxRunners))
	}
	if p.RunnerScope != "" {
		if _, err := githubconfig.ParseScope(p.RunnerScope); err != nil {
			out = append(out, fmt.Sprintf("runnerScope %q must be org/<org> or repo/<owner>/<name>", p.RunnerScope))
		}
	}
	if p.RunnerGroupID < 1 {
		out = append(out, "runnerGroupId must be at least 1")
	}
	return out
}
