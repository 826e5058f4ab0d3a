// Package fakejit is the fake GitHub's just-in-time runner configuration and the
// test-only endpoints a fake runner calls with it. It is shared by the fake GitHub, which
// mints the configurations, and the fake runner program, which connects with them; it
// has no dependencies so that the program stays small.
//
// A real encoded_jit_config is base64 of the runner's settings and credentials, which
// the runner application decodes to reach GitHub; this one is base64 of Config as JSON,
// for the same purpose.
package fakejit

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// The endpoints outside GitHub's API (hence the /_fake prefix) through which a runner
// comes online and goes away. Each takes ConnectRequest as its JSON body; a runner
// GitHub no longer has gets a 404, a configuration with the wrong secret a 401.
const (
	// ConnectPath makes the runner online and answers ConnectAnswer. A runner calls it
	// again to keep its session (as the real runner long-polls for jobs).
	ConnectPath = "/_fake/runners/connect"
	// DisconnectPath makes the runner offline (the runner process exited).
	DisconnectPath = "/_fake/runners/disconnect"
)

// Config is what an encoded JIT configuration holds.
type Config struct {
	RunnerID int64    `json:"runner_id"`
	Name     string   `json:"name"`
	Labels   []string `json:"labels"`
	Scope    string   `json:"scope"` // "org/<org>" or "repo/<owner>/<name>"
	URL      string   `json:"url"`   // the fake GitHub's base URL
	Secret   string   `json:"secret"`
}

// ConnectRequest is the body of ConnectPath and DisconnectPath.
type ConnectRequest struct {
	EncodedJITConfig string `json:"encoded_jit_config"`
}

// ConnectAnswer is ConnectPath's answer: the runner's state as GitHub sees it.
type ConnectAnswer struct {
	RunnerID int64  `json:"runner_id"`
	Name     string `json:"name"`
	Busy     bool   `json:"busy"`
	JobID    int64  `json:"job_id,omitempty"`
}

// Encode returns c as an encoded_jit_config.
func Encode(c Config) string {
	raw, _ := json.Marshal(c) // a struct of strings and numbers always encodes
	return base64.StdEncoding.EncodeToString(raw)
}

// Decode reads an encoded_jit_config.
func Decode(encoded string) (Config, error) {
	raw, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return Config{}, fmt.Errorf("JIT configuration is not base64: %w", err)
	}
	var c Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return Config{}, fmt.Errorf("JIT configuration is not the fake's JSON: %w", err)
	}
	if c.RunnerID == 0 || c.Name == "" || c.URL == "" || c.Secret == "" {
		return Config{}, errors.New("JIT configuration lacks runner_id, name, url or secret")
	}
	return c, nil
}
