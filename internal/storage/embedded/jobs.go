package embedded

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	bolt "go.etcd.io/bbolt"
)

// Entities are stored as their domain types' JSON (Go field names): the file belongs to
// one build of the local stack, so a renamed field is a format change to migrate.

// idKey is the key of a job or run: big-endian, so that keys sort by id.
func idKey(id int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(id)) }

// indexKey joins a pool and an entry's place in it with a NUL, which names do not contain,
// so that one pool's entries are one key range.
func indexKey(pool, place string) []byte { return []byte(pool + "\x00" + place) }

// pendingKey is a job's entry in the pending index, nil when it is not pending.
func pendingKey(j *jobs.Job) []byte {
	if j == nil || j.Allocation != jobs.AllocationPending {
		return nil
	}
	return indexKey(j.Pool, j.QueueKey)
}

// idleKey is a runner's entry in the idle index, nil when it is not idle.
func idleKey(r *jobs.Runner) []byte {
	if r == nil || r.State != jobs.RunnerIdle {
		return nil
	}
	return indexKey(r.Pool, r.Name)
}

func (s *Store) Job(ctx context.Context, id int64) (*jobs.Job, error) {
	return lookup[jobs.Job](s.db, bucketJobs, idKey(id), fmt.Sprintf("job %d", id))
}

func (s *Store) Runner(ctx context.Context, name string) (*jobs.Runner, error) {
	return lookup[jobs.Runner](s.db, bucketRunners, []byte(name), "runner "+name)
}

func (s *Store) Run(ctx context.Context, id int64) (*jobs.Run, error) {
	return lookup[jobs.Run](s.db, bucketRuns, idKey(id), fmt.Sprintf("run %d", id))
}

func (s *Store) Profile(ctx context.Context, repository string) (*jobs.Profile, error) {
	return lookup[jobs.Profile](s.db, bucketProfiles, []byte(repository), "profile of "+repository)
}

func (s *Store) IdleRunners(ctx context.Context, pool, after string, limit int) ([]*jobs.Runner, error) {
	return listRange[jobs.Runner](s.db, bucketIdleRunners, bucketRunners, pool, after, false, limit)
}

func (s *Store) PendingJobs(ctx context.Context, pool, after string, limit int) ([]*jobs.Job, error) {
	return listRange[jobs.Job](s.db, bucketPendingJobs, bucketJobs, pool, after, false, limit)
}

