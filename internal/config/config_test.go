package config

import (
	"log/slog"
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
	if c.MaxBodyBytes != 25<<20 || c.Retention != 30*24*time.Hour || c.Port != 3000 ||
		c.DataDir != ".runnerhub" || c.AllowUnsigned || c.LogLevel != slog.LevelInfo {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestValues(t *testing.T) {
	c, err := FromEnv(env(map[string]string{
		"GITHUB_WEBHOOK_SECRET": "a", "GITHUB_WEBHOOK_SECRET_PREVIOUS": "b",
		"RUNNERHUB_MAX_BODY_BYTES": "10485760", "RUNNERHUB_RETENTION_DAYS": "7", "LOG_LEVEL": "debug",
		"PORT": "8080", "RUNNERHUB_INSECURE_ALLOW_UNSIGNED": "1", "RUNNERHUB_EVENTS_TABLE": "t",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.WebhookSecret != "a" || c.PreviousWebhookSecret != "b" || c.MaxBodyBytes != 10<<20 ||
		c.Retention != 7*24*time.Hour || c.LogLevel != slog.LevelDebug || c.Port != 8080 || !c.AllowUnsigned || c.EventsTable != "t" {
		t.Fatalf("values: %+v", c)
	}
}

func TestInvalidValuesNameTheVariable(t *testing.T) {
	for name, value := range map[string]string{
		"RUNNERHUB_MAX_BODY_BYTES":          "lots",
		"RUNNERHUB_RETENTION_DAYS":          "0",
		"LOG_LEVEL":                         "loud",
		"PORT":                              "70000",
		"RUNNERHUB_INSECURE_ALLOW_UNSIGNED": "yes please",
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
