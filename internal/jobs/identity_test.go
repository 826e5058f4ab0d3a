package jobs_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/testenv"
)

// A workflow_job whose id or repository GitHub could not have sent is finished as
// ignored, with the reason, and makes no job: no record, no demand, no counter. (Ingest
// has already answered 202: GitHub must not see a failure for it.)
func TestJobWithoutGitHubIdentityIsIgnored(t *testing.T) {
	cases := []struct {
		name  string
		job   testenv.Job
		clear bool // drop the repository from the payload
		why   string
	}{
		{name: "negative id", job: testenv.Job{ID: -5}, why: "workflow_job.id -5"},
		{name: "zero id", job: testenv.Job{ID: 0}, why: "workflow_job.id 0"},
		{name: "path as repository", job: testenv.Job{ID: 41, Repository: "../../x\u0000y"}, why: `repository "../../x\x00y"`},
		{name: "no owner", job: testenv.Job{ID: 42, Repository: "repo"}, why: "repository"},
		{name: "three parts", job: testenv.Job{ID: 43, Repository: "a/b/c"}, why: "repository"},
		{name: "dot name", job: testenv.Job{ID: 44, Repository: "octo/.."}, why: "repository"},
		{name: "owner too long", job: testenv.Job{ID: 45, Repository: strings.Repeat("o", 40) + "/r"}, why: "repository"},
		{name: "no repository", job: testenv.Job{ID: 46}, clear: true, why: `repository ""`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEngine(t)
			c.job.Status, c.job.Labels, c.job.Created, c.job.At = "queued", []string{"linux"}, t0, t0
			payload := testenv.JobPayload(t, c.job)
			if c.clear {
				payload = []byte(strings.Replace(string(payload), `"repository":{`, `"repository_was":{`, 1))
			}
			rec := &delivery.Record{Key: delivery.Key{HookID: "1", DeliveryID: "bad"}, Event: "workflow_job", Action: "queued",
				ReceivedAt: t0, State: delivery.Received, Payload: payload}
			plan, err := e.Plan(t.Context(), rec)
			if err != nil {
				t.Fatal(err)
			}
			if plan.State != delivery.Ignored || !strings.HasPrefix(plan.Outcome.Text(), "ignored: "+c.why) {
				t.Fatalf("finished %s %q, want ignored: %s...", plan.State, plan.Outcome.Text(), c.why)
			}
			if len(plan.Change.Jobs) != 0 || len(plan.Change.Runners) != 0 || len(plan.Demands) != 0 || plan.Advanced != nil {
				t.Fatalf("an ignored delivery changed something: %+v", plan)
			}
			commit(t, e, &plan.Change)
			if _, err := e.Store.Job(t.Context(), c.job.ID); !errors.Is(err, jobs.ErrNotFound) {
				t.Fatalf("job %d: err = %v, want not found", c.job.ID, err)
			}
		})
	}

	t.Run("a GitHub repository name is kept", func(t *testing.T) {
		e := newEngine(t)
		plan := queue(t, e, 47, []string{"linux"}, t0)
		if plan.State == delivery.Ignored {
			t.Fatalf("a valid job was ignored: %q", plan.Outcome.Text())
		}
		if j := job(t, e, 47); j.Repository == "" {
			t.Fatalf("job 47 stored without its repository: %+v", j)
		}
	})
}
