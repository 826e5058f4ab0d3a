package embedded

import (
	"errors"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// groupCommitter is the one writer of the file. Every write is handed to it and waits
// for the commit (and fsync) of the transaction that carries it. It commits whatever has
// arrived as soon as the previous commit is done, with no timer: under load the writes
// that come in during one fsync share the next, so each group is as large as the load
// makes it, and an idle store commits a lone write at once.
//
// bbolt's own Batch waits for a timer (or 1,000 writes) before committing, and rolls the
// whole batch back when one write fails. Under the local stack's load that timer was most
// of a delivery's latency, ingest and processing took turns at bbolt's single writer
// lock, and each conflicting processor commit rolled back the deliveries recorded beside
// it: see the README's performance section.
type groupCommitter struct {
	db *bolt.DB

	mu      sync.Mutex
	pending []*write
	closed  bool
	wake    chan struct{} // signalled when pending gains a write
	stopped chan struct{} // closed when the loop has ended
}

// write is one caller's function and, once committed or refused, its result.
type write struct {
	fn   func(*bolt.Tx) error
	err  error
	done chan struct{}
}

// maxGroup bounds the writes one transaction carries, so that one group's commit (and the
// latency of the first write in it) stays short.
const maxGroup = 1000

// errClosed answers writes handed to a closed store.
var errClosed = errors.New("embedded store closed")

// untouched marks an error returned by a write function before it changed anything in
// the transaction: the committer then leaves that write out and commits the others,
// instead of rolling the transaction back. Any other error rolls the group back.
type untouched struct{ error }

func (u untouched) Unwrap() error { return u.error }

func newGroupCommitter(db *bolt.DB) *groupCommitter {
	g := &groupCommitter{db: db, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	go g.loop()
	return g
}

// update runs fn in a write transaction shared with the other writes waiting now, and
// returns once that transaction is durable (or fn's error). Like bbolt's Batch, fn may run
// more than once (when another write in its group fails and the group is retried), so it
// must derive everything from the transaction's state.
func (g *groupCommitter) update(fn func(*bolt.Tx) error) error {
	w := &write{fn: fn, done: make(chan struct{})}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return errClosed
	}
	g.pending = append(g.pending, w)
	g.mu.Unlock()
	g.signal()
	<-w.done
	var u untouched
	if errors.As(w.err, &u) {
		return u.error
	}
	return w.err
}

// close commits what is pending, stops the loop and refuses later writes.
func (g *groupCommitter) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.signal()
	<-g.stopped
}

func (g *groupCommitter) signal() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// loop commits the pending writes, a group at a time, until the committer is closed and
// nothing is pending.
func (g *groupCommitter) loop() {
	defer close(g.stopped)
	for {
		g.mu.Lock()
		n := min(len(g.pending), maxGroup)
		group := g.pending[:n:n]
		g.pending = g.pending[n:]
		closed := g.closed
		g.mu.Unlock()
		switch {
		case n > 0:
			g.commit(group)
		case closed:
			return
		default:
			<-g.wake
		}
	}
}

// commit writes group in one transaction. A write whose function fails untouched is
// answered with its error and left out; one that fails otherwise rolls the transaction
// back, is run again alone (for its own error, as bbolt's Batch does), and the rest are
// committed again without it.
func (g *groupCommitter) commit(group []*write) {
	for len(group) > 0 {
		failed := -1
		err := g.db.Update(func(tx *bolt.Tx) error {
			for i, w := range group {
				w.err = w.fn(tx)
				if w.err == nil || errors.As(w.err, new(untouched)) {
					continue
				}
				failed = i
				return w.err
			}
			return nil
		})
		if failed < 0 {
			for _, w := range group {
				if w.err == nil {
					w.err = err // the commit's own failure, if any, is everyone's
				}
				close(w.done)
			}
			return
		}
		alone := group[failed]
		alone.err = g.db.Update(alone.fn)
		close(alone.done)
		group = append(group[:failed:failed], group[failed+1:]...)
	}
}
