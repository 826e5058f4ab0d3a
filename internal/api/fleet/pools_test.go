package fleet_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/jobs"
)

type poolData struct {
	Name            string   `json:"name"`
	Labels          []string `json:"labels"`
	MinIdle         int      `json:"minIdle"`
	MaxRunners      int      `json:"maxRunners"`
	Source          string   `json:"source"`
	OverridesConfig bool     `json:"overridesConfig"`
	starting
}

// starting are the fields of a pool that start runners.
type starting struct {
	Provider      map[string]any `json:"provider"`
	BootTimeout   string         `json:"bootTimeout"`
	IdleTimeout   string         `json:"idleTimeout"`
	Ephemeral     bool           `json:"ephemeral"`
	Prewarm       int            `json:"prewarm"`
	RunnerScope   string         `json:"runnerScope"`
	RunnerGroupID int64          `json:"runnerGroupId"`
}

// byDefault are the fields of a pool that sets none of them.
var byDefault = starting{BootTimeout: "5m0s", IdleTimeout: "15m0s", Ephemeral: true, RunnerGroupID: 1}

func (e *env) pools(t *testing.T) []poolData {
	t.Helper()
	var p struct {
		Pools []poolData `json:"pools"`
	}
	e.request(t, http.MethodGet, "/api/pools", nil).data(t, &p)
	return p.Pools
}

func TestPools(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		check := func(what string, got, want any) {
			t.Helper()
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s:\n %+v\nwant\n %+v", what, got, want)
			}
		}
		gpu := poolData{"gpu", []string{"linux", "gpu"}, 0, 2, "config", false, byDefault}
		linux := poolData{"linux", []string{"linux", "x64"}, 1, 3, "config", false, byDefault}
		check("configured pools", e.pools(t), []poolData{gpu, linux})

		arm := poolData{"arm", []string{"arm64"}, 0, 2, "api", false, byDefault}
		var got poolData
		resp := e.request(t, http.MethodPut, "/api/pools/arm", map[string]any{"labels": arm.Labels, "maxRunners": 2})
		expect(t, "create", resp, http.StatusCreated, "")
		resp.data(t, &got)
		check("created pool", got, arm)
		arm.MinIdle = 1
		resp = e.request(t, http.MethodPut, "/api/pools/arm", map[string]any{"labels": arm.Labels, "minIdle": 1, "maxRunners": 2})
		expect(t, "replace", resp, http.StatusOK, "")
		resp.data(t, &got)
		check("replaced pool", got, arm)
		// A pool of a configured name overrides the configuration.
		override := poolData{"linux", []string{"linux", "x64", "big"}, 0, 9, "api", true, byDefault}
		expect(t, "override", e.request(t, http.MethodPut, "/api/pools/linux", map[string]any{"labels": override.Labels, "maxRunners": 9}), http.StatusCreated, "")
		check("pools", e.pools(t), []poolData{arm, gpu, override})
		e.request(t, http.MethodGet, "/api/pools/linux", nil).data(t, &got)
		check("GET overridden pool", got, override)

		for _, c := range []struct{ what, body string }{
			{"no labels", `{"labels": [], "maxRunners": 1}`},
			{"no maxRunners", `{"labels": ["a"]}`},
			{"minIdle above maxRunners", `{"labels": ["a"], "minIdle": 3, "maxRunners": 2}`},
			{"negative minIdle", `{"labels": ["a"], "minIdle": -1, "maxRunners": 2}`},
			{"name in the body", `{"name": "other", "labels": ["a"], "maxRunners": 1}`},
			{"labels not a list", `{"labels": "a", "maxRunners": 1}`},
			{"no body", ``},
		} {
			expect(t, "PUT with "+c.what, e.request(t, http.MethodPut, "/api/pools/x", c.body), http.StatusBadRequest, "invalid_body")
		}
		for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			expect(t, method+" bad pool name", e.request(t, method, "/api/pools/bad%20name", `{"labels": ["a"], "maxRunners": 1}`), http.StatusBadRequest, "invalid_parameter")
		}
		expect(t, "GET unknown", e.request(t, http.MethodGet, "/api/pools/nope", nil), http.StatusNotFound, "not_found")
		expect(t, "DELETE unknown", e.request(t, http.MethodDelete, "/api/pools/nope", nil), http.StatusNotFound, "not_found")

		// Configured pools stay; deleting an override reverts to the configuration.
		r := e.request(t, http.MethodDelete, "/api/pools/gpu", nil)
		expect(t, "DELETE configured", r, http.StatusConflict, "pool_configured")
		resp = e.request(t, http.MethodDelete, "/api/pools/linux", nil)
		expect(t, "DELETE override", resp, http.StatusOK, "")
		resp.data(t, &got)
		check("deleted override", got, override)
		check("pools after deleting the override", e.pools(t), []poolData{arm, gpu, linux})

		// A pool in use is kept until its runners and pending jobs are gone.
		expect(t, "register", e.request(t, http.MethodPost, "/api/runners", map[string]any{"name": "arm-1", "pool": "arm"}), http.StatusCreated, "")
		expect(t, "DELETE with a runner", e.request(t, http.MethodDelete, "/api/pools/arm", nil), http.StatusConflict, "pool_in_use")
		expect(t, "remove runner", e.request(t, http.MethodDelete, "/api/runners/arm-1", nil), http.StatusOK, "")
		e.commit(t, &jobs.Change{Jobs: []*jobs.Job{{ID: 77, Status: jobs.StatusQueued, Pool: "arm", Allocation: jobs.AllocationPending,
			QueuedAt: e.clock(), QueueKey: jobs.RankKey(e.clock(), 77)}}})
		expect(t, "DELETE with a pending job", e.request(t, http.MethodDelete, "/api/pools/arm", nil), http.StatusConflict, "pool_in_use")
		j, err := e.store.Job(t.Context(), 77)
		if err != nil {
			t.Fatal(err)
		}
		j.Status, j.Allocation, j.QueueKey, j.CompletedAt = jobs.StatusCompleted, jobs.AllocationAbandoned, "", e.clock().Add(time.Second)
		e.commit(t, &jobs.Change{Jobs: []*jobs.Job{j}})
		expect(t, "DELETE unused", e.request(t, http.MethodDelete, "/api/pools/arm", nil), http.StatusOK, "")
		expect(t, "GET deleted", e.request(t, http.MethodGet, "/api/pools/arm", nil), http.StatusNotFound, "not_found")
		check("pools at the end", e.pools(t), []poolData{gpu, linux})
	})
}

