package fleet_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/api/fleet"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/jobs/jobstest"
)

type jobData struct {
	ID             int64   `json:"id"`
	Allocation     *string `json:"allocation"`
	ReservedRunner *string `json:"reservedRunner"`
}

func (e *env) runner(t *testing.T, name string) fleet.RunnerView {
	t.Helper()
	var r fleet.RunnerView
	e.request(t, http.MethodGet, "/api/runners/"+name, nil).data(t, &r)
	return r
}

func (e *env) job(t *testing.T, id int64) jobData {
	t.Helper()
	var j jobData
	e.request(t, http.MethodGet, fmt.Sprint("/api/jobs/", id), nil).data(t, &j)
	return j
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// Registering, heartbeats and retiring, as whatever starts runners does it.
func TestRunnerLifecycle(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.commit(t, &jobs.Change{Jobs: fixtureJobs()}) // linux queue: 4, then 2

		// A new idle runner takes the next fitting pending job at once.
		var r fleet.RunnerView
		resp := e.request(t, http.MethodPost, "/api/runners", map[string]any{"name": "linux-1", "pool": "linux", "labels": []string{"big"}, "ephemeral": true})
		expect(t, "register", resp, http.StatusCreated, "")
		// The description's fields, camelCase, unknowns null.
		var wire map[string]any
		resp.data(t, &wire)
		seen := e.clock().UTC().Format(time.RFC3339Nano)
		want := map[string]any{
			"name": "linux-1", "pool": "linux", "labels": []any{"big"}, "ephemeral": true,
			"state": "reserved", "offline": false, "jobId": 4.0, "lastSeen": seen, "updatedAt": seen,
		}
		if fmt.Sprint(wire) != fmt.Sprint(want) {
			t.Errorf("POST /api/runners:\n %v\nwant\n %v", wire, want)
		}
		resp.data(t, &r)
		if r.Name != "linux-1" || r.Pool != "linux" || !slices.Equal(r.Labels, []string{"big"}) || !r.Ephemeral ||
			r.State != "reserved" || deref(r.JobID) != int64(4) || r.Offline || !r.LastSeen.Equal(e.clock()) {
			t.Fatalf("registered runner %+v, want reserved for job 4, seen now", r)
		}
		if j := e.job(t, 4); deref(j.Allocation) != "reserved" || deref(j.ReservedRunner) != "linux-1" {
			t.Fatalf("job 4 after registration: %+v", j)
		}
		if got, _ := listIDs(t, e, "status=pending", 50); !slices.Equal(got, []int64{2, 3}) {
			t.Fatalf("pending after registration: %v, want [2 3]", got)
		}
		// Fields left out take their defaults; a runner in a pool with nothing pending idles.
		resp = e.request(t, http.MethodPost, "/api/runners", map[string]any{"name": "gpu-1", "pool": "gpu"})
		resp.data(t, &r)
		if r.State != "reserved" || deref(r.JobID) != int64(3) || r.Ephemeral || len(r.Labels) != 0 || r.Labels == nil {
			t.Fatalf("gpu-1: %+v, want reserved for job 3, labels []", r)
		}
		e.request(t, http.MethodPost, "/api/runners", map[string]any{"name": "gpu-2", "pool": "gpu"}).data(t, &r)
		if r.State != "idle" || r.JobID != nil {
			t.Fatalf("gpu-2: %+v, want idle", r)
		}

		// Heartbeats keep a runner online; an idle one picks up work that arrived since.
		e.advance(4 * time.Minute)
		e.commit(t, &jobs.Change{Jobs: []*jobs.Job{{ID: 50, Repository: "octo/web", Labels: []string{"gpu"}, Status: jobs.StatusQueued,
			Pool: "gpu", Allocation: jobs.AllocationPending, QueuedAt: e.clock(), QueueKey: jobs.RankKey(e.clock(), 50)}}})
		resp = e.request(t, http.MethodPost, "/api/runners/gpu-2/heartbeat", nil)
		expect(t, "heartbeat", resp, http.StatusOK, "")
		resp.data(t, &r)
		if !r.LastSeen.Equal(e.clock()) || r.State != "reserved" || deref(r.JobID) != int64(50) {
			t.Fatalf("gpu-2 after a heartbeat: %+v, want seen now, reserved for job 50", r)
		}
		expect(t, "heartbeat with {}", e.request(t, http.MethodPost, "/api/runners/gpu-2/heartbeat", "{}"), http.StatusOK, "")
		e.advance(2 * time.Minute)
		if r := e.runner(t, "linux-1"); !r.Offline {
			t.Fatalf("linux-1 unseen for 6 minutes: %+v, want offline", r)
		}
		if r := e.runner(t, "gpu-2"); r.Offline {
			t.Fatalf("gpu-2 seen 2 minutes ago: %+v, want online", r)
		}

		// Retiring a reserved runner puts its job back in the queue, with a demand.
		resp = e.request(t, http.MethodDelete, "/api/runners/linux-1", nil)
		expect(t, "remove", resp, http.StatusOK, "")
		resp.data(t, &r)
		if r.Name != "linux-1" || r.State != "reserved" || deref(r.JobID) != int64(4) {
			t.Fatalf("removed runner %+v, want it as it was", r)
		}
		if j := e.job(t, 4); deref(j.Allocation) != "pending" || j.ReservedRunner != nil {
			t.Fatalf("job 4 after its runner left: %+v", j)
		}
		if got, _ := listIDs(t, e, "status=pending&pool=linux", 50); !slices.Equal(got, []int64{4, 2}) {
			t.Fatalf("linux queue after removal: %v, want [4 2]", got)
		}
		if d := e.signals.Demands(); len(d) != 1 || d[0].JobID != 4 || d[0].Pool != "linux" {
			t.Fatalf("demands %+v, want one for job 4 in linux", d)
		}
		expect(t, "get removed", e.request(t, http.MethodGet, "/api/runners/linux-1", nil), http.StatusNotFound, "not_found")
		expect(t, "remove again", e.request(t, http.MethodDelete, "/api/runners/linux-1", nil), http.StatusNotFound, "not_found")
		expect(t, "heartbeat of a removed runner", e.request(t, http.MethodPost, "/api/runners/linux-1/heartbeat", nil), http.StatusNotFound, "not_found")
	})
}

