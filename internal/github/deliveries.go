package github

import (
	"context"
	"fmt"
	"strconv"
	"time"

	gh "github.com/google/go-github/v88/github"
)

// Delivery is one attempt in a webhook's delivery log. Every redelivery is an attempt of
// its own with the same GUID.
type Delivery struct {
	ID          int64
	GUID        string
	DeliveredAt time.Time
	Redelivery  bool
	Status      string
	StatusCode  int
	Event       string
	Action      string
}

// OK reports whether the attempt succeeded, as GitHub's status=success filter counts it
// (status codes 200 to 399).
func (d Delivery) OK() bool { return d.StatusCode >= 200 && d.StatusCode < 400 }

// MaxDeliveriesPerPage is the largest page GitHub serves.
const MaxDeliveriesPerPage = 100

// ListDeliveries returns one page of hook's delivery log, newest first, from cursor (""
// for the newest), and the cursor of the next, older page ("" after the last).
func (c *Client) ListDeliveries(ctx context.Context, hook Hook, cursor string, perPage int) ([]Delivery, string, error) {
	opts := &gh.ListCursorOptions{Cursor: cursor, PerPage: perPage}
	var items []*gh.HookDelivery
	var next string
	err := c.hookCall(ctx, hook, func(ctx context.Context, cl *gh.Client) (*gh.Response, error) {
		var resp *gh.Response
		var err error
		switch hook.Kind {
		case HookApp:
			items, resp, err = cl.Apps.ListHookDeliveries(ctx, opts)
		case HookOrg:
			items, resp, err = cl.Organizations.ListHookDeliveries(ctx, hook.Owner, hook.ID, opts)
		default:
			items, resp, err = cl.Repositories.ListHookDeliveries(ctx, hook.Owner, hook.Repo, hook.ID, opts)
		}
		if resp != nil {
			next = resp.Cursor
		}
		return resp, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("listing the deliveries of hook %s: %w", hook, err)
	}
	out := make([]Delivery, 0, len(items))
	for _, d := range items {
		out = append(out, Delivery{
			ID: d.GetID(), GUID: d.GetGUID(), DeliveredAt: d.GetDeliveredAt().Time, Redelivery: d.GetRedelivery(),
			Status: d.GetStatus(), StatusCode: d.GetStatusCode(), Event: d.GetEvent(), Action: d.GetAction(),
		})
	}
	return out, next, nil
}

// Redeliver asks GitHub to deliver attempt id of hook again (GitHub answers 202).
func (c *Client) Redeliver(ctx context.Context, hook Hook, id int64) error {
	err := c.hookCall(ctx, hook, func(ctx context.Context, cl *gh.Client) (*gh.Response, error) {
		var resp *gh.Response
		var err error
		switch hook.Kind {
		case HookApp:
			_, resp, err = cl.Apps.RedeliverHookDelivery(ctx, id)
		case HookOrg:
			_, resp, err = cl.Organizations.RedeliverHookDelivery(ctx, hook.Owner, hook.ID, id)
		default:
			_, resp, err = cl.Repositories.RedeliverHookDelivery(ctx, hook.Owner, hook.Repo, hook.ID, id)
		}
		return resp, err
	})
	if err != nil {
		return fmt.Errorf("redelivering %d of hook %s: %w", id, hook, err)
	}
	return nil
}

// HookID is the id GitHub sends as X-GitHub-Hook-ID for hook's deliveries, which
// RunnerHub keys its records by. A repository or organization hook's is in its name; the
// App's is read from the request headers of one of its deliveries (attempt).
func (c *Client) HookID(ctx context.Context, hook Hook, attempt int64) (string, error) {
	if hook.Kind != HookApp {
		return strconv.FormatInt(hook.ID, 10), nil
	}
	var d *gh.HookDelivery
	err := c.hookCall(ctx, hook, func(ctx context.Context, cl *gh.Client) (*gh.Response, error) {
		var resp *gh.Response
		var err error
		d, resp, err = cl.Apps.GetHookDelivery(ctx, attempt)
		return resp, err
	})
	if err != nil {
		return "", fmt.Errorf("reading delivery %d of the App hook: %w", attempt, err)
	}
	id := d.GetRequest().GetHeader("X-GitHub-Hook-ID")
	if id == "" {
		return "", fmt.Errorf("delivery %d of the App hook names no X-GitHub-Hook-ID", attempt)
	}
	return id, nil
}

// hookCall runs f with the client allowed to read hook's log: the App's own (JWT) for
// the App hook, else the token or the installation covering the repository or org.
func (c *Client) hookCall(ctx context.Context, hook Hook, f func(ctx context.Context, cl *gh.Client) (*gh.Response, error)) error {
	cl := c.app
	if hook.Kind != HookApp {
		var err error
		if cl, err = c.forOwner(ctx, hook.Owner, hook.Repo); err != nil {
			return err
		}
	}
	if cl == nil {
		return fmt.Errorf("the App hook needs GitHub App credentials")
	}
	return c.call(ctx, func(ctx context.Context) (*gh.Response, error) { return f(ctx, cl) })
}
