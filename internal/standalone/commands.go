package standalone

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/runnerhub/webhooks/internal/api/deliveries"
	"github.com/runnerhub/webhooks/internal/auth"
	"github.com/runnerhub/webhooks/internal/config"
	"github.com/runnerhub/webhooks/internal/ingest"
	"github.com/runnerhub/webhooks/internal/logging"
)

// Usage is the local command's help: what `-h`, `help` and an unknown command print.
const Usage = `usage: go run ./functions/local [command] [flags]

commands:
  run          start the local stack (the default): PORT, RUNNERHUB_DATA_DIR, ...
  send FILE    post a signed delivery from a payload file (send -h for its flags)
  demo         play a pool, a runner and a few jobs against the running stack (demo -h)
  backup FILE  write an online, consistent copy of the running stack's database (backup -h)
  load         measure durable ingest against a bare HMAC-only handler (load -h; make load)
  replay-dlq   AWS: move the events DLQ back to the events queue
  recount-pools  AWS: rebuild the pools' counts from the runners and queues (once, after
                 upgrading a table from before the counts, with nothing else writing)
  help         print this

Configuration is read from the environment; see the README's configuration reference.
`

// newFlags returns a flag set that reports -h as flag.ErrHelp (the caller exits 0)
// and prints its usage and defaults to errOut.
func newFlags(name, synopsis string, errOut io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Usage = func() {
		fmt.Fprintf(errOut, "usage: go run ./functions/local %s\n\nflags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// RunCommand is `run`, the default: it starts the local stack on PORT, prints the
// banner (where to point GitHub, the credentials, commands for this instance) to out,
// logs to errOut, and serves until ctx ends.
func RunCommand(ctx context.Context, cfg config.Config, out, errOut io.Writer) error {
	// The port first: a start that cannot listen must not create a data directory, a
	// database or a secret.
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", cfg.Port))
	if err != nil {
		return fmt.Errorf("cannot listen on port %d (set PORT to use another): %w", cfg.Port, err)
	}
	defer ln.Close()
	stack, err := Open(cfg, logging.New(errOut, false, cfg.LogLevel))
	if err != nil {
		return err
	}
	defer stack.Close()
	fmt.Fprint(out, stack.Banner(cfg, ln.Addr().(*net.TCPAddr).Port))
	return stack.Serve(ctx, ln)
}

// target is where a command finds the running local stack: flags that default to the
// instance cfg describes (PORT, RUNNERHUB_DATA_DIR), as the start-up banner prints them.
type target struct {
	cfg        config.Config
	base       *string
	secretFile *string
}

func addTarget(fs *flag.FlagSet, cfg config.Config, baseFlag string) *target {
	t := &target{cfg: cfg}
	t.base = fs.String(baseFlag, "", "")
	t.secretFile = fs.String("secret-file", "", "file holding the webhook secret (default: GITHUB_WEBHOOK_SECRET, else <RUNNERHUB_DATA_DIR>/"+SecretFile+")")
	return t
}

// secret is the webhook secret to sign with: -secret-file, else the stack's own.
func (t *target) secret() (string, error) {
	if *t.secretFile == "" {
		return Secret(t.cfg), nil
	}
	b, err := os.ReadFile(*t.secretFile)
	if err != nil {
		return "", fmt.Errorf("-secret-file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// localBase is the running stack's URL for cfg.
func localBase(cfg config.Config) string { return fmt.Sprintf("http://localhost:%d", cfg.Port) }

// SendCommand is `send [flags] FILE.json`: it posts the payload in FILE, edited by the
// flags, as a signed delivery, and says what it sent (the delivery's id in the API, and
// the job's). -h prints the flags and returns flag.ErrHelp.
func SendCommand(ctx context.Context, cfg config.Config, args []string, out, errOut io.Writer) error {
	fs := newFlags("send", "send [flags] FILE.json", errOut)
	t := addTarget(fs, cfg, "url")
	fs.Lookup("url").Usage = "webhook URL (default " + localBase(cfg) + ingest.Path + ", from PORT)"
	event := fs.String("event", "", "X-GitHub-Event (default: from the file name, e.g. workflow_job.queued.json → workflow_job)")
	id := fs.String("delivery", "", "X-GitHub-Delivery (default: a new GUID)")
	hookID := fs.String("hook-id", DefaultHookID, "X-GitHub-Hook-ID (empty: none)")
	var edit deliveries.PayloadEdit
	fs.Int64Var(&edit.JobID, "job-id", 0, "set workflow_job.id")
	fs.Int64Var(&edit.RunID, "run-id", 0, "set workflow_job.run_id (workflow_run.id)")
	fs.StringVar(&edit.Runner, "runner", "", "set workflow_job.runner_name")
	fs.StringVar(&edit.Repository, "repository", "", "set the repository (owner/name)")
	labels := fs.String("labels", "", "set workflow_job.labels, comma-separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("send takes one payload file, not %d", fs.NArg())
	}
	if *labels != "" {
		edit.Labels = strings.Split(*labels, ",")
	}
	raw, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	body, err := edit.Apply(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	secret, err := t.secret()
	if err != nil {
		return err
	}
	d := Delivery{URL: *t.base, Secret: secret, Event: *event, DeliveryID: *id, HookID: *hookID, Body: body}
	if d.URL == "" {
		d.URL = localBase(cfg) + ingest.Path
	}
	if d.Event == "" {
		d.Event = EventFromFile(fs.Arg(0))
	}
	if d.DeliveryID == "" {
		d.DeliveryID = NewDeliveryID()
	}
	status, resp, err := d.Post(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%d %s", status, resp)
	if status >= 300 {
		return fmt.Errorf("delivery %s refused with status %d", d.DeliveryID, status)
	}
	fmt.Fprintf(out, "sent %s\n", describe(d))
	return nil
}

// describe says what a sent delivery was, with the ids the API knows it by.
func describe(d Delivery) string {
	hook := cmp.Or(d.HookID, "-")
	s := fmt.Sprintf("%s delivery %s:%s (GET /api/webhooks/events/%s:%s)", d.Event, hook, d.DeliveryID, hook, d.DeliveryID)
	var p struct {
		Action string `json:"action"`
		Job    *struct {
			ID     int64  `json:"id"`
			RunID  int64  `json:"run_id"`
			Runner string `json:"runner_name"`
		} `json:"workflow_job"`
	}
	if json.Unmarshal(d.Body, &p) == nil && p.Job != nil {
		s += fmt.Sprintf("; %s job %d of run %d (GET /api/jobs/%d)", p.Action, p.Job.ID, p.Job.RunID, p.Job.ID)
	}
	return s
}

// APIToken returns an admin API token of the local stack for cfg, for tools that call
// its API: the first of RUNNERHUB_API_TOKENS, else the one kept in the data directory.
// It never generates one.
func APIToken(cfg config.Config) string {
	if tokens := auth.Split(cfg.APITokens); len(tokens) > 0 {
		return tokens[0]
	}
	b, _ := os.ReadFile(filepath.Join(cfg.DataDir, TokenFile))
	return strings.TrimSpace(string(b))
}

// shellQuote quotes s for a POSIX shell when it needs it, for commands printed to be
// pasted.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
