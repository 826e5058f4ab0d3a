package standalone

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/runnerhub/webhooks/internal/config"
	"github.com/runnerhub/webhooks/internal/ingest"
)

// Banner is what `make run` prints once the stack listens on port: where to point
// GitHub, the credentials, and commands that target this very instance (its port and
// data directory) from another terminal.
func (s *Stack) Banner(cfg config.Config, port int) string {
	base := fmt.Sprintf("http://localhost:%d", port)
	token, dashboard := "from RUNNERHUB_API_TOKENS", base+"/"
	if s.GeneratedToken != "" {
		token = s.GeneratedToken + "  (kept in " + filepath.Join(cfg.DataDir, TokenFile) + "; set RUNNERHUB_API_TOKENS to choose your own)"
		dashboard = base + "/#token=" + s.GeneratedToken
	}
	env, notes := targetEnv(cfg, port)
	return fmt.Sprintf(`RunnerHub webhooks is running (data in %s).

  Webhook URL:  %s%s   (content type application/json or form)
  Secret:       %s
  Dashboard:    %s
  API token:    %s
  Metrics:      %s/metrics

Send a signed test delivery (it prints the delivery's and the job's ids):
  %sgo run ./functions/local send testdata/workflow_job.queued.json
Play a pool, a runner and two jobs through their lifecycle, to watch on the dashboard:
  %sgo run ./functions/local demo
%s
Press Ctrl-C to stop.
`, cfg.DataDir, base, ingest.Path, s.SecretSource, dashboard, token, base, env, env, notes)
}

// targetEnv is the environment another terminal needs for send and demo to reach this
// instance: the variables whose value here differs from the default, and a note for
// those that are secrets (not printed).
func targetEnv(cfg config.Config, port int) (env, notes string) {
	defaults, _ := config.FromEnv(func(string) string { return "" })
	var vars, secrets []string
	if port != defaults.Port {
		vars = append(vars, fmt.Sprintf("PORT=%d", port))
	}
	if cfg.DataDir != defaults.DataDir {
		dir, err := filepath.Abs(cfg.DataDir)
		if err != nil {
			dir = cfg.DataDir
		}
		vars = append(vars, "RUNNERHUB_DATA_DIR="+shellQuote(dir))
	}
	if cfg.WebhookSecret != "" {
		secrets = append(secrets, "GITHUB_WEBHOOK_SECRET")
	}
	if cfg.APITokens != "" {
		secrets = append(secrets, "RUNNERHUB_API_TOKENS (demo)")
	}
	if len(vars) > 0 {
		env = strings.Join(vars, " ") + " "
	}
	if len(secrets) > 0 {
		notes = "(with " + strings.Join(secrets, " and ") + " set there as here)\n"
	}
	return env, notes
}