func TestRegisterRunnerRejects(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		expect(t, "register", e.request(t, http.MethodPost, "/api/runners", map[string]any{"name": "taken", "pool": "linux"}), http.StatusCreated, "")
		for _, name := range []string{"gpu-a", "gpu-b"} { // gpu allows two runners
			expect(t, "register "+name, e.request(t, http.MethodPost, "/api/runners", map[string]any{"name": name, "pool": "gpu"}), http.StatusCreated, "")
		}
		long := `{"name": "r", "pool": "linux", "labels": ["` + strings.Repeat("x", 70<<10) + `"]}`
		cases := []struct {
			what        string
			body        any
			contentType string
			status      int
			code        string
		}{
			{"taken name", map[string]any{"name": "taken", "pool": "gpu"}, "", http.StatusConflict, "runner_exists"},
			{"unknown pool", map[string]any{"name": "r", "pool": "windows"}, "", http.StatusBadRequest, "unknown_pool"},
			{"full pool", map[string]any{"name": "gpu-c", "pool": "gpu"}, "", http.StatusConflict, "pool_full"},
			{"bad name", map[string]any{"name": "bad name", "pool": "linux"}, "", http.StatusBadRequest, "invalid_body"},
			{"bad pool name", map[string]any{"name": "r", "pool": "a#b"}, "", http.StatusBadRequest, "invalid_body"},
			{"empty label", map[string]any{"name": "r", "pool": "linux", "labels": []string{""}}, "", http.StatusBadRequest, "invalid_body"},
			{"no name", map[string]any{"pool": "linux"}, "", http.StatusBadRequest, "invalid_body"},
			{"no pool", map[string]any{"name": "r"}, "", http.StatusBadRequest, "invalid_body"},
			{"unknown field", map[string]any{"name": "r", "pool": "linux", "size": "xl"}, "", http.StatusBadRequest, "invalid_body"},
			{"wrong type", `{"name": 5, "pool": "linux"}`, "", http.StatusBadRequest, "invalid_body"},
			{"not JSON", `name=r`, "", http.StatusBadRequest, "invalid_body"},
			{"two objects", `{"name": "r", "pool": "linux"} {}`, "", http.StatusBadRequest, "invalid_body"},
			{"no body", nil, "", http.StatusBadRequest, "invalid_body"},
			{"form", `{"name": "r", "pool": "linux"}`, "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType, "unsupported_content_type"},
			{"too large", long, "", http.StatusRequestEntityTooLarge, "body_too_large"},
		}
		for _, c := range cases {
			headers := map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"}
			if c.contentType != "" {
				headers["Content-Type"] = c.contentType
			}
			r := e.send(t, http.MethodPost, "/api/runners", c.body, headers)
			expect(t, c.what, r, c.status, c.code)
			if r.Error.Message == "" {
				t.Errorf("%s: no message", c.what)
			}
		}
		var page struct {
			Runners []fleet.RunnerView `json:"runners"`
		}
		e.request(t, http.MethodGet, "/api/runners", nil).data(t, &page)
		var names []string
		for _, rn := range page.Runners {
			names = append(names, rn.Pool+"/"+rn.Name)
		}
		if want := []string{"gpu/gpu-a", "gpu/gpu-b", "linux/taken"}; !slices.Equal(names, want) {
			t.Fatalf("runners after refused registrations: %v, want only the accepted ones %v", names, want)
		}
	})
}

