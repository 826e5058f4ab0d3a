package jobs_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/github/githubconfig"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/provider"
)

func TestParsePoolsStartingFields(t *testing.T) {
	exec := &provider.Config{Type: "exec", Exec: &provider.ExecConfig{Command: []string{"/p", "--flag"}, Timeout: 60 * time.Second}}
	cases := []struct {
		name, in string
		want     jobs.Pool
		wantErr  []string // every one in the error
	}{
		{name: "defaults", in: `{"name": "a", "labels": ["l"], "maxRunners": 2}`,
			want: jobs.Pool{Name: "a", Labels: []string{"l"}, MaxRunners: 2, BootTimeout: 5 * time.Minute,
				IdleTimeout: 15 * time.Minute, Ephemeral: true, RunnerGroupID: 1}},
		{name: "every field", in: `{"name": "a", "labels": ["l"], "minIdle": 1, "maxRunners": 4,
			"provider": {"type": "exec", "command": ["/p", "--flag"], "timeout": "60s"}, "bootTimeout": "90s",
			"idleTimeout": "1h", "ephemeral": false, "prewarm": 2, "runnerScope": "org/octo-org", "runnerGroupId": 7}`,
			want: jobs.Pool{Name: "a", Labels: []string{"l"}, MinIdle: 1, MaxRunners: 4, Provider: exec,
				BootTimeout: 90 * time.Second, IdleTimeout: time.Hour, Prewarm: 2, RunnerScope: "org/octo-org", RunnerGroupID: 7}},
		{name: "every problem named", in: `{"name": "a", "labels": [], "maxRunners": 2, "provider": {"type": "exec", "command": []},
			"bootTimeout": "0s", "idleTimeout": "200h", "prewarm": 3, "runnerScope": "octo-org", "runnerGroupId": 0}`,
			wantErr: []string{`entry 0: pool "a": labels must not be empty`, "provider.command must name a program",
				"bootTimeout must be from 1s to 24h", "idleTimeout must be from 1s to 168h", "prewarm must be from 0 to maxRunners (2)",
				`runnerScope "octo-org" must be org/<org> or repo/<owner>/<name>`, "runnerGroupId must be at least 1"}},
		{name: "both timeouts not durations", in: `{"name": "a", "labels": ["l"], "maxRunners": 1, "bootTimeout": "5", "idleTimeout": "long"}`,
			wantErr: []string{`bootTimeout "5" is not a duration`, `idleTimeout "long" is not a duration`}},
		{name: "unknown provider field", in: `{"name": "a", "labels": ["l"], "maxRunners": 1, "provider": {"type": "exec", "command": ["/p"], "shell": true}}`,
			wantErr: []string{`unknown field "shell"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pools, err := jobs.ParsePools([]byte("[" + c.in + "]"))
			if len(c.wantErr) > 0 {
				for _, w := range c.wantErr {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("err = %v, want %q in it", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(pools[0], c.want) {
				t.Fatalf("pool %+v, want %+v", pools[0], c.want)
			}
			// What is written reads back the same: the stores and the API rely on it.
			b, err := json.Marshal(pools[0])
			if err != nil {
				t.Fatal(err)
			}
			var again jobs.Pool
			if err := json.Unmarshal(b, &again); err != nil || !reflect.DeepEqual(again, c.want) {
				t.Fatalf("%s read back as %+v (%v)", b, again, err)
			}
		})
	}
}

// TestRegistrationScope checks the one rule of where a pool's runners register: its own
// runnerScope, else the one scope of RUNNERHUB_GITHUB_RUNNER_SCOPE, else nowhere.
func TestRegistrationScope(t *testing.T) {
	org, other := githubconfig.Scope{Owner: "octo-org"}, githubconfig.Scope{Owner: "other"}
	cases := []struct {
		name     string
		own      string
		defaults []githubconfig.Scope
		want     githubconfig.Scope
		wantErr  string
	}{
		{"its own", "repo/octo-org/app", nil, githubconfig.Scope{Owner: "octo-org", Repo: "app"}, ""},
		{"its own beside two in the variable", "org/octo-org", []githubconfig.Scope{other, other}, org, ""},
		{"its own over the variable's one", "org/octo-org", []githubconfig.Scope{other}, org, ""},
		{"the variable's one", "", []githubconfig.Scope{org}, org, ""},
		{"none", "", nil, githubconfig.Scope{}, `pool "a" has no runnerScope, and RUNNERHUB_GITHUB_RUNNER_SCOPE names 0 scopes, not exactly one`},
		{"two in the variable", "", []githubconfig.Scope{org, other}, githubconfig.Scope{}, "names 2 scopes, not exactly one"},
		{"a malformed own", "octo-org", []githubconfig.Scope{org}, githubconfig.Scope{}, `runner scope "octo-org"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := jobs.Pool{Name: "a", RunnerScope: c.own}.RegistrationScope(c.defaults)
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("err = %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("err = %v, want %q", err, c.wantErr)
			case got != c.want:
				t.Fatalf("scope %v, want %v", got, c.want)
			}
		})
	}
}
