package fleet

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/runnerhub/webhooks/internal/httpjson"
	"github.com/runnerhub/webhooks/internal/jobs"
)

// listJobs answers GET /api/jobs?status=&repository=&pool=&cursor=&limit=.
func (h *handlers) listJobs(r *http.Request) (int, any, error) {
	q := httpjson.NewQuery(r)
	f := jobs.JobFilter{
		Status: jobs.Status(q.Check("status", func(v string) error {
			return jobs.JobFilter{Status: jobs.Status(v), Limit: 1}.Validate()
		})),
		Repository: q.Check("repository", jobs.ValidateRepository),
		Pool:       q.Check("pool", jobs.ValidatePoolName),
		Cursor: q.Check("cursor", func(v string) error {
			return jobs.JobFilter{Cursor: v, Limit: 1}.Validate()
		}),
		Limit: q.Limit(defaultLimit, jobs.MaxListLimit),
	}
	if err := q.Err(); err != nil {
		return 0, nil, err
	}
	list, next, err := h.Engine.ListJobs(r.Context(), f)
	if err != nil {
		return 0, nil, err
	}
	now := h.Now()
	views := make([]jobView, len(list))
	for i, j := range list {
		views[i] = newJobView(j, now)
	}
	return http.StatusOK, struct {
		Jobs []jobView `json:"jobs"`
		page
	}{views, newPage(f.Limit, next)}, nil
}

// getJob answers GET /api/jobs/{id}: {id} is GitHub's job id.
func (h *handlers) getJob(r *http.Request) (int, any, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, nil, httpjson.BadRequest("invalid_parameter", "id must be a GitHub job id (a positive whole number), not "+strconv.Quote(httpjson.Clip(r.PathValue("id"))))
	}
	j, err := h.Engine.Store.Job(r.Context(), id)
	if errors.Is(err, jobs.ErrNotFound) {
		return 0, nil, notFound("job " + strconv.FormatInt(id, 10))
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, newJobView(j, h.Now()), nil
}
