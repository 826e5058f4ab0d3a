package githubconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFromEnv(t *testing.T) {
	dir := t.TempDir()
	tokenFile, keyFile := filepath.Join(dir, "token"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(tokenFile, []byte("github_pat_from_file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte("-----BEGIN RSA PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr string // a part of the error; "" for none
	}{
		{"nothing: off, defaults", nil, func(t *testing.T, c Config) {
			if c.Enabled() || c.APIURL != DefaultAPIURL || c.Interval != 5*time.Minute || c.After != 10*time.Minute {
				t.Fatalf("%+v", c)
			}
		}, ""},
		{"token from a file, GHES, hooks and scopes", map[string]string{
			"RUNNERHUB_GITHUB_TOKEN_FILE": tokenFile, "RUNNERHUB_GITHUB_API_URL": "https://ghe.example/api/v3/",
			"RUNNERHUB_GITHUB_HOOKS":        "repo/octo/app/12, org/octo/13",
			"RUNNERHUB_GITHUB_RUNNER_SCOPE": "org/octo", "RUNNERHUB_RECONCILE_INTERVAL": "1s", "RUNNERHUB_RECONCILE_AFTER": "90s",
		}, func(t *testing.T, c Config) {
			if c.Token != "github_pat_from_file" || c.APIURL != "https://ghe.example/api/v3" || len(c.Hooks) != 2 ||
				c.Hooks[0].String() != "repo/octo/app/12" || c.Hooks[1].String() != "org/octo/13" ||
				c.RunnerScopes[0].String() != "org/octo" || c.Interval != time.Second || c.After != 90*time.Second || c.App() {
				t.Fatalf("%+v", c)
			}
		}, ""},
		{"App with a key file and the app hook", map[string]string{
			"RUNNERHUB_GITHUB_APP_ID": "42", "RUNNERHUB_GITHUB_APP_PRIVATE_KEY_FILE": keyFile, "RUNNERHUB_GITHUB_HOOKS": "app",
			"RUNNERHUB_GITHUB_APP_INSTALLATION_ID": "7",
		}, func(t *testing.T, c Config) {
			if !c.App() || c.AppID != 42 || c.InstallationID != 7 || len(c.AppPrivateKey) == 0 || c.Hooks[0].Kind != HookApp {
				t.Fatalf("%+v", c)
			}
		}, ""},
		{"App with an SSM parameter", map[string]string{"RUNNERHUB_GITHUB_APP_ID": "42", "RUNNERHUB_GITHUB_APP_PRIVATE_KEY_PARAMETER": "/rh/key"},
			func(t *testing.T, c Config) {
				if !c.Enabled() || c.AppPrivateKeyParameter != "/rh/key" {
					t.Fatalf("%+v", c)
				}
			}, ""},
		{"token and App", map[string]string{"RUNNERHUB_GITHUB_TOKEN": "secret-token", "RUNNERHUB_GITHUB_APP_ID": "42", "RUNNERHUB_GITHUB_APP_PRIVATE_KEY_FILE": keyFile}, nil, "not both"},
		{"token and token file", map[string]string{"RUNNERHUB_GITHUB_TOKEN": "secret-token", "RUNNERHUB_GITHUB_TOKEN_FILE": tokenFile}, nil, "RUNNERHUB_GITHUB_TOKEN_FILE, not both"},
		{"App without a key", map[string]string{"RUNNERHUB_GITHUB_APP_ID": "42"}, nil, "RUNNERHUB_GITHUB_APP_ID needs"},
		{"key without an App", map[string]string{"RUNNERHUB_GITHUB_APP_PRIVATE_KEY_FILE": keyFile}, nil, "needs RUNNERHUB_GITHUB_APP_ID"},
		{"app hook with a token", map[string]string{"RUNNERHUB_GITHUB_TOKEN": "secret-token", "RUNNERHUB_GITHUB_HOOKS": "app"}, nil, "the app hook needs GitHub App credentials"},
		{"bad hook", map[string]string{"RUNNERHUB_GITHUB_TOKEN": "secret-token", "RUNNERHUB_GITHUB_HOOKS": "repo/octo/12"}, nil, `hook "repo/octo/12"`},
		{"bad hook id", map[string]string{"RUNNERHUB_GITHUB_TOKEN": "secret-token", "RUNNERHUB_GITHUB_HOOKS": "org/octo/x"}, nil, `hook "org/octo/x"`},
		{"bad scope", map[string]string{"RUNNERHUB_GITHUB_RUNNER_SCOPE": "octo"}, nil, `runner scope "octo"`},
		{"interval below a second", map[string]string{"RUNNERHUB_RECONCILE_INTERVAL": "10ms"}, nil, "RUNNERHUB_RECONCILE_INTERVAL"},
		{"after not a duration", map[string]string{"RUNNERHUB_RECONCILE_AFTER": "soon"}, nil, "RUNNERHUB_RECONCILE_AFTER"},
		{"API URL without a scheme", map[string]string{"RUNNERHUB_GITHUB_API_URL": "api.github.com"}, nil, "RUNNERHUB_GITHUB_API_URL"},
		{"missing token file", map[string]string{"RUNNERHUB_GITHUB_TOKEN_FILE": filepath.Join(dir, "nope")}, nil, "RUNNERHUB_GITHUB_TOKEN_FILE"},
		{"app id not a number", map[string]string{"RUNNERHUB_GITHUB_APP_ID": "abc"}, nil, "RUNNERHUB_GITHUB_APP_ID"},
		{"import not 0 or 1", map[string]string{"RUNNERHUB_GITHUB_IMPORT_RUNNERS": "yes"}, nil, "RUNNERHUB_GITHUB_IMPORT_RUNNERS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := FromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "secret-token") {
					t.Fatalf("the error shows the token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}
