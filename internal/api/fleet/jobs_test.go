package fleet_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/jobs"
)

// jobPage is the data of GET /api/jobs.
type jobPage struct {
	Jobs []struct {
		ID int64 `json:"id"`
	} `json:"jobs"`
	Limit      int     `json:"limit"`
	NextCursor *string `json:"nextCursor"`
}

// t0 is the fixture's base time: job i reached its status at t0 + i minutes, so that
// listings (newest first) go down by id.
var t0 = time.Date(2026, 5, 4, 11, 0, 0, 0, time.UTC)

// fixtureJobs are twelve jobs over two repositories, both configured pools and none:
//
//	1 waiting                      octo/api
//	2 queued pending    prio 0     octo/api  linux
//	3 queued pending    prio 0     octo/web  gpu
//	4 queued pending    prio 100   octo/api  linux   (first in queue order)
//	5 queued reserved              octo/web  linux
//	6 queued unmatched             octo/web
//	7 in_progress assigned         octo/api  linux
//	8 in_progress assigned         octo/web  gpu
//	9 completed success            octo/api  linux
//	10 completed failure           octo/web  gpu
//	11 completed cancelled (never started)   octo/api linux
//	12 completed success on a hosted runner  octo/web
func fixtureJobs() []*jobs.Job {
	at := func(id int64) time.Time { return t0.Add(time.Duration(id) * time.Minute) }
	mk := func(id int64, repo, pool string, status jobs.Status, alloc jobs.Allocation) *jobs.Job {
		j := &jobs.Job{ID: id, RunID: 9000 + id, Repository: repo, Pool: pool, Name: fmt.Sprintf("job %d", id),
			Labels: []string{"self-hosted", "linux"}, Status: status, Allocation: alloc, CreatedAt: t0}
		switch status {
		case jobs.StatusWaiting:
			j.CreatedAt = at(id)
		case jobs.StatusQueued:
			j.QueuedAt = at(id)
		case jobs.StatusInProgress:
			j.QueuedAt, j.StartedAt = at(id).Add(-time.Minute), at(id)
			j.RunnerID, j.RunnerName = 100+id, fmt.Sprintf("runner-%d", id)
		case jobs.StatusCompleted:
			j.QueuedAt, j.StartedAt, j.CompletedAt = at(id).Add(-2*time.Minute), at(id).Add(-time.Minute), at(id)
			j.RunnerID, j.RunnerName, j.Conclusion = 100+id, fmt.Sprintf("runner-%d", id), "success"
		}
		return j
	}
	js := []*jobs.Job{
		mk(1, "octo/api", "", jobs.StatusWaiting, ""),
		mk(2, "octo/api", "linux", jobs.StatusQueued, jobs.AllocationPending),
		mk(3, "octo/web", "gpu", jobs.StatusQueued, jobs.AllocationPending),
		mk(4, "octo/api", "linux", jobs.StatusQueued, jobs.AllocationPending),
		mk(5, "octo/web", "linux", jobs.StatusQueued, jobs.AllocationReserved),
		mk(6, "octo/web", "", jobs.StatusQueued, jobs.AllocationUnmatched),
		mk(7, "octo/api", "linux", jobs.StatusInProgress, jobs.AllocationAssigned),
		mk(8, "octo/web", "gpu", jobs.StatusInProgress, jobs.AllocationAssigned),
		mk(9, "octo/api", "linux", jobs.StatusCompleted, jobs.AllocationAssigned),
		mk(10, "octo/web", "gpu", jobs.StatusCompleted, jobs.AllocationAssigned),
		mk(11, "octo/api", "linux", jobs.StatusCompleted, jobs.AllocationAbandoned),
		mk(12, "octo/web", "", jobs.StatusCompleted, jobs.AllocationUnmatched),
	}
	js[3].Priority = 100
	// The pending linux jobs ask for x64, which the gpu pool lacks, so gpu runners leave
	// them alone (a job that fits several pools is taken by either).
	js[1].Labels = append(js[1].Labels, "x64")
	js[3].Labels = append(js[3].Labels, "x64")
	for _, j := range js {
		if j.Allocation == jobs.AllocationPending {
			j.QueueKey = jobs.RankKey(jobs.Rank(j.QueuedAt, j.Priority, time.Minute), j.ID)
		}
	}
	js[4].ReservedRunner = "linux-r"
	js[9].Conclusion = "failure"
	js[10].Conclusion, js[10].StartedAt, js[10].RunnerID, js[10].RunnerName = "cancelled", time.Time{}, 0, ""
	js[11].RunnerName = "GitHub Actions 2"
	return js
}

