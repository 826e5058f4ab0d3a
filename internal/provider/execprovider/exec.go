// Package execprovider is the "exec" provider: it runs a command, without a shell, with
// the action (create, delete or list) as one more argument, writes one JSON object to its
// stdin and reads one from its stdout. Exit status 0 is success; any other status, a
// timeout or bad JSON is a failure, and the command's stderr is logged (with the JIT
// configuration, should the command echo it, taken out).
package execprovider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/runnerhub/webhooks/internal/provider"
)

// Limits on what RunnerHub reads from the command. Past them the output is dropped (the
// command is not blocked), and an over-long stdout fails the call.
const (
	maxStdout = 1 << 20
	maxStderr = 16 << 10
	// waitDelay is how long Wait waits, once the command has exited, for a process it left
	// behind to close its output: a create that starts the runner without redirecting the
	// runner's output must not hold the call open.
	waitDelay = 2 * time.Second
)

// Provider runs one pool's command.
type Provider struct {
	command []string
	timeout time.Duration
	log     *slog.Logger
}

var _ provider.Provider = (*Provider)(nil)

// New returns the provider for cfg, logging the command's failures to log.
func New(cfg provider.ExecConfig, log *slog.Logger) *Provider {
	return &Provider{command: cfg.Command, timeout: cfg.Timeout, log: log}
}

// CreateInput is create's stdin, the contract's create request; repository and jobId
// are null for a warm runner. It is exported for the fake providers of the tests, whose
// machines are made from it.
type CreateInput struct {
	Name       string   `json:"name"`
	Pool       string   `json:"pool"`
	Labels     []string `json:"labels"`
	JITConfig  string   `json:"jitConfig"`
	Ephemeral  bool     `json:"ephemeral"`
	Repository *string  `json:"repository"`
	JobID      *int64   `json:"jobId"`
}

// Create runs "command create".
func (p *Provider) Create(ctx context.Context, req provider.CreateRequest) (string, error) {
	in := CreateInput{Name: req.Name, Pool: req.Pool, Labels: req.Labels, JITConfig: req.JITConfig, Ephemeral: req.Ephemeral}
	if in.Labels == nil {
		in.Labels = []string{}
	}
	if req.Repository != "" {
		in.Repository = &req.Repository
	}
	if req.JobID != 0 {
		in.JobID = &req.JobID
	}
	var out struct {
		ProviderID string `json:"providerId"`
	}
	if err := p.run(ctx, "create", in, &out, req.JITConfig); err != nil {
		return "", err
	}
	if out.ProviderID == "" {
		return "", fmt.Errorf("exec provider create %s: stdout has no providerId", req.Name)
	}
	return out.ProviderID, nil
}

// Delete runs "command delete".
func (p *Provider) Delete(ctx context.Context, name, providerID string) error {
	in := struct {
		Name       string `json:"name"`
		ProviderID string `json:"providerId"`
	}{name, providerID}
	var out struct{}
	return p.run(ctx, "delete", in, &out, "")
}

// List runs "command list".
func (p *Provider) List(ctx context.Context, pool string) ([]provider.Instance, error) {
	in := struct {
		Pool string `json:"pool"`
	}{pool}
	// A pointer tells a missing "runners" (a broken command) from an empty list.
	var out struct {
		Runners *[]provider.Instance `json:"runners"`
	}
	if err := p.run(ctx, "list", in, &out, ""); err != nil {
		return nil, err
	}
	if out.Runners == nil {
		return nil, errors.New("exec provider list: stdout has no runners list")
	}
	for i, r := range *out.Runners {
		if r.Name == "" || r.ProviderID == "" {
			return nil, fmt.Errorf("exec provider list: runner %d lacks a name or providerId", i)
		}
	}
	return *out.Runners, nil
}

// run runs the command for action with in as stdin and decodes its stdout into out.
// secret, when set, is replaced in what is logged or returned of stderr.
func (p *Provider) run(ctx context.Context, action string, in, out any, secret string) error {
	if len(p.command) == 0 {
		return fmt.Errorf("exec provider %s: no command configured", action)
	}
	stdin, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("exec provider %s: %w", action, err)
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.command[0], append(p.command[1:len(p.command):len(p.command)], action)...)
	// Its own process group, so that a timeout ends whatever the command started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	stdout, stderr := &limitedBuffer{limit: maxStdout}, &limitedBuffer{limit: maxStderr, keepEnd: true}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), stdout, stderr

	started := time.Now()
	err = cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil // the command exited 0; something it started kept the output open
	}
	switch {
	case err == nil:
	case parent.Err() != nil:
		err = fmt.Errorf("stopped: %w", parent.Err())
	case ctx.Err() != nil:
		err = fmt.Errorf("no answer within %v: %w", p.timeout, ctx.Err())
	}
	if err == nil {
		err = decodeOutput(stdout, out)
	}
	if err == nil {
		return nil
	}
	tail := stderr.text(secret)
	p.log.LogAttrs(ctx, slog.LevelWarn, "exec provider failed",
		slog.String("action", action), slog.String("command", p.command[0]),
		slog.Duration("elapsed", time.Since(started)), slog.String("error", err.Error()),
		slog.String("stderr", tail))
	if tail != "" {
		return fmt.Errorf("exec provider %s: %w (stderr: %s)", action, err, lastLine(tail))
	}
	return fmt.Errorf("exec provider %s: %w", action, err)
}

// decodeOutput reads stdout as exactly one JSON object.
func decodeOutput(stdout *limitedBuffer, out any) error {
	if stdout.dropped {
		return fmt.Errorf("stdout exceeds %d bytes", maxStdout)
	}
	b := bytes.TrimSpace(stdout.buf)
	if len(b) == 0 || b[0] != '{' {
		return errors.New("stdout is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("stdout is not the expected JSON object: %w", err)
	}
	if dec.More() {
		return errors.New("stdout has more than one JSON value")
	}
	return nil
}

// redact takes secret out of s, including a part of it that s starts or ends with (where
// the output was cut).
func redact(s, secret string) string {
	if secret == "" {
		return s
	}
	s = strings.ReplaceAll(s, secret, redacted)
	for k := min(len(secret)-1, len(s)); k >= 8; k-- {
		if strings.HasSuffix(s, secret[:k]) {
			s = s[:len(s)-k] + redacted
			break
		}
	}
	for k := min(len(secret)-1, len(s)); k >= 8; k-- {
		if strings.HasPrefix(s, secret[len(secret)-k:]) {
			s = redacted + s[k:]
			break
		}
	}
	return s
}

const redacted = "[jit config removed]"

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// limitedBuffer keeps limit bytes of what is written to it, the first ones or (keepEnd)
// the last ones, and drops the rest, always reporting the whole write as done so that
// the command is never blocked or broken by a full pipe.
type limitedBuffer struct {
	buf     []byte
	limit   int
	keepEnd bool
	dropped bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	switch {
	case b.keepEnd:
		b.buf = append(b.buf, p...)
		if over := len(b.buf) - b.limit; over > 0 {
			b.buf, b.dropped = append(b.buf[:0], b.buf[over:]...), true
		}
	case len(b.buf)+len(p) > b.limit:
		b.buf, b.dropped = append(b.buf, p[:b.limit-len(b.buf)]...), true
	default:
		b.buf = append(b.buf, p...)
	}
	return n, nil
}

// text is what was kept, with secret taken out, marked when some was dropped.
func (b *limitedBuffer) text(secret string) string {
	s := redact(strings.TrimSpace(string(b.buf)), secret)
	if b.dropped && s != "" {
		s = "[truncated] " + s
	}
	return s
}
