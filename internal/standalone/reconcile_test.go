package standalone

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/ingest"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/reconcile"
	"github.com/runnerhub/webhooks/internal/testenv"
	"github.com/runnerhub/webhooks/internal/testenv/fakegithub"
)

const (
	testHook   = "repo/octo/app/12"
	testHookID = 12
	testPAT    = "github_pat_local_test"
	testPools  = `[{"name": "linux", "labels": ["linux"], "maxRunners": 5}]`
)

// ghStack is a local stack talking to a fake GitHub whose hook testHook delivers to it.
type ghStack struct {
	*Stack
	url  string
	fake *fakegithub.Server
}

func startGHStack(t testing.TB, extra map[string]string, prepare ...func(*Stack)) *ghStack {
	t.Helper()
	fake := fakegithub.Start(t)
	fake.Token = testPAT
	env := map[string]string{
		"RUNNERHUB_GITHUB_API_URL": fake.URL,
		"RUNNERHUB_GITHUB_TOKEN":   testPAT,
		"RUNNERHUB_GITHUB_HOOKS":   testHook,
		// Cycles are run by the tests; the ticker stays out of the way.
		"RUNNERHUB_RECONCILE_INTERVAL": "1h",
		"RUNNERHUB_RECONCILE_AFTER":    "1s",
		"RUNNERHUB_POOLS":              testPools,
	}
	maps.Copy(env, extra)
	if env["RUNNERHUB_GITHUB_APP_ID"] != "" {
		delete(env, "RUNNERHUB_GITHUB_TOKEN")
		key := filepath.Join(t.TempDir(), "app.pem")
		if err := os.WriteFile(key, fake.PrivateKeyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		env["RUNNERHUB_GITHUB_APP_ID"] = "424242"
		env["RUNNERHUB_GITHUB_APP_PRIVATE_KEY_FILE"] = key
	}
	s, url := startStack(t, env, prepare...)
	if s.Reconciler == nil {
		t.Fatal("GitHub credentials configured, but no reconciler")
	}
	fake.AddHook(testHook, testHookID, testSecret, fakegithub.HTTPTarget(url+ingest.Path))
	return &ghStack{Stack: s, url: url, fake: fake}
}

func (g *ghStack) cycle(t *testing.T) reconcile.Report {
	t.Helper()
	return g.Reconciler.Run(t.Context())
}

func (g *ghStack) runner(t *testing.T, name string) *jobs.Runner {
	t.Helper()
	r, err := g.db.Store().Runner(t.Context(), name)
	if err != nil {
		t.Fatalf("runner %s: %v", name, err)
	}
	return r
}

// metric reads one sample from /metrics ("" when absent).
func (g *ghStack) metric(t testing.TB, series string) string {
	t.Helper()
	_, body := apiCall(t, g.url, g.GeneratedToken, http.MethodGet, "/metrics", "")
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

func (g *ghStack) health(t *testing.T) (int, string) {
	t.Helper()
	resp, err := http.Get(g.url + "/api/webhooks/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitJob waits until the job reaches status (deliveries are processed by the
// stack's workers).
func (g *ghStack) waitJob(t *testing.T, id int64, want jobs.Status) *jobs.Job {
	t.Helper()
	return poll(t, fmt.Sprintf("job %d in status %s", id, want), func() (*jobs.Job, bool) {
		j, err := g.db.Store().Job(t.Context(), id)
		return j, err == nil && j.Status == want
	})
}

func queued(t *testing.T, id int64) []byte {
	return testenv.JobPayload(t, testenv.Job{ID: id, Labels: []string{"linux"}, Status: "queued", Repository: "octo/app", Created: time.Now().Add(-time.Minute)})
}

func TestRedeliveryOfWhatNeverArrived(t *testing.T) {
	for _, tc := range []struct {
		name string
		// deliver sends deliveries through the fake and returns the GUIDs that must be
		// redelivered and processed.
		deliver  func(t *testing.T, g *ghStack) []string
		extra    map[string]string
		wantLate int
	}{
		{"dropped deliveries are redelivered and processed", func(t *testing.T, g *ghStack) []string {
			a := g.fake.Deliver(testHook, "workflow_job", queued(t, 101), fakegithub.Dropped)
			g.fake.Deliver(testHook, "workflow_job", queued(t, 102), fakegithub.Delivered)
			b := g.fake.Deliver(testHook, "workflow_job", queued(t, 103), fakegithub.Dropped)
			return []string{a, b}
		}, nil, 0},
		{"late acknowledgements are counted, not redelivered", func(t *testing.T, g *ghStack) []string {
			g.fake.Deliver(testHook, "workflow_job", queued(t, 111), fakegithub.Late)
			return nil
		}, nil, 1},
		{"nothing older than GitHub's three days", func(t *testing.T, g *ghStack) []string {
			g.fake.AddPastAttempt(testHook, "workflow_job", queued(t, 121), 4*24*time.Hour)
			recent := g.fake.AddPastAttempt(testHook, "workflow_job", queued(t, 122), 2*24*time.Hour)
			return []string{recent}
		}, nil, 0},
		{"paging over several pages", func(t *testing.T, g *ghStack) []string {
			var lost []string
			for i := range int64(230) {
				mode := fakegithub.Delivered
				if i%23 == 0 {
					mode = fakegithub.Dropped
				}
				guid := g.fake.Deliver(testHook, "ping", []byte(`{"zen":"Keep it logically awesome.","hook_id":12}`), mode)
				if mode == fakegithub.Dropped {
					lost = append(lost, guid)
				}
			}
			return lost
		}, nil, 0},
		{"the App's own hook, with App authentication", func(t *testing.T, g *ghStack) []string {
			return []string{g.fake.Deliver("app", "workflow_job", queued(t, 131), fakegithub.Dropped)}
		}, map[string]string{"RUNNERHUB_GITHUB_APP_ID": "set", "RUNNERHUB_GITHUB_HOOKS": "app"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := startGHStack(t, tc.extra)
			hook, hookID := testHook, "12"
			if tc.extra["RUNNERHUB_GITHUB_HOOKS"] == "app" {
				hook, hookID = "app", "77"
				g.fake.AddHook("app", 77, testSecret, fakegithub.HTTPTarget(g.url+ingest.Path))
			}
			lost := tc.deliver(t, g)
			rep := g.cycle(t)
			if rep.Redelivered != len(lost) || rep.LateAcks != tc.wantLate || len(rep.Errors) > 0 {
				t.Fatalf("cycle: %+v; want %d redelivered, %d late", rep, len(lost), tc.wantLate)
			}
			if n := g.fake.Redeliveries(hook); n != len(lost) {
				t.Fatalf("GitHub got %d redelivery requests, want %d", n, len(lost))
			}
			if g.fake.TooOldRedeliveries() > 0 {
				t.Fatal("asked GitHub to redeliver an attempt older than three days")
			}
			for _, guid := range lost {
				waitState(t, g.Stack, delivery.Key{HookID: hookID, DeliveryID: guid}, delivery.Processed)
			}
			// The next cycle finds everything settled: nothing redelivered or counted twice.
			if again := g.cycle(t); again.Redelivered != 0 || again.LateAcks != 0 || again.GivenUp != 0 {
				t.Fatalf("second cycle: %+v, want nothing to do", again)
			}
			checkRedeliveredMarks(t, g, hookID, lost)
			if len(lost) > 0 {
				if got := g.metric(t, `webhook_redeliveries_requested_total{hook="`+hook+`"}`); got != strconv.Itoa(len(lost)) {
					t.Fatalf("webhook_redeliveries_requested_total: %q, want %d", got, len(lost))
				}
			}
			if tc.wantLate > 0 {
				if got := g.metric(t, "webhook_late_acknowledgements_total"); got != strconv.Itoa(tc.wantLate) {
					t.Fatalf("webhook_late_acknowledgements_total: %q, want %d", got, tc.wantLate)
				}
			}
		})
	}
}

// checkRedeliveredMarks: the events API says redelivered exactly for the deliveries that
// came by redelivery, in the listing and in each one's detail.
func checkRedeliveredMarks(t *testing.T, g *ghStack, hookID string, redelivered []string) {
	t.Helper()
	var list struct {
		Events []struct {
			ID          string
			DeliveryID  string
			Redelivered bool
		}
	}
	apiGet(t, g.url, g.GeneratedToken, "/api/webhooks/events?limit=1000", &list)
	if len(list.Events) == 0 {
		t.Fatal("no events listed")
	}
	for _, e := range list.Events {
		if want := slices.Contains(redelivered, e.DeliveryID); e.Redelivered != want {
			t.Errorf("listed event %s: redelivered = %v, want %v", e.ID, e.Redelivered, want)
		}
	}
	for _, guid := range redelivered {
		var detail map[string]any
		apiGet(t, g.url, g.GeneratedToken, "/api/webhooks/events/"+hookID+":"+guid, &detail)
		if detail["redelivered"] != true {
			t.Errorf("GET /api/webhooks/events/%s:%s: redelivered = %v, want true", hookID, guid, detail["redelivered"])
		}
	}
}

func TestRedeliveryUnderGitHubTrouble(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trouble func(f *fakegithub.Server)
		// wantFirst is what the first cycle redelivers; a second cycle (after the
		// trouble passed) redelivers the rest.
		wantFirst     int
		wait          time.Duration
		wantRemaining string // the rate-limit gauge during the pause, when it says
	}{
		{"5xx", func(f *fakegithub.Server) { f.FailNext(1, http.StatusBadGateway) }, 0, 0, ""},
		{"rate limit spent: back off, then resume", func(f *fakegithub.Server) {
			// The listing spends the last call of the window; the redeliveries wait for the reset.
			// The window outlasts a slow first cycle, so that the cycle after it is paused too.
			f.SetRateLimit(5000, 1, time.Now().Add(4*time.Second))
		}, 0, 2 * time.Second, "0"},
		{"secondary rate limit: back off for Retry-After, then resume", func(f *fakegithub.Server) {
			f.SecondaryLimitNext(time.Second)
		}, 0, time.Second, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := startGHStack(t, nil)
			var lost []string
			for i := range int64(3) {
				lost = append(lost, g.fake.Deliver(testHook, "workflow_job", queued(t, 200+i), fakegithub.Dropped))
			}
			tc.trouble(g.fake)
			first := g.cycle(t)
			if first.Redelivered != tc.wantFirst {
				t.Fatalf("first cycle: %+v, want %d redelivered", first, tc.wantFirst)
			}
			if tc.wantFirst < len(lost) && len(first.Errors) == 0 {
				t.Fatalf("first cycle reports no trouble: %+v", first)
			}
			if tc.wait > 0 {
				if first.PausedUntil.IsZero() {
					t.Fatalf("a spent rate limit did not pause the cycle: %+v", first)
				}
				calls := len(g.fake.Calls())
				if paused := g.cycle(t); paused.Redelivered != 0 || len(g.fake.Calls()) != calls {
					t.Fatalf("a cycle during the pause called GitHub: %+v", paused)
				}
				if got := g.metric(t, `runnerhub_github_rate_limit_remaining{resource="core"}`); tc.wantRemaining != "" && got != tc.wantRemaining {
					t.Fatalf("runnerhub_github_rate_limit_remaining: %q, want %s", got, tc.wantRemaining)
				}
				time.Sleep(time.Until(first.PausedUntil) + 200*time.Millisecond)
			}
			second := g.cycle(t)
			if first.Redelivered+second.Redelivered != len(lost) || len(second.Errors) > 0 {
				t.Fatalf("second cycle: %+v; want the other %d redelivered", second, len(lost)-first.Redelivered)
			}
			for _, guid := range lost {
				waitState(t, g.Stack, delivery.Key{HookID: "12", DeliveryID: guid}, delivery.Processed)
			}
		})
	}
}

func TestRedeliveryGivesUp(t *testing.T) {
	g := startGHStack(t, nil)
	g.fake.SetHookDown(testHook, true) // every redelivery fails too
	guid := g.fake.Deliver(testHook, "workflow_job", queued(t, 301), fakegithub.Dropped)
	for cycle := 1; cycle <= reconcile.DefaultLimits.MaxRedeliveries; cycle++ {
		if rep := g.cycle(t); rep.Redelivered != 1 || rep.GivenUp != 0 {
			t.Fatalf("cycle %d: %+v, want one redelivery", cycle, rep)
		}
	}
	if rep := g.cycle(t); rep.Redelivered != 0 || rep.GivenUp != 1 {
		t.Fatalf("after %d redeliveries: %+v, want it given up", reconcile.DefaultLimits.MaxRedeliveries, rep)
	}
	if rep := g.cycle(t); rep.Redelivered != 0 || rep.GivenUp != 0 {
		t.Fatalf("after giving up: %+v, want nothing", rep)
	}
	if got := g.metric(t, "webhook_deliveries_given_up_total"); got != "1" {
		t.Fatalf("webhook_deliveries_given_up_total %q, want 1", got)
	}
	given, err := reconcile.GivenUpDeliveries(t.Context(), g.db.Store(), time.Now())
	if err != nil || len(given) != 1 || given[0].GUID != guid || given[0].Redeliveries != 3 {
		t.Fatalf("given up: %+v, %v", given, err)
	}
	if code, body := g.health(t); code != http.StatusOK || !strings.Contains(body, "deliveries given up: 1 deliveries") || !strings.Contains(body, `"degraded"`) {
		t.Fatalf("health: %d %s; want degraded by the given-up delivery", code, body)
	}
	if n := g.fake.Attempts(testHook, guid); n != 4 {
		t.Fatalf("%d attempts at GitHub, want the original and 3 redeliveries", n)
	}
}

func TestJobReconciliation(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// github is GitHub's view of job 401 (nil: 404), which RunnerHub saw queued and
		// reserved for runner linux-1.
		github      *fakegithub.Job
		wantStatus  jobs.Status
		wantAlloc   jobs.Allocation
		wantRunners map[string]jobs.RunnerState
		stranded    string
	}{
		{"a lost completed frees the runner", &fakegithub.Job{Status: "completed", Conclusion: "success", RunnerName: "linux-1", RunnerID: 1, CompletedAt: time.Now()},
			jobs.StatusCompleted, jobs.AllocationAssigned, map[string]jobs.RunnerState{"linux-1": jobs.RunnerIdle}, "completed"},
		{"a lost in_progress binds the right runner", &fakegithub.Job{Status: "in_progress", RunnerName: "linux-2", RunnerID: 2},
			jobs.StatusInProgress, jobs.AllocationAssigned, map[string]jobs.RunnerState{"linux-1": jobs.RunnerIdle, "linux-2": jobs.RunnerBusy}, "in_progress"},
		{"a job GitHub no longer has is abandoned and releases its runner", nil,
			jobs.StatusCompleted, jobs.AllocationAbandoned, map[string]jobs.RunnerState{"linux-1": jobs.RunnerIdle}, "gone"},
		{"a job GitHub still has queued is left alone", &fakegithub.Job{Status: "queued"},
			jobs.StatusQueued, jobs.AllocationReserved, map[string]jobs.RunnerState{"linux-1": jobs.RunnerReserved}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := startGHStack(t, nil)
			engine := g.processor.Engine
			if _, _, err := engine.RegisterRunner(ctx, jobs.RunnerSpec{Name: "linux-1", Pool: "linux"}, time.Now()); err != nil {
				t.Fatal(err)
			}
			g.fake.Deliver(testHook, "workflow_job", queued(t, 401), fakegithub.Delivered)
			if j := g.waitJob(t, 401, jobs.StatusQueued); j.ReservedRunner != "linux-1" {
				t.Fatalf("job not reserved: %+v", j)
			}
			if _, _, err := engine.RegisterRunner(ctx, jobs.RunnerSpec{Name: "linux-2", Pool: "linux"}, time.Now()); err != nil {
				t.Fatal(err)
			}
			if tc.github != nil {
				j := *tc.github
				j.ID, j.RunID, j.Labels = 401, 5000+401%7, []string{"linux"}
				g.fake.PutJob("octo/app", j)
			}
			if rep := g.cycle(t); rep.JobsChecked != 0 {
				t.Fatalf("a job with news less than RUNNERHUB_RECONCILE_AFTER old was checked: %+v", rep)
			}
			time.Sleep(1100 * time.Millisecond) // RUNNERHUB_RECONCILE_AFTER=1s
			rep := g.cycle(t)
			wantApplied := map[bool]int{true: 1, false: 0}[tc.stranded != ""]
			if rep.JobsChecked != 1 || rep.JobsApplied != wantApplied || len(rep.Errors) > 0 {
				t.Fatalf("cycle: %+v", rep)
			}
			j := g.waitJob(t, 401, tc.wantStatus)
			if j.Allocation != tc.wantAlloc {
				t.Fatalf("allocation %q, want %q", j.Allocation, tc.wantAlloc)
			}
			for name, want := range tc.wantRunners {
				if r := g.runner(t, name); r.State != want {
					t.Fatalf("runner %s: %s, want %s", name, r.State, want)
				}
			}
			if tc.stranded == "" {
				return
			}
			id := "reconcile-401-" + tc.stranded
			if !strings.Contains(strings.Join(j.Deliveries, ","), id) {
				t.Fatalf("job deliveries %v lack %s", j.Deliveries, id)
			}
			rec := waitState(t, g.Stack, delivery.Key{HookID: reconcile.Hook, DeliveryID: id}, delivery.Processed)
			if rec.InstallationTargetType != "reconciliation" || !bytes.Contains(rec.Payload, []byte(`"reconciliation"`)) {
				t.Fatalf("the audit trail does not mark %s as a reconciliation: %+v", id, rec.InstallationTargetType)
			}
			if got := g.metric(t, `runnerhub_reconcile_stranded_jobs_total{status="`+tc.stranded+`"}`); got != "1" {
				t.Fatalf("stranded jobs metric %q", got)
			}
			// Asked at most once per interval: the next cycle leaves it alone.
			if again := g.cycle(t); again.JobsChecked != 0 {
				t.Fatalf("job asked about twice in one interval: %+v", again)
			}
		})
	}
}