// listIDs pages through GET /api/jobs?query with limit, returning the ids and the number
// of pages.
func listIDs(t *testing.T, e *env, query string, limit int) ([]int64, int) {
	t.Helper()
	js, pages := listPages[struct {
		ID int64 `json:"id"`
	}](t, e, "/api/jobs", "jobs", query, limit)
	var ids []int64
	for _, j := range js {
		ids = append(ids, j.ID)
	}
	return ids, len(pages)
}

// listPages pages through GET list?limit=limit&query, following nextCursor until it is
// null, and returns the items of every page in order (the array named key in each
// page's data) and each page's length. A page longer than limit, one that reports
// another limit, or more than 50 pages fail the test.
func listPages[T any](t *testing.T, e *env, list, key, query string, limit int) ([]T, []int) {
	t.Helper()
	var items []T
	var lengths []int
	cursor := ""
	for {
		path := fmt.Sprintf("%s?limit=%d&%s", list, limit, query)
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		r := e.request(t, http.MethodGet, path, nil)
		var page struct {
			Limit      int     `json:"limit"`
			NextCursor *string `json:"nextCursor"`
		}
		var fields map[string]json.RawMessage
		r.data(t, &page)
		r.data(t, &fields)
		var batch []T
		if err := json.Unmarshal(fields[key], &batch); err != nil {
			t.Fatalf("%s: %s: %v", path, key, err)
		}
		if len(batch) > limit || page.Limit != limit {
			t.Fatalf("%s: %d %s, limit %d", path, len(batch), key, page.Limit)
		}
		items, lengths = append(items, batch...), append(lengths, len(batch))
		if page.NextCursor == nil {
			return items, lengths
		}
		if len(lengths) == 50 {
			t.Fatalf("%s: more than 50 pages", path)
		}
		cursor = *page.NextCursor
	}
}

func TestListJobs(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.commit(t, &jobs.Change{Jobs: fixtureJobs()})
		cases := []struct {
			query string
			want  []int64
		}{
			{"", []int64{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
			{"status=waiting", []int64{1}},
			{"status=queued", []int64{6, 5, 4, 3, 2}},
			{"status=in_progress", []int64{8, 7}},
			{"status=completed", []int64{12, 11, 10, 9}},
			// Queued without a runner, in queue order: 4's priority puts it first.
			{"status=pending", []int64{4, 2, 3}},
			{"status=pending&pool=linux", []int64{4, 2}},
			{"status=pending&repository=octo/web", []int64{3}},
			{"repository=octo/api", []int64{11, 9, 7, 4, 2, 1}},
			{"repository=octo/web&status=completed", []int64{12, 10}},
			{"pool=gpu", []int64{10, 8, 3}},
			{"pool=linux&status=queued", []int64{5, 4, 2}},
			{"repository=octo/api&pool=linux", []int64{11, 9, 7, 4, 2}},
			{"repository=octo/api&pool=linux&status=completed", []int64{11, 9}},
			{"repository=octo/none", nil},
			{"pool=nowhere&status=pending", nil},
			// Unknown parameters are ignored.
			{"status=in_progress&sort=name&offset=3", []int64{8, 7}},
		}
		for _, c := range cases {
			for _, limit := range []int{2, 50} {
				got, pages := listIDs(t, e, c.query, limit)
				if !slices.Equal(got, c.want) {
					t.Errorf("GET /api/jobs?%s (limit %d) = %v, want %v", c.query, limit, got, c.want)
				}
				if limit == 2 && len(c.want) > 2 && pages < 2 {
					t.Errorf("GET /api/jobs?%s: %d jobs in %d page of 2", c.query, len(got), pages)
				}
			}
		}
		// Without limit, a page holds up to 50.
		var p jobPage
		e.request(t, http.MethodGet, "/api/jobs", nil).data(t, &p)
		if p.Limit != 50 || len(p.Jobs) != 12 || p.NextCursor != nil {
			t.Errorf("GET /api/jobs: limit %d, %d jobs, next %v", p.Limit, len(p.Jobs), p.NextCursor)
		}
	})
}

