package config

import (
	"strings"
	"testing"
	"time"
)

func TestRunnerOfflineAfter(t *testing.T) {
	cases := []struct {
		value string
		want  time.Duration
		err   bool
	}{
		{"", 5 * time.Minute, false},
		{"90s", 90 * time.Second, false},
		{"2h", 2 * time.Hour, false},
		{"5", 0, true}, // no unit
		{"1s", 0, true},
		{"25h", 0, true},
	}
	for _, c := range cases {
		cfg, err := FromEnv(env(map[string]string{"RUNNERHUB_RUNNER_OFFLINE_AFTER": c.value}))
		switch {
		case c.err && (err == nil || !strings.Contains(err.Error(), "RUNNERHUB_RUNNER_OFFLINE_AFTER")):
			t.Errorf("%q: err = %v, want one naming the variable", c.value, err)
		case !c.err && (err != nil || cfg.RunnerOfflineAfter != c.want):
			t.Errorf("%q: %v, %v; want %v", c.value, cfg.RunnerOfflineAfter, err, c.want)
		}
	}
}