func TestRunnerReconciliation(t *testing.T) {
	ctx := context.Background()
	g := startGHStack(t, map[string]string{
		"RUNNERHUB_GITHUB_RUNNER_SCOPE":   "org/octo",
		"RUNNERHUB_GITHUB_IMPORT_RUNNERS": "1",
		"RUNNERHUB_GITHUB_HOOKS":          "",
	})
	engine := g.processor.Engine
	for _, name := range []string{"kept-1", "gone-1"} {
		if _, _, err := engine.RegisterRunner(ctx, jobs.RunnerSpec{Name: name, Pool: "linux"}, time.Now().Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	g.fake.AddRunner("org/octo", "kept-1", []string{"self-hosted", "linux"}, "online", false)
	g.fake.AddRunner("org/octo", "static-1", []string{"self-hosted", "Linux", "x64"}, "online", false)
	g.fake.AddRunner("org/octo", "mac-1", []string{"self-hosted", "macOS"}, "online", false)
	rep := g.cycle(t)
	if rep.RunnersRetired != 1 || rep.RunnersImported != 1 || rep.RunnersSeen != 1 || len(rep.Errors) > 0 {
		t.Fatalf("cycle: %+v; want gone-1 retired, static-1 imported, kept-1 seen", rep)
	}
	if _, err := g.db.Store().Runner(ctx, "gone-1"); err == nil {
		t.Fatal("gone-1 is still held")
	}
	static := g.runner(t, "static-1")
	if static.Pool != "linux" || static.State != jobs.RunnerIdle {
		t.Fatalf("imported runner %+v", static)
	}
	if kept := g.runner(t, "kept-1"); time.Since(kept.LastSeen) > 10*time.Second {
		t.Fatalf("kept-1 not seen: %v", kept.LastSeen)
	}
	if _, err := g.db.Store().Runner(ctx, "mac-1"); err == nil {
		t.Fatal("mac-1 fits no pool, yet was imported")
	}
}

func TestNoCredentialsNoReconciler(t *testing.T) {
	var logs testenv.SyncBuffer
	s, err := Open(testConfig(t, t.TempDir(), nil), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Reconciler != nil {
		t.Fatal("a reconciler without GitHub credentials")
	}
	if n := strings.Count(logs.String(), "GitHub: no credentials configured"); n != 1 {
		t.Fatalf("start-up said it %d times, want once:\n%s", n, logs.String())
	}
}

func TestJobDiagnosis(t *testing.T) {
	ctx := context.Background()
	g := startGHStack(t, map[string]string{
		"RUNNERHUB_POOLS": `[{"name": "linux", "labels": ["linux"], "maxRunners": 5}, {"name": "gpu", "labels": ["gpu"], "maxRunners": 1}]`,
	})
	if _, _, err := g.processor.Engine.RegisterRunner(ctx, jobs.RunnerSpec{Name: "linux-1", Pool: "linux"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	g.fake.Deliver(testHook, "workflow_job", queued(t, 701), fakegithub.Delivered)
	g.waitJob(t, 701, jobs.StatusQueued)
	guid := g.fake.Deliver(testHook, "workflow_job", queued(t, 702), fakegithub.Delivered)
	g.waitJob(t, 702, jobs.StatusQueued)
	g.fake.PutJob("octo/app", fakegithub.Job{ID: 702, RunID: 5000 + 702%7, Name: "job-702", Status: "queued", Labels: []string{"linux"}})

	get := func(path string) (int, string) { return apiCall(t, g.url, g.GeneratedToken, http.MethodGet, path, "") }
	code, body := get("/api/jobs/702/diagnosis")
	var doc struct {
		Data struct {
			Summary string
			Pools   []struct {
				Name    string
				Fits    bool
				Missing []string
				Runners []struct {
					Name, Reason string
					CanTake      bool
				}
			}
			Demand *struct {
				Pool   string
				SentAt time.Time
			}
			Deliveries []struct {
				HookID, DeliveryID, State string
			}
			GitHub struct {
				Available bool
				Job       *struct{ Status string }
				// Deliveries in the hook's log.
				Deliveries []struct {
					GUID       string
					StatusCode int
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || code != http.StatusOK {
		t.Fatalf("%d %s (%v)", code, body, err)
	}
	d := doc.Data
	if !strings.Contains(d.Summary, "pool linux's queue") {
		t.Errorf("summary %q", d.Summary)
	}
	if len(d.Pools) != 2 || !d.Pools[1].Fits || d.Pools[0].Fits || strings.Join(d.Pools[0].Missing, ",") != "linux" {
		t.Errorf("pools %+v: want gpu missing linux, linux fitting", d.Pools)
	}
	if r := d.Pools[1].Runners; len(r) != 1 || r[0].CanTake || r[0].Reason != "reserved with job 701" {
		t.Errorf("runners of linux: %+v", r)
	}
	if d.Demand == nil || d.Demand.Pool != "linux" || d.Demand.SentAt.IsZero() {
		t.Errorf("demand %+v", d.Demand)
	}
	if len(d.Deliveries) != 1 || d.Deliveries[0].DeliveryID != guid || d.Deliveries[0].HookID != "12" || d.Deliveries[0].State != "processed" {
		t.Errorf("deliveries %+v", d.Deliveries)
	}
	if !d.GitHub.Available || d.GitHub.Job == nil || d.GitHub.Job.Status != "queued" ||
		len(d.GitHub.Deliveries) != 1 || d.GitHub.Deliveries[0].GUID != guid || d.GitHub.Deliveries[0].StatusCode != http.StatusAccepted {
		t.Errorf("GitHub's view %+v", d.GitHub)
	}
	for path, want := range map[string]int{"/api/jobs/999/diagnosis": http.StatusNotFound, "/api/jobs/x/diagnosis": http.StatusBadRequest} {
		if code, body := get(path); code != want {
			t.Errorf("%s: %d %s, want %d", path, code, body, want)
		}
	}
}

// The local stack runs the cycles itself, every RUNNERHUB_RECONCILE_INTERVAL.
func TestReconcilerRunsOnItsInterval(t *testing.T) {
	g := startGHStack(t, map[string]string{"RUNNERHUB_RECONCILE_INTERVAL": "1s"})
	guid := g.fake.Deliver(testHook, "workflow_job", queued(t, 801), fakegithub.Dropped)
	poll(t, "the dropped delivery redelivered by the ticker", func() (int, bool) {
		n := g.fake.Redeliveries(testHook)
		return n, n == 1
	})
	waitState(t, g.Stack, delivery.Key{HookID: "12", DeliveryID: guid}, delivery.Processed)
}

// The redeliveries of one cycle are capped; the rest wait for the next, oldest first.
func TestRedeliveryCapPerCycle(t *testing.T) {
	g := startGHStack(t, nil)
	g.Reconciler.Limits.RedeliveriesPerCycle = 2
	var lost []string
	for i := range int64(3) {
		lost = append(lost, g.fake.Deliver(testHook, "workflow_job", queued(t, 900+i), fakegithub.Dropped))
	}
	if rep := g.cycle(t); rep.Redelivered != 2 {
		t.Fatalf("first cycle: %+v, want 2 (the cap)", rep)
	}
	for _, guid := range lost[:2] { // the two oldest went first
		if n := g.fake.Attempts(testHook, guid); n != 2 {
			t.Fatalf("%s: %d attempts, want the original and a redelivery", guid, n)
		}
	}
	if rep := g.cycle(t); rep.Redelivered != 1 {
		t.Fatalf("second cycle: %+v, want the last one", rep)
	}
	for _, guid := range lost {
		waitState(t, g.Stack, delivery.Key{HookID: "12", DeliveryID: guid}, delivery.Processed)
	}
}

// Stale jobs are asked about oldest first, a bounded number per cycle; the others wait
// for the next cycles.
func TestJobReconciliationOldestFirstAndBounded(t *testing.T) {
	g := startGHStack(t, nil)
	g.Reconciler.Limits.JobsPerCycle = 1
	for _, id := range []int64{951, 952} { // 951 is queued first: the older
		g.fake.Deliver(testHook, "workflow_job", queued(t, id), fakegithub.Delivered)
		g.waitJob(t, id, jobs.StatusQueued)
		g.fake.PutJob("octo/app", fakegithub.Job{ID: id, RunID: 5000 + id%7, Status: "completed", Conclusion: "cancelled", Labels: []string{"linux"}, CompletedAt: time.Now()})
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(1100 * time.Millisecond)
	for cycle, want := range []int64{951, 952} {
		if rep := g.cycle(t); rep.JobsChecked != 1 || rep.JobsApplied != 1 {
			t.Fatalf("cycle %d: %+v", cycle+1, rep)
		}
		g.waitJob(t, want, jobs.StatusCompleted)
		if cycle == 0 {
			if j, err := g.db.Store().Job(t.Context(), 952); err != nil || j.Status != jobs.StatusQueued {
				t.Fatalf("job 952 after the first cycle: %+v %v, want still queued (951 is older)", j, err)
			}
		}
	}
}

// A GUID first attempted longer ago than the give-up age (but still in GitHub's three
// days) is given up without a redelivery: one might not arrive in time.
func TestRedeliveryGivesUpOldDeliveries(t *testing.T) {
	g := startGHStack(t, nil)
	age := reconcile.DefaultLimits.GiveUpAge + 30*time.Minute
	guid := g.fake.AddPastAttempt(testHook, "workflow_job", queued(t, 311), age)
	if rep := g.cycle(t); rep.Redelivered != 0 || rep.GivenUp != 1 {
		t.Fatalf("cycle: %+v, want it given up unredelivered", rep)
	}
	given, err := reconcile.GivenUpDeliveries(t.Context(), g.db.Store(), time.Now())
	if err != nil || len(given) != 1 || given[0].GUID != guid || given[0].Redeliveries != 0 {
		t.Fatalf("given up: %+v, %v", given, err)
	}
}

// A job check that meets a 5xx changes nothing and is asked again next cycle.
func TestJobReconciliationRetriesAfterGitHub5xx(t *testing.T) {
	// No hook to watch: the job check is the cycle's first call, the one that meets the 502.
	g := startGHStack(t, map[string]string{"RUNNERHUB_GITHUB_HOOKS": ""})
	g.fake.Deliver(testHook, "workflow_job", queued(t, 961), fakegithub.Delivered)
	g.waitJob(t, 961, jobs.StatusQueued)
	g.fake.PutJob("octo/app", fakegithub.Job{ID: 961, RunID: 5000 + 961%7, Status: "completed", Conclusion: "success", Labels: []string{"linux"}, CompletedAt: time.Now()})
	time.Sleep(1100 * time.Millisecond)
	g.fake.FailNext(1, http.StatusBadGateway)
	if rep := g.cycle(t); rep.JobsApplied != 0 || len(rep.Errors) == 0 {
		t.Fatalf("cycle during the 502: %+v", rep)
	}
	if rep := g.cycle(t); rep.JobsChecked != 1 || rep.JobsApplied != 1 {
		t.Fatalf("next cycle: %+v, want the job asked again and applied", rep)
	}
	g.waitJob(t, 961, jobs.StatusCompleted)
}
