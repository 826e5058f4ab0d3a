package suite

import "sync"

// Recorded is what concurrent callers handed a fake (a queue's messages, an engine's
// signals), in the order they came. The zero value is empty and ready to use.
type Recorded[T any] struct {
	mu    sync.Mutex
	items []T
}

// Add records v.
func (r *Recorded[T]) Add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.items = append(r.items, v)
}

// All returns a copy of what is recorded, in the order added.
func (r *Recorded[T]) All() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.items...)
}

// Take returns what is recorded, in the order added, and forgets it.
func (r *Recorded[T]) Take() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	items := r.items
	r.items = nil
	return items
}
