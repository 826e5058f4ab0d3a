package localhub

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/runnerhub/webhooks/internal/live"
)

// Registry is the in-memory live.Registry of the local stack: connections live as long
// as the process, so there is nothing to persist. Subscriptions are indexed by room, as
// the DynamoDB registry's are, so that a repository's message finds its audience
// without looking at every connection.
type Registry struct {
	mu    sync.Mutex
	conns map[string]live.Connection
	// rooms holds, per lower-cased repository, the ids subscribed to it; all the ids
	// subscribed to everything.
	rooms map[string]map[string]bool
	all   map[string]bool
}

var _ live.Registry = (*Registry)(nil)

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{conns: map[string]live.Connection{}, rooms: map[string]map[string]bool{}, all: map[string]bool{}}
}

// Put implements live.Registry.
func (r *Registry) Put(_ context.Context, c live.Connection) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Kept as the DynamoDB registry keeps them: times to the millisecond, the expiry
	// to the second (a TTL attribute), so both return the same records.
	c.ConnectedAt = c.ConnectedAt.UTC().Truncate(time.Millisecond)
	c.ExpiresAt = c.ExpiresAt.UTC().Truncate(time.Second)
	c.Repositories = slices.Clone(c.Repositories)
	r.set(c)
	return nil
}

// set records c and indexes its subscription in place of any earlier one.
func (r *Registry) set(c live.Connection) {
	r.unindex(c.ID)
	r.conns[c.ID] = c
	if c.All {
		r.all[c.ID] = true
	}
	for _, repo := range c.Repositories {
		if r.rooms[repo] == nil {
			r.rooms[repo] = map[string]bool{}
		}
		r.rooms[repo][c.ID] = true
	}
}

func (r *Registry) unindex(id string) {
	old, ok := r.conns[id]
	if !ok {
		return
	}
	delete(r.all, id)
	for _, repo := range old.Repositories {
		delete(r.rooms[repo], id)
		if len(r.rooms[repo]) == 0 {
			delete(r.rooms, repo)
		}
	}
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
	r.set(c)
	return c, nil
}

// Delete implements live.Registry.
func (r *Registry) Delete(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delete(id)
	return nil
}

func (r *Registry) delete(id string) {
	r.unindex(id)
	delete(r.conns, id)
}

// List implements live.Registry. Expired records are dropped as they are found.
func (r *Registry) List(_ context.Context, now time.Time) ([]live.Connection, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unexpired(slices.Collect(maps.Keys(r.conns)), now), nil
}

// Audience implements live.Registry: the ids subscribed to everything and those of each
// room's repository; every connection only for a message without a room.
func (r *Registry) Audience(ctx context.Context, rooms []string, now time.Time) ([]live.Connection, error) {
	if slices.Contains(rooms, "") {
		return r.List(ctx, now)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := maps.Clone(r.all)
	for _, room := range rooms {
		repo, _ := strings.CutPrefix(room, live.RoomPrefix)
		maps.Copy(ids, r.rooms[strings.ToLower(repo)])
	}
	return r.unexpired(slices.Collect(maps.Keys(ids)), now), nil
}

// unexpired returns the records of ids in id order, dropping the expired ones.
func (r *Registry) unexpired(ids []string, now time.Time) []live.Connection {
	slices.Sort(ids)
	out := make([]live.Connection, 0, len(ids))
	for _, id := range ids {
		c := r.conns[id]
		if c.Expired(now) {
			r.delete(id)
			continue
		}
		out = append(out, c)
	}
	return out
}
