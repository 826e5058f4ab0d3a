package fleet

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/runnerhub/webhooks/internal/httpjson"
	"github.com/runnerhub/webhooks/internal/jobs"
)

// poolSet is every pool as the API shows it: the configured ones (RUNNERHUB_POOLS) and
// the stored ones (created here), a stored pool replacing a configured one of its name.
type poolSet struct {
	configured, stored []jobs.Pool
}

func (h *handlers) poolSet(r *http.Request) (poolSet, error) {
	stored, err := h.Engine.Store.Pools(r.Context())
	return poolSet{configured: h.Engine.Pools, stored: stored}, err
}

func findPool(pools []jobs.Pool, name string) (jobs.Pool, bool) {
	i := slices.IndexFunc(pools, func(p jobs.Pool) bool { return p.Name == name })
	if i < 0 {
		return jobs.Pool{}, false
	}
	return pools[i], true
}

// view shows the pool named name, if there is one.
func (s poolSet) view(name string) (poolView, bool) {
	c, configured := findPool(s.configured, name)
	p, stored := findPool(s.stored, name)
	switch {
	case stored:
		return newPoolView(p, "api", configured), true
	case configured:
		return newPoolView(c, "config", false), true
	}
	return poolView{}, false
}

// views shows every pool, by name.
func (s poolSet) views() []poolView {
	var names []string
	for _, p := range slices.Concat(s.configured, s.stored) {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	views := []poolView{}
	for _, name := range slices.Compact(names) {
		v, _ := s.view(name)
		views = append(views, v)
	}
	return views
}

// listPools answers GET /api/pools.
func (h *handlers) listPools(r *http.Request) (int, any, error) {
	set, err := h.poolSet(r)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, struct {
		Pools []poolView `json:"pools"`
	}{set.views()}, nil
}

// getPool answers GET /api/pools/{name}.
func (h *handlers) getPool(r *http.Request) (int, any, error) {
	v, err := h.namedPool(r)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, v, nil
}

// namedPool returns the pool the request's {name} names, configured or created here
// (404 when there is none).
func (h *handlers) namedPool(r *http.Request) (poolView, error) {
	name, err := nameParam(r, jobs.ValidatePoolName)
	if err != nil {
		return poolView{}, err
	}
	set, err := h.poolSet(r)
	if err != nil {
		return poolView{}, err
	}
	v, ok := set.view(name)
	if !ok {
		return poolView{}, notFound("pool " + name)
	}
	return v, nil
}

// putPool answers PUT /api/pools/{name} with a pool's fields but its name (a
// PoolDocument): 201 for a new pool, 200 for a replaced one. A pool of the
// configuration's name overrides it.
func (h *handlers) putPool(r *http.Request) (int, any, error) {
	name, err := nameParam(r, jobs.ValidatePoolName)
	if err != nil {
		return 0, nil, err
	}
	var p jobs.Pool
	if err := decodeBody(r, &p, false); err != nil {
		return 0, nil, err
	}
	if p.Name != "" {
		return 0, nil, httpjson.BadRequest("invalid_body", "name is not a field of the body: the path names the pool")
	}
	p.Name = name
	if err := p.Validate(); err != nil {
		return 0, nil, httpjson.BadRequest("invalid_body", err.Error())
	}
	set, err := h.poolSet(r)
	if err != nil {
		return 0, nil, err
	}
	if err := h.Engine.Store.PutPool(r.Context(), p); err != nil {
		return 0, nil, err
	}
	h.poolChanged(r, name)
	_, configured := findPool(set.configured, name)
	status := http.StatusCreated
	if _, existed := findPool(set.stored, name); existed {
		status = http.StatusOK
	}
	return status, newPoolView(p, "api", configured), nil
}

// deletePool answers DELETE /api/pools/{name} with the deleted pool. Only pools created
// here can be deleted (409 for a configured one); a pool that would disappear while
// runners or pending jobs still name it is kept (409), as nothing could serve them.
func (h *handlers) deletePool(r *http.Request) (int, any, error) {
	v, err := h.namedPool(r)
	if err != nil {
		return 0, nil, err
	}
	name := v.Name
	switch {
	case v.Source == "config":
		return 0, nil, httpjson.NewProblem(http.StatusConflict, "pool_configured",
			"pool "+name+" is configured ("+h.PoolsSource+"), not created through the API; remove it from the configuration instead")
	case !v.OverridesConfig:
		if err := h.checkUnused(r, name); err != nil {
			return 0, nil, err
		}
	}
	err = h.Engine.Store.DeletePool(r.Context(), name)
	if errors.Is(err, jobs.ErrNotFound) {
		return 0, nil, notFound("pool " + name) // deleted concurrently
	}
	if err != nil {
		return 0, nil, err
	}
	h.poolChanged(r, name)
	return http.StatusOK, v, nil
}

func (h *handlers) poolChanged(r *http.Request, name string) {
	if h.PoolChanged != nil {
		h.PoolChanged(r.Context(), name)
	}
}

// checkUnused refuses to delete a pool that runners or pending jobs still name.
func (h *handlers) checkUnused(r *http.Request, name string) error {
	runners, _, err := h.Engine.Store.ListRunners(r.Context(), name, "", 1)
	if err != nil {
		return err
	}
	pending, err := h.Engine.Store.PendingJobs(r.Context(), name, "", 1)
	if err != nil {
		return err
	}
	var uses []string
	if len(runners) > 0 {
		uses = append(uses, "runners (DELETE them through /api/runners)")
	}
	if len(pending) > 0 {
		uses = append(uses, "pending jobs")
	}
	if len(uses) > 0 {
		return httpjson.NewProblem(http.StatusConflict, "pool_in_use", "pool "+name+" still has "+strings.Join(uses, " and ")+"; it cannot be deleted until it has none")
	}
	return nil
}