func TestListJobsRejectsBadParameters(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		foreign := base64.RawURLEncoding.EncodeToString([]byte("not a position"))
		cases := []struct{ query, mention string }{
			{"status=running", "status"},
			{"status=", ""}, // empty means no filter
			{"repository=no-owner", "repository"},
			{"repository=" + url.QueryEscape("octo/a b"), "repository"},
			{"pool=" + url.QueryEscape("bad pool"), "pool"},
			{"limit=0", "limit"},
			{"limit=101", "limit"},
			{"limit=ten", "limit"},
			{"cursor=" + url.QueryEscape("not base64!"), "cursor"},
			{"cursor=" + foreign, "cursor"},
			{"status=queued&status=completed", "status is given 2 times"},
		}
		for _, c := range cases {
			r := e.request(t, http.MethodGet, "/api/jobs?"+c.query, nil)
			if c.mention == "" {
				expect(t, c.query, r, http.StatusOK, "")
				continue
			}
			expect(t, c.query, r, http.StatusBadRequest, "invalid_parameter")
			if !strings.Contains(r.Error.Message, c.mention) {
				t.Errorf("%s: message %q does not mention %q", c.query, r.Error.Message, c.mention)
			}
		}
		// Every problem is named at once.
		r := e.request(t, http.MethodGet, "/api/jobs?status=x&limit=0&pool=a%20b", nil)
		for _, name := range []string{"status", "limit", "pool"} {
			if !strings.Contains(r.Error.Message, name) {
				t.Errorf("several bad parameters: message %q does not mention %s", r.Error.Message, name)
			}
		}
	})
}

func TestGetJob(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.commit(t, &jobs.Change{Jobs: fixtureJobs()})

		// The description's fields, camelCase, unknowns null.
		var running map[string]any
		e.request(t, http.MethodGet, "/api/jobs/7", nil).data(t, &running)
		want := map[string]any{
			"id": 7.0, "runId": 9007.0, "repository": "octo/api", "name": "job 7", "labels": []any{"self-hosted", "linux"},
			"status": "in_progress", "conclusion": nil, "priority": 0.0, "pool": "linux", "allocation": "assigned",
			"reservedRunner": nil, "runnerId": 107.0, "runnerName": "runner-7",
			"createdAt": "2026-05-04T11:00:00Z", "queuedAt": "2026-05-04T11:06:00Z", "startedAt": "2026-05-04T11:07:00Z",
			"completedAt": nil, "waitSeconds": 60.0,
			// Still running: started at 11:07, now is 12:00.
			"runSeconds": 53 * 60.0,
			"headSha":    "", "htmlUrl": "",
		}
		if fmt.Sprint(running) != fmt.Sprint(want) {
			t.Errorf("GET /api/jobs/7:\n %v\nwant\n %v", running, want)
		}

		var pending, done map[string]any
		e.request(t, http.MethodGet, "/api/jobs/4", nil).data(t, &pending)
		if pending["allocation"] != "pending" || pending["waitSeconds"] != 56*60.0 || pending["runSeconds"] != nil || pending["priority"] != 100.0 {
			t.Errorf("pending job 4: %v", pending)
		}
		e.request(t, http.MethodGet, "/api/jobs/10", nil).data(t, &done)
		if done["conclusion"] != "failure" || done["runSeconds"] != 60.0 || done["waitSeconds"] != 60.0 || done["completedAt"] != "2026-05-04T11:10:00Z" {
			t.Errorf("completed job 10: %v", done)
		}

		expect(t, "unknown job", e.request(t, http.MethodGet, "/api/jobs/99999", nil), http.StatusNotFound, "not_found")
		for _, id := range []string{"abc", "0", "-7", "1.5", "99999999999999999999"} {
			expect(t, "job id "+id, e.request(t, http.MethodGet, "/api/jobs/"+id, nil), http.StatusBadRequest, "invalid_parameter")
		}
	})
}

