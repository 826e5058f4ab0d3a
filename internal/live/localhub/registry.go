package localhub

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/runnerhub/webhooks/internal/live"
)

// Registry is the in-memory live.Registry of the local stack: connections live as long
// as the process, so there is nothing to persist.
type Registry struct {
	mu    sync.Mutex
	conns map[string]live.Connection
}

var _ live.Registry = (*Registry)(nil)

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{conns: map[string]live.Connection{}} }

// Put implements live.Registry.
func (r *Registry) Put(_ context.Context, c live.Connection) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Kept as the DynamoDB registry keeps them: times to the millisecond, the expiry
	// to the second (a TTL attribute), so both return the same records.
	c.ConnectedAt = c.ConnectedAt.UTC().Truncate(time.Millisecond)
	c.ExpiresAt = c.ExpiresAt.UTC().Truncate(time.Second)
	c.Repositories = slices.Clone(c.Repositories)
	r.conns[c.ID] = c
	return nil
}

// Update implements live.Registry.
func (r *Registry) Update(_ context.Context, id string, change live.SubscriptionChange, now time.Time) (live.Connection, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.conns[id]
	if !ok || c.Expired(now) {
		return live.Connection{}, live.ErrUnknownConnection
	}
	if !change.Fits(c.Subscription) {
		return live.Connection{}, live.ErrTooManyRepositories
	}
	c.Subscription = change.Apply(c.Subscription)
	r.conns[id] = c
	return c, nil
}

// Delete implements live.Registry.
func (r *Registry) Delete(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.conns, id)
	return nil
}

// List implements live.Registry. Expired records are dropped as they are found.
func (r *Registry) List(_ context.Context, now time.Time) ([]live.Connection, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]live.Connection, 0, len(r.conns))
	for _, id := range slices.Sorted(maps.Keys(r.conns)) {
		c := r.conns[id]
		if c.Expired(now) {
			delete(r.conns, id)
			continue
		}
		out = append(out, c)
	}
	return out, nil
}
