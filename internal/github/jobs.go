package github

import (
	"context"
	"fmt"

	gh "github.com/google/go-github/v88/github"
)

// Job returns GitHub's view of a workflow job (GET /repos/{owner}/{repo}/actions/jobs/{id});
// an error wrapping ErrNotFound when the job, its run or its repository is gone.
func (c *Client) Job(ctx context.Context, owner, repo string, id int64) (*gh.WorkflowJob, error) {
	cl, err := c.forOwner(ctx, owner, repo)
	if err != nil {
		return nil, err
	}
	var job *gh.WorkflowJob
	err = c.call(ctx, func(ctx context.Context) (*gh.Response, error) {
		var resp *gh.Response
		job, resp, err = cl.Actions.GetWorkflowJobByID(ctx, owner, repo, id)
		return resp, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading job %d of %s/%s: %w", id, owner, repo, err)
	}
	return job, nil
}