func TestListRunners(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		for _, r := range []struct{ name, pool string }{{"l-c", "linux"}, {"g-a", "gpu"}, {"l-a", "linux"}, {"l-b", "linux"}, {"g-b", "gpu"}} {
			expect(t, "register "+r.name, e.request(t, http.MethodPost, "/api/runners", map[string]any{"name": r.name, "pool": r.pool}), http.StatusCreated, "")
		}
		list := func(query string, limit int) []string {
			t.Helper()
			runners, pages := listPages[fleet.RunnerView](t, e, "/api/runners", "runners", query, limit)
			if slices.ContainsFunc(pages[:len(pages)-1], func(n int) bool { return n < limit }) {
				t.Fatalf("runners?%s: pages of %v for limit %d, want every page but the last full", query, pages, limit)
			}
			var names []string
			for _, r := range runners {
				names = append(names, r.Name)
			}
			return names
		}
		for _, limit := range []int{1, 2, 50} {
			if got, want := list("", limit), []string{"g-a", "g-b", "l-a", "l-b", "l-c"}; !slices.Equal(got, want) {
				t.Errorf("all runners (limit %d) = %v, want %v (by pool, then name)", limit, got, want)
			}
			if got, want := list("pool=linux", limit), []string{"l-a", "l-b", "l-c"}; !slices.Equal(got, want) {
				t.Errorf("linux runners (limit %d) = %v, want %v", limit, got, want)
			}
		}
		if got := list("pool=arm&unknown=1", 10); len(got) != 0 {
			t.Errorf("runners of a pool without any: %v", got)
		}
		for _, q := range []string{"pool=a%20b", "limit=0", "limit=101", "limit=x", "cursor=%25%25", "cursor=bm9zZXBhcmF0b3I", "pool=linux&pool=gpu"} {
			expect(t, "GET /api/runners?"+q, e.request(t, http.MethodGet, "/api/runners?"+q, nil), http.StatusBadRequest, "invalid_parameter")
		}
		for _, method := range []string{http.MethodGet, http.MethodDelete} {
			expect(t, method+" bad runner name", e.request(t, method, "/api/runners/bad%20name", nil), http.StatusBadRequest, "invalid_parameter")
		}
		expect(t, "heartbeat of a bad name", e.request(t, http.MethodPost, "/api/runners/bad%20name/heartbeat", nil), http.StatusBadRequest, "invalid_parameter")
		expect(t, "heartbeat with a body", e.request(t, http.MethodPost, "/api/runners/l-a/heartbeat", `{"state": "idle"}`), http.StatusBadRequest, "invalid_body")
		expect(t, "unknown runner", e.request(t, http.MethodGet, "/api/runners/nobody", nil), http.StatusNotFound, "not_found")
		expect(t, "heartbeat of an unknown runner", e.request(t, http.MethodPost, "/api/runners/nobody/heartbeat", nil), http.StatusNotFound, "not_found")
	})
}

