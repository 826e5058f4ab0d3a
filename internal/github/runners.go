package github

import (
	"context"
	"errors"
	"fmt"
	"time"

	gh "github.com/google/go-github/v88/github"
)

// Runner is a self-hosted runner as GitHub lists it.
type Runner struct {
	ID     int64
	Name   string
	OS     string
	Status string // online or offline
	Busy   bool
	Labels []string
}

// maxRunnerPages bounds one listing (100 runners a page).
const maxRunnerPages = 50

// ListRunners lists the self-hosted runners registered in scope.
func (c *Client) ListRunners(ctx context.Context, scope Scope) ([]Runner, error) {
	cl, err := c.forOwner(ctx, scope.Owner, scope.Repo)
	if err != nil {
		return nil, err
	}
	var out []Runner
	opts := &gh.ListRunnersOptions{ListOptions: gh.ListOptions{PerPage: 100}}
	for page := 0; page < maxRunnerPages; page++ {
		var list *gh.Runners
		var resp *gh.Response
		err := c.call(ctx, func(ctx context.Context) (*gh.Response, error) {
			var err error
			if scope.Repo == "" {
				list, resp, err = cl.Actions.ListOrganizationRunners(ctx, scope.Owner, opts)
			} else {
				list, resp, err = cl.Actions.ListRunners(ctx, scope.Owner, scope.Repo, opts)
			}
			return resp, err
		})
		if err != nil {
			return nil, fmt.Errorf("listing the runners of %s: %w", scope, err)
		}
		for _, r := range list.Runners {
			out = append(out, runnerFrom(r))
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
	return out, fmt.Errorf("listing the runners of %s: more than %d pages", scope, maxRunnerPages)
}

// JITRequest asks for a just-in-time runner configuration.
type JITRequest struct {
	Name          string
	RunnerGroupID int64
	Labels        []string
	WorkFolder    string // GitHub's default (_work) when empty
}

// JITConfig is a minted configuration: the runner GitHub registered and the encoded
// configuration to start it with. EncodedConfig is a credential: never log it.
type JITConfig struct {
	Runner        Runner
	EncodedConfig string
}

// GenerateJITConfig registers a runner in scope and returns its JIT configuration
// (POST …/actions/runners/generate-jitconfig).
func (c *Client) GenerateJITConfig(ctx context.Context, scope Scope, req JITRequest) (*JITConfig, error) {
	cl, err := c.forOwner(ctx, scope.Owner, scope.Repo)
	if err != nil {
		return nil, err
	}
	body := &gh.GenerateJITConfigRequest{Name: req.Name, RunnerGroupID: req.RunnerGroupID, Labels: req.Labels}
	if req.WorkFolder != "" {
		body.WorkFolder = &req.WorkFolder
	}
	var cfg *gh.JITRunnerConfig
	err = c.call(ctx, func(ctx context.Context) (*gh.Response, error) {
		var resp *gh.Response
		var err error
		if scope.Repo == "" {
			cfg, resp, err = cl.Actions.GenerateOrgJITConfig(ctx, scope.Owner, body)
		} else {
			cfg, resp, err = cl.Actions.GenerateRepoJITConfig(ctx, scope.Owner, scope.Repo, body)
		}
		return resp, err
	})
	if err != nil {
		return nil, fmt.Errorf("generating a JIT configuration in %s: %w", scope, err)
	}
	return &JITConfig{EncodedConfig: cfg.GetEncodedJITConfig(), Runner: runnerFrom(cfg.GetRunner())}, nil
}

// runnerFrom is r as GitHub lists it, its labels by name.
func runnerFrom(r *gh.Runner) Runner {
	labels := make([]string, 0, len(r.Labels))
	for _, l := range r.Labels {
		labels = append(labels, l.GetName())
	}
	return Runner{ID: r.GetID(), Name: r.GetName(), OS: r.GetOS(), Status: r.GetStatus(), Busy: r.GetBusy(), Labels: labels}
}

// DeleteRunner removes runner id from scope. A runner already gone (404) is success.
func (c *Client) DeleteRunner(ctx context.Context, scope Scope, id int64) error {
	cl, err := c.forOwner(ctx, scope.Owner, scope.Repo)
	if err != nil {
		return err
	}
	err = c.call(ctx, func(ctx context.Context) (*gh.Response, error) {
		if scope.Repo == "" {
			return cl.Actions.RemoveOrganizationRunner(ctx, scope.Owner, id)
		}
		return cl.Actions.RemoveRunner(ctx, scope.Owner, scope.Repo, id)
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("removing runner %d from %s: %w", id, scope, err)
	}
	return nil
}

// RegistrationToken is a token for the runner's config.sh, for runners that are not
// started from a JIT configuration (long-lived ones). Token is a credential: never log it.
type RegistrationToken struct {
	Token     string
	ExpiresAt time.Time
}

// OrgRegistrationToken creates a registration token for org's runners (POST
// /orgs/{org}/actions/runners/registration-token; it lasts one hour).
func (c *Client) OrgRegistrationToken(ctx context.Context, org string) (*RegistrationToken, error) {
	cl, err := c.forOwner(ctx, org, "")
	if err != nil {
		return nil, err
	}
	var tok *gh.RegistrationToken
	err = c.call(ctx, func(ctx context.Context) (*gh.Response, error) {
		var resp *gh.Response
		tok, resp, err = cl.Actions.CreateOrganizationRegistrationToken(ctx, org)
		return resp, err
	})
	if err != nil {
		return nil, fmt.Errorf("creating a registration token for %s: %w", org, err)
	}
	return &RegistrationToken{Token: tok.GetToken(), ExpiresAt: tok.GetExpiresAt().Time}, nil
}