// Every endpoint needs the API token.
func TestEndpointsNeedTheToken(t *testing.T) {
	e := newEmbedded(t)
	routes := []struct{ method, path string }{
		{"GET", "/api/jobs"}, {"GET", "/api/jobs/1"}, {"GET", "/api/runners/pool/status"},
		{"GET", "/api/runners"}, {"POST", "/api/runners"}, {"GET", "/api/runners/r"}, {"DELETE", "/api/runners/r"},
		{"POST", "/api/runners/r/heartbeat"}, {"GET", "/api/pools"}, {"GET", "/api/pools/p"},
		{"PUT", "/api/pools/p"}, {"DELETE", "/api/pools/p"},
	}
	for _, r := range routes {
		for _, auth := range []string{"", "Bearer wrong-token-wrong-token", "Basic " + token} {
			resp := e.send(t, r.method, r.path, nil, map[string]string{"Authorization": auth})
			expect(t, r.method+" "+r.path+" with "+strings.TrimSpace(auth+" "), resp, http.StatusUnauthorized, "unauthorized")
		}
	}
}

// brokenStore fails every read, as an unreachable store would; the error names things a
// caller must not see.
type brokenStore struct{ jobs.Store }

var errBroken = errors.New("dial tcp 10.1.2.3:443: table rh-secret-EventsTable unreachable")

func (brokenStore) Job(context.Context, int64) (*jobs.Job, error)        { return nil, errBroken }
func (brokenStore) Runner(context.Context, string) (*jobs.Runner, error) { return nil, errBroken }
func (brokenStore) Pools(context.Context) ([]jobs.Pool, error)           { return nil, errBroken }
func (brokenStore) Commit(context.Context, *jobs.Change) error           { return errBroken }
func (brokenStore) ListJobs(context.Context, jobs.JobFilter) ([]*jobs.Job, string, error) {
	return nil, "", errBroken
}
func (brokenStore) ListRunners(context.Context, string, string, int) ([]*jobs.Runner, string, error) {
	return nil, "", errBroken
}

// A store failure is 503 for every endpoint, and its cause stays in the log.
func TestStoreFailureIsUnavailable(t *testing.T) {
	e := newEnv(t, brokenStore{})
	requests := []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/jobs", nil}, {"GET", "/api/jobs?status=pending", nil}, {"GET", "/api/jobs/1", nil},
		{"GET", "/api/runners/pool/status", nil}, {"GET", "/api/runners", nil}, {"GET", "/api/runners/r", nil},
		{"POST", "/api/runners", map[string]any{"name": "r", "pool": "linux"}}, {"DELETE", "/api/runners/r", nil},
		{"POST", "/api/runners/r/heartbeat", nil}, {"GET", "/api/pools", nil}, {"GET", "/api/pools/linux", nil},
		{"PUT", "/api/pools/linux", map[string]any{"labels": []string{"x"}, "maxRunners": 1}}, {"DELETE", "/api/pools/linux", nil},
	}
	for _, r := range requests {
		resp := e.request(t, r.method, r.path, r.body)
		expect(t, r.method+" "+r.path, resp, http.StatusServiceUnavailable, "unavailable")
		if strings.Contains(resp.Error.Message, "secret") || strings.Contains(resp.Error.Message, "10.1.2.3") {
			t.Errorf("%s %s: the message shows the cause: %q", r.method, r.path, resp.Error.Message)
		}
	}
}