func TestPoolStatus(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.commit(t, jobstest.CountNew(t, &jobs.Change{Jobs: fixtureJobs()})) // pending: linux 4 and 2 (since 11:04 and 11:02), gpu 3
		now := e.clock()
		e.commit(t, jobstest.CountNew(t, &jobs.Change{Runners: []*jobs.Runner{
			{Name: "l-busy", Pool: "linux", State: jobs.RunnerBusy, JobID: 7, LastSeen: now},
			{Name: "l-reserved", Pool: "linux", State: jobs.RunnerReserved, JobID: 5, LastSeen: now.Add(-time.Minute)},
			{Name: "l-silent", Pool: "linux", State: jobs.RunnerIdle, LastSeen: now.Add(-6 * time.Minute)},
			{Name: "g-busy", Pool: "gpu", State: jobs.RunnerBusy, JobID: 8, LastSeen: now},
		}}))
		expect(t, "create pool", e.request(t, http.MethodPut, "/api/pools/arm", map[string]any{"labels": []string{"arm64"}, "minIdle": 1, "maxRunners": 2}), http.StatusCreated, "")

		type status struct {
			Name              string  `json:"name"`
			Idle              int     `json:"idle"`
			Reserved          int     `json:"reserved"`
			Busy              int     `json:"busy"`
			Offline           int     `json:"offline"`
			PendingJobs       int     `json:"pendingJobs"`
			OldestWaitSeconds float64 `json:"oldestWaitSeconds"`
			Demand            int     `json:"demand"`
			MinIdle           int     `json:"minIdle"`
			MaxRunners        int     `json:"maxRunners"`
		}
		var got struct {
			Pools               []status `json:"pools"`
			OfflineAfterSeconds float64  `json:"offlineAfterSeconds"`
		}
		e.request(t, http.MethodGet, "/api/runners/pool/status", nil).data(t, &got)
		want := []status{
			{Name: "arm", MinIdle: 1, MaxRunners: 2, Demand: 1},
			// 1 pending + MinIdle 0, nothing idle; room for 2 − 1 online.
			{Name: "gpu", Busy: 1, PendingJobs: 1, OldestWaitSeconds: 57 * 60, Demand: 1, MaxRunners: 2},
			// 2 pending + MinIdle 1 = 3 wanted, but 3 − 2 online leaves room for 1. The oldest
			// wait is that of the queue's head, job 4 (since 11:04, ranked before job 2).
			{Name: "linux", Reserved: 1, Busy: 1, Offline: 1, PendingJobs: 2, OldestWaitSeconds: 56 * 60, Demand: 1, MinIdle: 1, MaxRunners: 3},
		}
		if fmt.Sprint(got.Pools) != fmt.Sprint(want) || got.OfflineAfterSeconds != 300 {
			t.Errorf("pool status\n %+v (offline after %vs)\nwant\n %+v", got.Pools, got.OfflineAfterSeconds, want)
		}
	})
}
