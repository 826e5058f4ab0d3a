// Package provider owns the port through which RunnerHub starts and stops the machines
// behind a pool's runners, and the configuration that names a pool's provider. The
// adapters live in its subpackages (execprovider, ec2provider); providertest is the
// conformance suite every adapter passes.
package provider

import "context"

// Provider starts and stops runner machines. Every method is safe to call again after a
// failure or a lost answer: Delete of an instance that is already gone succeeds.
type Provider interface {
	// Create starts a machine that runs the runner of req and returns the provider's
	// identifier for it. It returns once the machine is asked for, not once the runner is
	// online: the runner reports itself to GitHub.
	Create(ctx context.Context, req CreateRequest) (providerID string, err error)
	// Delete stops and removes the machine of the runner name (providerID as Create
	// returned it). An unknown or already removed machine is not an error.
	Delete(ctx context.Context, name, providerID string) error
	// List returns the machines the provider runs for pool, in no particular order.
	List(ctx context.Context, pool string) ([]Instance, error)
}

// CreateRequest is everything a provider needs to start one runner.
type CreateRequest struct {
	Name   string   // the runner's unique name, as registered with GitHub
	Pool   string   // the pool the runner belongs to
	Labels []string // the runner's labels
	// JITConfig is GitHub's encoded just-in-time configuration: a secret, which a
	// provider hands to the machine without logging it.
	JITConfig  string
	Ephemeral  bool   // the runner takes one job and is then removed
	Repository string // owner/name of the job the runner is started for; "" for none
	JobID      int64  // the job the runner is started for; 0 for none (a warm runner)
}

// Instance is one machine a provider runs.
type Instance struct {
	Name       string `json:"name"`
	ProviderID string `json:"providerId"`
}
