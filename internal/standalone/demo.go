package standalone

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"time"

	"github.com/runnerhub/webhooks/internal/api/deliveries"
	"github.com/runnerhub/webhooks/internal/config"
	"github.com/runnerhub/webhooks/internal/ingest"
	"github.com/runnerhub/webhooks/testdata"
)

// The demo's fleet: one pool and one runner, named so that they are easy to find and
// to remove afterwards.
const (
	demoPool       = "demo"
	demoRunner     = "demo-runner-1"
	demoRepository = "demo-org/demo-app"
)

var demoLabels = []string{"self-hosted", "linux", "demo"}

// DemoCommand is `demo [flags]`: against the running local stack, it creates a pool and
// a runner, then plays two jobs through queued → in_progress → completed, the second
// queued while the runner is busy, pausing -pace between steps and saying what the
// dashboard shows at each. -h prints the flags and returns flag.ErrHelp.
func DemoCommand(ctx context.Context, cfg config.Config, args []string, out, errOut io.Writer) error {
	flags := newFlags("demo", "demo [flags]", errOut)
	t := addTarget(flags, cfg, "api")
	flags.Lookup("api").Usage = "the running stack's URL (default " + localBase(cfg) + ", from PORT)"
	pace := flags.Duration("pace", 3*time.Second, "pause between steps (0: none)")
	token := flags.String("token", "", "admin API token (default: the first of RUNNERHUB_API_TOKENS, else <RUNNERHUB_DATA_DIR>/"+TokenFile+")")
	if err := flags.Parse(args); err != nil {
		return err
	}
	secret, err := t.secret()
	if err != nil {
		return err
	}
	d := &demo{ctx: ctx, base: cmp.Or(*t.base, localBase(cfg)), token: cmp.Or(*token, APIToken(cfg)), secret: secret, out: out, pace: *pace}
	if d.token == "" {
		return fmt.Errorf("no API token: pass -token, or set RUNNERHUB_API_TOKENS as for the stack")
	}
	return d.run()
}

// demo is one run of the demo against one stack.
type demo struct {
	ctx                 context.Context
	base, token, secret string
	out                 io.Writer
	pace                time.Duration
}

func (d *demo) run() error {
	fmt.Fprintf(d.out, "Open the dashboard: %s/#token=%s\n\n", d.base, d.token)
	if err := d.api(http.MethodPut, "/api/pools/"+demoPool, `{"labels": ["linux", "demo"], "minIdle": 0, "maxRunners": 2}`, http.StatusOK, http.StatusCreated); err != nil {
		return err
	}
	d.say("Pool %q created (labels linux, demo): see it under Pools.", demoPool)
	// A runner left by an earlier demo is retired first, so the story starts idle.
	if err := d.api(http.MethodDelete, "/api/runners/"+demoRunner, "", http.StatusOK, http.StatusNotFound); err != nil {
		return err
	}
	if err := d.api(http.MethodPost, "/api/runners", fmt.Sprintf(`{"name": %q, "pool": %q}`, demoRunner, demoPool), http.StatusCreated); err != nil {
		return err
	}
	d.say("Runner %s registered: idle in pool %s.", demoRunner, demoPool)

	first, second := deliveries.NewSampleID(), deliveries.NewSampleID()
	steps := []struct {
		job    int64
		action string
		say    string
	}{
		{first, "queued", "Job %d queued: it is reserved for " + demoRunner + " at once (Jobs: reserved)."},
		{first, "in_progress", "Job %d runs on " + demoRunner + " (Runners: busy)."},
		{second, "queued", "Job %d queued while the runner is busy: it waits in the pool's queue (Jobs: pending; the pool's demand goes up)."},
		{first, "completed", "Job %d completed: " + demoRunner + " takes the waiting job next (Jobs: the second one reserved)."},
		{second, "in_progress", "Job %d runs on " + demoRunner + "."},
		{second, "completed", "Job %d completed: the runner is idle again and the queue is empty."},
	}
	for _, s := range steps {
		if err := d.deliver(s.job, s.action); err != nil {
			return err
		}
		d.say(s.say, s.job)
	}
	fmt.Fprintf(d.out, "\nDone. Events lists the six deliveries; Statistics counts them. To remove the demo:\n"+
		"  curl -X DELETE -H 'Authorization: Bearer %s' %s/api/runners/%s\n"+
		"  curl -X DELETE -H 'Authorization: Bearer %s' %s/api/pools/%s\n",
		d.token, d.base, demoRunner, d.token, d.base, demoPool)
	return nil
}

// say prints one step and waits the pace.
func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "- "+format+"\n", args...)
	select {
	case <-d.ctx.Done():
	case <-time.After(d.pace):
	}
}

// deliver sends the testdata workflow_job of action for job, in the demo's repository,
// with the demo's labels and, once it runs, its runner.
func (d *demo) deliver(job int64, action string) error {
	payload, err := fs.ReadFile(testdata.Payloads, "workflow_job."+action+".json")
	if err != nil {
		return err
	}
	edit := deliveries.PayloadEdit{Repository: demoRepository, JobID: job, RunID: job + 1, Labels: demoLabels}
	if action != "queued" {
		edit.Runner = demoRunner
	}
	if payload, err = edit.Apply(payload); err != nil {
		return err
	}
	del := Delivery{URL: d.base + ingest.Path, Secret: d.secret, Event: "workflow_job", DeliveryID: NewDeliveryID(), HookID: DefaultHookID, Body: payload}
	status, resp, err := del.Post(d.ctx)
	if err != nil {
		return err
	}
	if status != http.StatusAccepted {
		return fmt.Errorf("the %s delivery of job %d was refused: %d %s", action, job, status, resp)
	}
	return nil
}

// api calls the management API and checks the status is one of want.
func (d *demo) api(method, path, body string, want ...int) error {
	req, err := http.NewRequestWithContext(d.ctx, method, d.base+path, bytes.NewReader([]byte(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("is the stack running at %s? %w", d.base, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	for _, w := range want {
		if resp.StatusCode == w {
			return nil
		}
	}
	return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, answer)
}