// TestPoolStartingFields checks that the fields that start runners go through PUT and
// come back from GET as they were put, and that bad ones are all named at once.
func TestPoolStartingFields(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		body := `{"labels": ["arm64"], "maxRunners": 4, "minIdle": 1,
			"provider": {"type": "exec", "command": ["/usr/local/bin/provider", "--zone", "a"], "timeout": "45s"},
			"bootTimeout": "2m", "idleTimeout": "1h", "ephemeral": false, "prewarm": 2,
			"runnerScope": "repo/octo-org/hello", "runnerGroupId": 5}`
		want := poolData{"arm", []string{"arm64"}, 1, 4, "api", false, starting{
			Provider:    map[string]any{"type": "exec", "command": []any{"/usr/local/bin/provider", "--zone", "a"}, "timeout": "45s"},
			BootTimeout: "2m0s", IdleTimeout: "1h0m0s", Ephemeral: false, Prewarm: 2, RunnerScope: "repo/octo-org/hello", RunnerGroupID: 5}}
		var put, got poolData
		resp := e.request(t, http.MethodPut, "/api/pools/arm", body)
		expect(t, "PUT", resp, http.StatusCreated, "")
		resp.data(t, &put)
		e.request(t, http.MethodGet, "/api/pools/arm", nil).data(t, &got)
		for what, v := range map[string]poolData{"PUT answer": put, "GET": got} {
			if fmt.Sprint(v) != fmt.Sprint(want) {
				t.Errorf("%s:\n %+v\nwant\n %+v", what, v, want)
			}
		}

		resp = e.request(t, http.MethodPut, "/api/pools/bad", `{"labels": ["a"], "maxRunners": 1,
			"provider": {"type": "ec2", "launchTemplate": {}}, "bootTimeout": "0s", "prewarm": 2, "runnerGroupId": 0}`)
		expect(t, "PUT with bad fields", resp, http.StatusBadRequest, "invalid_body")
		for _, w := range []string{"provider.launchTemplate must have an id or a name", "bootTimeout must be from 1s to 24h",
			"prewarm must be from 0 to maxRunners (1)", "runnerGroupId must be at least 1"} {
			if !strings.Contains(resp.Error.Message, w) {
				t.Errorf("message %q lacks %q", resp.Error.Message, w)
			}
		}
		expect(t, "GET the refused pool", e.request(t, http.MethodGet, "/api/pools/bad", nil), http.StatusNotFound, "not_found")
	})
}
