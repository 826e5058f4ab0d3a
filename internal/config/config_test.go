package config

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxBodyBytes != 25<<20 || c.MaxBodyBytesInFlight != 100<<20 || c.Retention != 30*24*time.Hour || c.Port != 3000 ||
		c.DataDir != ".runnerhub" || c.AllowUnsigned || c.LogLevel != slog.LevelInfo ||
		c.ProvisionerInterval != 30*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestValues(t *testing.T) {
	c, err := FromEnv(env(map[string]string{
		"GITHUB_WEBHOOK_SECRET": "a", "GITHUB_WEBHOOK_SECRET_PREVIOUS": "b",
		"RUNNERHUB_MAX_BODY_BYTES": "10485760", "RUNNERHUB_MAX_BODY_BYTES_IN_FLIGHT": "20971520",
		"RUNNERHUB_RETENTION_DAYS": "7", "LOG_LEVEL": "debug",
		"PORT": "8080", "RUNNERHUB_INSECURE_ALLOW_UNSIGNED": "1", "RUNNERHUB_EVENTS_TABLE": "t",
		"RUNNERHUB_PROVISIONER_INTERVAL": "1s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.WebhookSecret != "a" || c.PreviousWebhookSecret != "b" || c.MaxBodyBytes != 10<<20 || c.MaxBodyBytesInFlight != 20<<20 ||
		c.Retention != 7*24*time.Hour || c.LogLevel != slog.LevelDebug || c.Port != 8080 || !c.AllowUnsigned || c.EventsTable != "t" ||
		c.ProvisionerInterval != time.Second {
		t.Fatalf("values: %+v", c)
	}
}

func TestInvalidValuesNameTheVariable(t *testing.T) {
	for name, value := range map[string]string{
		"RUNNERHUB_MAX_BODY_BYTES":           "lots",
		"RUNNERHUB_MAX_BODY_BYTES_IN_FLIGHT": "52428799", // under twice the 25 MiB default body
		"RUNNERHUB_RETENTION_DAYS":           "0",
		"LOG_LEVEL":                          "loud",
		"PORT":                               "70000",
		"RUNNERHUB_INSECURE_ALLOW_UNSIGNED":  "yes please",
		"RUNNERHUB_PROVISIONER_INTERVAL":     "500ms",
	} {
		_, err := FromEnv(env(map[string]string{name: value}))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: err = %v", name, value, err)
		}
	}
}

func TestRequireAWS(t *testing.T) {
	c, _ := FromEnv(env(map[string]string{"RUNNERHUB_EVENTS_TABLE": "t"}))
	if err := c.RequireAWS("RUNNERHUB_EVENTS_TABLE"); err != nil {
		t.Fatal(err)
	}
	err := c.RequireAWS("RUNNERHUB_EVENTS_TABLE", "RUNNERHUB_EVENTS_QUEUE_URL")
	if err == nil || !strings.Contains(err.Error(), "RUNNERHUB_EVENTS_QUEUE_URL") {
		t.Fatalf("err = %v", err)
	}
}

func TestPools(t *testing.T) {
	c, err := FromEnv(env(map[string]string{
		"RUNNERHUB_POOLS": `[{"name":"linux","labels":["linux","x64"],"minIdle":1,"maxRunners":5},{"name":"gpu","labels":["gpu"],"minIdle":0,"maxRunners":2}]`,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Pools) != 2 || c.Pools[0].Name != "gpu" || c.Pools[1].MaxRunners != 5 || c.PoolsSource != "RUNNERHUB_POOLS" {
		t.Fatalf("pools %+v from %q", c.Pools, c.PoolsSource)
	}
	file := t.TempDir() + "/pools.json"
	if err := os.WriteFile(file, []byte(`[{"name":"arm","labels":["arm64"],"minIdle":0,"maxRunners":1}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = FromEnv(env(map[string]string{"RUNNERHUB_POOLS_FILE": file}))
	if err != nil || len(c.Pools) != 1 || c.Pools[0].Name != "arm" || c.PoolsSource != "RUNNERHUB_POOLS_FILE "+file {
		t.Fatalf("pools file: %+v from %q, %v", c.Pools, c.PoolsSource, err)
	}
}

func TestInvalidPoolsNameTheEntry(t *testing.T) {
	cases := map[string]string{
		`{"name":"x"}`: "JSON list",
		`[{"name":"a","labels":["l"],"minIdle":0,"maxRunners":1},{"name":"b","labels":[],"minIdle":0,"maxRunners":1}]`:    `entry 1: pool "b": labels must not be empty`,
		`[{"name":"a","labels":["l"],"minIdle":3,"maxRunners":1}]`:                                                        `entry 0: pool "a": minIdle (3) exceeds maxRunners (1)`,
		`[{"name":"a","labels":["l"],"minIdle":0,"maxRunners":1},{"name":"a","labels":["l"],"minIdle":0,"maxRunners":1}]`: `entry 1: pool "a" is defined twice`,
		`[{"name":"a","labels":["l"],"minIdle":0,"maxRunners":1,"color":"red"}]`:                                          "unknown field",
		`[{"name":"has space","labels":["l"],"minIdle":0,"maxRunners":1}]`:                                                "name must be",
	}
	for value, want := range cases {
		_, err := FromEnv(env(map[string]string{"RUNNERHUB_POOLS": value}))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "RUNNERHUB_POOLS") {
			t.Errorf("%s: err = %v, want it to mention %q", value, err, want)
		}
	}
	// Every problem of every entry is named at once, and a value that is not JSON is
	// said to be so, not with encoding/json's words.
	for value, wants := range map[string][]string{
		`[{"name":"bad name","labels":[""],"minIdle":-1,"maxRunners":0},{"name":"b","labels":[],"maxRunners":1},{"name":"b","labels":["l"],"maxRunners":1}]`: {
			`entry 0: pool "bad name": name must be`, "label 0 must be 1-100 characters", "minIdle must not be negative", "maxRunners must be at least 1",
			`entry 1: pool "b": labels must not be empty`, `entry 2: pool "b" is defined twice`,
		},
		"not json": {"RUNNERHUB_POOLS: expected a JSON list of {name, labels, minIdle, maxRunners}: not JSON"},
	} {
		_, err := FromEnv(env(map[string]string{"RUNNERHUB_POOLS": value}))
		for _, want := range wants {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: err = %v, want it to mention %q", value, err, want)
			}
		}
		if err != nil && strings.Contains(err.Error(), "invalid character") {
			t.Errorf("%s: %v shows encoding/json's words", value, err)
		}
	}
	if _, err := FromEnv(env(map[string]string{"RUNNERHUB_POOLS": "[]", "RUNNERHUB_POOLS_FILE": "x"})); err == nil {
		t.Error("both pool variables accepted")
	}
}

// TestPoolsWithAProviderNeedAScope checks that start-up applies the rule of where runners
// register (jobs.Pool.RegistrationScope, tested there) to the pools that start runners,
// with RUNNERHUB_GITHUB_RUNNER_SCOPE as its default, and to no other pool.
func TestPoolsWithAProviderNeedAScope(t *testing.T) {
	const started = `{"name":"a","labels":["l"],"maxRunners":1,"provider":{"type":"exec","command":["/p"]}%s}`
	cases := []struct {
		name, pool, scope, wantErr string
	}{
		{"no scope", fmt.Sprintf(started, ""), "", `pool "a" has no runnerScope`},
		{"variable", fmt.Sprintf(started, ""), "org/octo-org", ""},
		{"no provider", `{"name":"a","labels":["l"],"maxRunners":1}`, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := FromEnv(env(map[string]string{"RUNNERHUB_POOLS": "[" + c.pool + "]", "RUNNERHUB_GITHUB_RUNNER_SCOPE": c.scope}))
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("err = %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("err = %v, want %q", err, c.wantErr)
			}
		})
	}
}