// lookup reads the entity stored under key; an absent one is jobs.ErrNotFound.
func lookup[T any](db *bolt.DB, bucket, key []byte, what string) (*T, error) {
	v := new(T)
	var found bool
	err := db.View(func(tx *bolt.Tx) error {
		var err error
		found, err = getJSON(tx.Bucket(bucket), key, v)
		return err
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", what, err)
	case !found:
		return nil, fmt.Errorf("%s: %w", what, jobs.ErrNotFound)
	}
	return v, nil
}

func (s *Store) Gate(ctx context.Context, pool string, side jobs.GateSide) (*jobs.Gate, error) {
	g, err := lookup[jobs.Gate](s.db, bucketGates, gateKey(pool, side), "gate of pool "+pool)
	if errors.Is(err, jobs.ErrNotFound) {
		return &jobs.Gate{Pool: pool, Side: side}, nil
	}
	return g, err
}

// gateKey is where a side of a pool's gate is kept: the capacity side under the pool's
// name, as the single gate was before it had sides, the others after a '#', which no
// pool name has.
func gateKey(pool string, side jobs.GateSide) []byte {
	if side == jobs.GateCapacity {
		return []byte(pool)
	}
	return []byte(pool + "#" + string(side))
}

// checkGates is check's part for the gates a change writes at their next version or
// only checks.
func checkGates(tx *bolt.Tx, c *jobs.Change) error {
	for _, g := range slices.Concat(c.Gates, c.GateChecks) {
		if err := checkVersion(tx.Bucket(bucketGates), gateKey(g.Pool, g.Side), g.Version, "gate", string(gateKey(g.Pool, g.Side))); err != nil {
			return err
		}
	}
	return nil
}

// writeGates is commit's part for the gates: those checked (by checkGates) are stored at
// their next version, those bumped at one more than whatever is stored.
func writeGates(tx *bolt.Tx, c *jobs.Change) error {
	gates := tx.Bucket(bucketGates)
	for _, g := range c.Gates {
		next := *g
		if _, err := swap(gates, gateKey(g.Pool, g.Side), &next, func(g *jobs.Gate) *int64 { return &g.Version }); err != nil {
			return fmt.Errorf("gate of pool %s: %w", g.Pool, err)
		}
	}
	for _, k := range c.GateBumps {
		g := jobs.Gate{Pool: k.Pool, Side: k.Side}
		if _, err := getJSON(gates, gateKey(k.Pool, k.Side), &g); err != nil {
			return fmt.Errorf("gate of pool %s: %w", k.Pool, err)
		}
		g.Version++
		if err := putJSON(gates, gateKey(k.Pool, k.Side), g); err != nil {
			return fmt.Errorf("gate of pool %s: %w", k.Pool, err)
		}
	}
	return nil
}

func (s *Store) Pools(ctx context.Context) ([]jobs.Pool, error) {
	var out []jobs.Pool
	err := s.db.View(func(tx *bolt.Tx) error {
		// Keys are names, so the bucket's order is the order by name.
		return tx.Bucket(bucketPools).ForEach(func(_, v []byte) error {
			var p jobs.Pool
			if err := json.Unmarshal(v, &p); err != nil {
				return err
			}
			out = append(out, p)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read pools: %w", err)
	}
	return out, nil
}

func (s *Store) PutPool(ctx context.Context, p jobs.Pool) error {
	err := s.writes.update(func(tx *bolt.Tx) error { return putJSON(tx.Bucket(bucketPools), []byte(p.Name), p) })
	if err != nil {
		return fmt.Errorf("store pool %s: %w", p.Name, err)
	}
	return nil
}

func (s *Store) DeletePool(ctx context.Context, name string) error {
	err := s.writes.update(func(tx *bolt.Tx) error {
		pools := tx.Bucket(bucketPools)
		if pools.Get([]byte(name)) == nil {
			return jobs.ErrNotFound
		}
		return pools.Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("delete pool %s: %w", name, err)
	}
	return nil
}

// Commit writes c in one transaction. Concurrent commits share transactions (the group
// committer); a stale change (ErrConflict) is found before anything of it is written, so
// it is left out and the others commit without it.
func (s *Store) Commit(ctx context.Context, c *jobs.Change) error {
	if err := validate(c); err != nil {
		return err
	}
	err := s.writes.update(func(tx *bolt.Tx) error {
		if err := check(tx, c); err != nil {
			return untouched{err}
		}
		return commit(tx, c)
	})
	if err != nil {
		return fmt.Errorf("commit change: %w", err)
	}
	return nil
}

// check finds, without writing, what would make commit fail: a finished or unknown
// delivery, an entity stored at another version than the change read it at.
func check(tx *bolt.Tx, c *jobs.Change) error {
	if f := c.Finish; f != nil {
		if _, err := unfinished(tx, f.Key); err != nil {
			return err
		}
	}
	var err error
	for _, j := range c.Jobs {
		err = cmp.Or(err, checkVersion(tx.Bucket(bucketJobs), idKey(j.ID), j.Version, "job", j.ID))
	}
	for _, r := range c.Runners {
		err = cmp.Or(err, checkVersion(tx.Bucket(bucketRunners), []byte(r.Name), r.Version, "runner", r.Name))
	}
	for _, r := range c.DeleteRunners {
		if r.Version == 0 {
			return fmt.Errorf("delete runner %s at version 0: %w", r.Name, jobs.ErrConflict)
		}
		err = cmp.Or(err, checkVersion(tx.Bucket(bucketRunners), []byte(r.Name), r.Version, "runner", r.Name))
	}
	for _, r := range c.Runs {
		err = cmp.Or(err, checkVersion(tx.Bucket(bucketRuns), idKey(r.ID), r.Version, "run", r.ID))
	}
	for _, p := range c.Profiles {
		err = cmp.Or(err, checkVersion(tx.Bucket(bucketProfiles), []byte(p.Repository), p.Version, "profile of", p.Repository))
	}
	return cmp.Or(err, checkGates(tx, c))
}

// checkVersion is swap's test alone: the entity under key must be stored at version read
// (0: absent), or the change is stale. It decodes the version only: under load, decoding
// whole entities twice (here and in swap) was half of the committer's own CPU time.
func checkVersion(b *bolt.Bucket, key []byte, read int64, what string, name any) error {
	var stored struct{ Version int64 } // every entity's version field, in Go's name
	if _, err := getJSON(b, key, &stored); err != nil {
		return err
	}
	if stored.Version != read {
		return fmt.Errorf("%s %v: read at version %d, stored at %d: %w", what, name, read, stored.Version, jobs.ErrConflict)
	}
	return nil
}

// validate refuses changes that no store could keep faithfully: they are bugs, not
// conflicts, and retrying them would not help.
func validate(c *jobs.Change) error {
	if f := c.Finish; f != nil && !f.State.Done() {
		return fmt.Errorf("finish delivery %s in state %q: not a final state", f.Key.DeliveryID, f.State)
	}
	for _, j := range c.Jobs {
		if j.Allocation == jobs.AllocationPending && j.QueueKey == "" {
			return fmt.Errorf("job %d is pending without a QueueKey", j.ID)
		}
	}
	return nil
}

// commit writes c in tx, or fails with nothing of it applied once tx rolls back. It
// neither changes c nor keeps anything between calls: it may be called more than once.
func commit(tx *bolt.Tx, c *jobs.Change) error {
	// The delivery first: a redelivered change is the usual conflict, found at once.
	if c.Finish != nil {
		if err := finishDelivery(tx, c.Finish); err != nil {
			return err
		}
	}
	for _, write := range []func() error{
		writeEach(tx, c.Jobs, putJob),
		writeEach(tx, c.Runners, putRunner),
		writeEach(tx, c.DeleteRunners, deleteRunner),
		writeEach(tx, c.Runs, putRun),
		writeEach(tx, c.Profiles, putProfile),
		func() error { return writeGates(tx, c) },
		func() error { return addCounts(tx, c.Counts) },
	} {
		if err := write(); err != nil {
			return err
		}
	}
	return countJobs(tx, c)
}

// writeEach is one step of commit: write each of items in tx, up to the first error.
func writeEach[T any](tx *bolt.Tx, items []T, write func(*bolt.Tx, T) error) func() error {
	return func() error {
		for _, item := range items {
			if err := write(tx, item); err != nil {
				return err
			}
		}
		return nil
	}
}

// finishDelivery is the delivery's part of a change: it moves the delivery to its final
// state with everything that goes with it. It leaves the pending index (so it is not
// queued again at the next start) and is counted processed, in the hour and event it was
// counted in when it was created. Finding it finished already is a conflict, since its
// effects are then written already. f.Event and f.ReceivedAt go unused: the record, read
// in the same transaction, has them.
func finishDelivery(tx *bolt.Tx, f *jobs.Finish) error {
	m, err := unfinished(tx, f.Key)
	if err != nil {
		return err
	}
	key, deliveries := storeKey(f.Key), tx.Bucket(bucketDeliveries)
	m.State, m.Outcome, m.ProcessedAt = f.State, f.Outcome, ms(f.At)
	if err := tx.Bucket(bucketPending).Delete(key); err != nil {
		return err
	}
	if err := putJSON(deliveries, key, m); err != nil {
		return err
	}
	return count(tx, m.Event, m.ReceivedAt, tally{Processed: 1})
}

// unfinished reads the record of a delivery a change finishes: an unknown one is
// jobs.ErrNotFound (not a conflict: reading again would not make it appear), a finished
// one a conflict.
func unfinished(tx *bolt.Tx, k delivery.Key) (meta, error) {
	var m meta
	found, err := getJSON(tx.Bucket(bucketDeliveries), storeKey(k), &m)
	switch {
	case err != nil:
		return m, err
	case !found:
		return m, fmt.Errorf("finish delivery %s: %w", k.DeliveryID, jobs.ErrNotFound)
	case m.State.Done():
		return m, fmt.Errorf("delivery %s is finished already: %w", k.DeliveryID, jobs.ErrConflict)
	}
	return m, nil
}

func putJob(tx *bolt.Tx, j *jobs.Job) error {
	next := *j
	next.CreatedAt, next.QueuedAt, next.StartedAt, next.CompletedAt = ms(j.CreatedAt), ms(j.QueuedAt), ms(j.StartedAt), ms(j.CompletedAt)
	key := idKey(j.ID)
	prev, err := swap(tx.Bucket(bucketJobs), key, &next, func(j *jobs.Job) *int64 { return &j.Version })
	if err != nil {
		return fmt.Errorf("job %d: %w", j.ID, err)
	}
	if err := reindex(tx.Bucket(bucketPendingJobs), pendingKey(prev), pendingKey(&next), key); err != nil {
		return err
	}
	return reindexLists(tx, jobEntries(prev), jobEntries(&next), key)
}

func putRunner(tx *bolt.Tx, r *jobs.Runner) error {
	next := *r
	next.UpdatedAt, next.LastSeen = ms(r.UpdatedAt), ms(r.LastSeen)
	key := []byte(r.Name)
	prev, err := swap(tx.Bucket(bucketRunners), key, &next, func(r *jobs.Runner) *int64 { return &r.Version })
	if err != nil {
		return fmt.Errorf("runner %s: %w", r.Name, err)
	}
	if err := reindex(tx.Bucket(bucketIdleRunners), idleKey(prev), idleKey(&next), key); err != nil {
		return err
	}
	return reindexLists(tx, runnerEntries(prev), runnerEntries(&next), key)
}

func deleteRunner(tx *bolt.Tx, r *jobs.Runner) error {
	runners := tx.Bucket(bucketRunners)
	key := []byte(r.Name)
	var prev jobs.Runner
	found, err := getJSON(runners, key, &prev)
	switch {
	case err != nil:
		return err
	case !found || prev.Version != r.Version:
		return fmt.Errorf("delete runner %s at version %d: %w", r.Name, r.Version, jobs.ErrConflict)
	}
	if err := runners.Delete(key); err != nil {
		return err
	}
	if err := reindex(tx.Bucket(bucketIdleRunners), idleKey(&prev), nil, nil); err != nil {
		return err
	}
	return reindexLists(tx, runnerEntries(&prev), nil, nil)
}

func putRun(tx *bolt.Tx, r *jobs.Run) error {
	next := *r
	next.CreatedAt, next.UpdatedAt = ms(r.CreatedAt), ms(r.UpdatedAt)
	if _, err := swap(tx.Bucket(bucketRuns), idKey(r.ID), &next, func(r *jobs.Run) *int64 { return &r.Version }); err != nil {
		return fmt.Errorf("run %d: %w", r.ID, err)
	}
	return nil
}

func putProfile(tx *bolt.Tx, p *jobs.Profile) error {
	next := *p
	if _, err := swap(tx.Bucket(bucketProfiles), []byte(p.Repository), &next, func(p *jobs.Profile) *int64 { return &p.Version }); err != nil {
		return fmt.Errorf("profile of %s: %w", p.Repository, err)
	}
	return nil
}

// swap stores next under key in place of the entity the change read, at the version
// after the one it was read at (*version(next); 0: it must not exist yet), and returns
// the entity it replaced (nil: none). Any other stored version means someone wrote in
// between: ErrConflict. next is the caller's copy, so its version can be bumped.
func swap[T any](b *bolt.Bucket, key []byte, next *T, version func(*T) *int64) (prev *T, err error) {
	prev = new(T)
	found, err := getJSON(b, key, prev)
	if err != nil {
		return nil, err
	}
	if !found {
		prev = nil
	}
	read := *version(next)
	if stored := storedVersion(prev, version); stored != read {
		return nil, fmt.Errorf("read at version %d, stored at %d: %w", read, stored, jobs.ErrConflict)
	}
	*version(next) = read + 1
	return prev, putJSON(b, key, next)
}

func storedVersion[T any](v *T, version func(*T) *int64) int64 {
	if v == nil {
		return 0
	}
	return *version(v)
}

// reindex moves an entity's index entry from the key its old state had to the one its
// new state has (nil: not in the index); ref is the entity's key.
func reindex(index *bolt.Bucket, from, to, ref []byte) error {
	if bytes.Equal(from, to) {
		return nil
	}
	if from != nil {
		if err := index.Delete(from); err != nil {
			return err
		}
	}
	if to == nil {
		return nil
	}
	return index.Put(to, ref)
}
