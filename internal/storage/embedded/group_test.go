package embedded

import (
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// openCommitter opens a bare bbolt file with one bucket and a group committer on it.
func openCommitter(t *testing.T) (*bolt.DB, *groupCommitter) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "group.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
		t.Fatal(err)
	}
	g := newGroupCommitter(db)
	t.Cleanup(func() { g.close(); db.Close() })
	return db, g
}

func put(key string) func(*bolt.Tx) error {
	return func(tx *bolt.Tx) error { return tx.Bucket([]byte("b")).Put([]byte(key), []byte("v")) }
}

// holdWriter makes the committer busy with a write that waits for release, and returns
// once that write is running: what is handed over meanwhile forms the next group.
func holdWriter(t *testing.T, g *groupCommitter) (release func()) {
	running, released := make(chan struct{}), make(chan struct{})
	go func() {
		_ = g.update(func(*bolt.Tx) error { close(running); <-released; return nil })
	}()
	<-running
	return sync.OnceFunc(func() { close(released) })
}

// waitPending waits until n writes wait for the committer.
func waitPending(t *testing.T, g *groupCommitter, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g.mu.Lock()
		got := len(g.pending)
		g.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes pending, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Writes handed over while a commit is under way share the next transaction, and each
// caller returns only once that transaction has committed.
func TestWritesDuringACommitShareTheNext(t *testing.T) {
	db, g := openCommitter(t)
	release := holdWriter(t, g)
	const n = 20
	var mu sync.Mutex
	txIDs := map[int]bool{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			err := g.update(func(tx *bolt.Tx) error {
				mu.Lock()
				txIDs[tx.ID()] = true
				mu.Unlock()
				return put(string(rune('a' + i)))(tx)
			})
			if err != nil {
				t.Error(err)
				return
			}
			// Committed: a new read transaction sees it.
			if err := db.View(func(tx *bolt.Tx) error {
				if tx.Bucket([]byte("b")).Get([]byte(string(rune('a'+i)))) == nil {
					return errors.New("not visible after update returned")
				}
				return nil
			}); err != nil {
				t.Error(err)
			}
		})
	}
	waitPending(t, g, n)
	release()
	wg.Wait()
	if len(txIDs) != 1 {
		t.Fatalf("%d writes committed in %d transactions, want 1", n, len(txIDs))
	}
}

// A write failing before it touched the transaction is left out without rolling back
// the others (each runs once); one failing after it wrote rolls the group back, and the
// others commit again without it (the one before it runs twice).
func TestFailedWritesInAGroup(t *testing.T) {
	stale := errors.New("stale")
	broken := errors.New("broken half-way")
	cases := []struct {
		name      string
		failing   func(*bolt.Tx) error
		want      error
		othersRun [2]int32 // how often the writes before and after it run
	}{
		{"untouched", func(*bolt.Tx) error { return untouched{stale} }, stale, [2]int32{1, 1}},
		{"after writing", func(tx *bolt.Tx) error {
			if err := put("failed")(tx); err != nil {
				return err
			}
			return broken
		}, broken, [2]int32{2, 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db, g := openCommitter(t)
			release := holdWriter(t, g)
			var runs [2]atomic.Int32
			errs := make(chan error, 3)
			var wg sync.WaitGroup
			other := func(i int, key string) {
				wg.Go(func() {
					errs <- g.update(func(tx *bolt.Tx) error { runs[i].Add(1); return put(key)(tx) })
				})
			}
			other(0, "before")
			waitPending(t, g, 1)
			wg.Go(func() {
				if err := g.update(tc.failing); err != tc.want {
					t.Errorf("failing write: %v, want %v", err, tc.want)
				}
			})
			waitPending(t, g, 2)
			other(1, "after")
			waitPending(t, g, 3)
			release()
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Errorf("other write: %v", err)
				}
			}
			for i := range runs {
				if got := runs[i].Load(); got != tc.othersRun[i] {
					t.Errorf("other write %d ran %d times, want %d", i, got, tc.othersRun[i])
				}
			}
			_ = db.View(func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte("b"))
				if b.Get([]byte("before")) == nil || b.Get([]byte("after")) == nil || b.Get([]byte("failed")) != nil {
					t.Errorf("stored: before %q, after %q, failed %q; want the others only", b.Get([]byte("before")), b.Get([]byte("after")), b.Get([]byte("failed")))
				}
				return nil
			})
		})
	}
}

// Close commits what was handed over before it and refuses what comes after.
func TestCloseCommitsPendingThenRefuses(t *testing.T) {
	db, g := openCommitter(t)
	release := holdWriter(t, g)
	done := make(chan error, 1)
	go func() { done <- g.update(put("pending")) }()
	waitPending(t, g, 1)
	closed := make(chan struct{})
	go func() { g.close(); close(closed) }()
	release()
	if err := <-done; err != nil {
		t.Fatalf("write pending at close: %v", err)
	}
	<-closed
	if err := g.update(put("late")); !errors.Is(err, errClosed) {
		t.Fatalf("write after close: %v, want errClosed", err)
	}
	_ = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("b")).Get([]byte("pending")) == nil {
			t.Error("the write pending at close was not committed")
		}
		return nil
	})
}
