// Package embedded keeps deliveries, the processing queue, the job domain's state and the
// hourly counters in one bbolt file, for the local stack (make run). Writes go through one
// group committer (group.go), which folds the requests that arrive during a commit into the
// next transaction and fsync: every delivery is durable before it is acknowledged, and
// throughput still grows with concurrency instead of being bounded by the disk's fsync
// rate.
//
// The queue's durability comes from the store: Create records a new delivery and adds it
// to a pending index in the same transaction, and the Commit that finishes it removes
// it in the same transaction as the state change. The queue itself is in memory and is refilled from the pending
// index at start (Queue.Recover). So a delivery costs two commits, not four, and there is
// no window in which a delivery is recorded but not queued.
//
// The job domain's state (jobs.Store) lives in the same file, so a Change and the finish
// of the delivery it carries commit in one transaction. Lists are kept as index buckets
// maintained by the writes that change them (the pending jobs of a pool in queue order,
// the idle runners of a pool by name) and the statistics as hourly counters bumped by
// the writes that record and finish deliveries: no read walks more than what it returns.
package embedded

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketDeliveries = []byte("deliveries") // key → record metadata (JSON)
	bucketPayloads   = []byte("payloads")   // key → payload bytes, kept apart so state changes do not rewrite them
	bucketPending    = []byte("pending")    // key → queue message, for every delivery not yet finished
	bucketDLQ        = []byte("dlq")        // key → message that kept failing, with its last error
	bucketCounters   = []byte("counters")   // <hour RFC 3339>\x00<event> → tally (JSON)
	bucketJobCounts  = []byte("jobCounts")  // <hour RFC 3339> → jobTally (JSON)

	bucketJobs     = []byte("jobs")     // 8-byte big-endian job id → jobs.Job (JSON)
	bucketRunners  = []byte("runners")  // runner name → jobs.Runner (JSON)
	bucketRuns     = []byte("runs")     // 8-byte big-endian run id → jobs.Run (JSON)
	bucketProfiles = []byte("profiles") // repository → jobs.Profile (JSON)
	bucketGates    = []byte("gates")    // pool, or pool#side → jobs.Gate (JSON); see gateKey
	bucketPools    = []byte("pools")    // pool name → jobs.Pool (JSON)
	// Indexes, kept by Commit from each entity's old and new state.
	bucketPendingJobs = []byte("pendingJobs") // <pool>\x00<QueueKey> → job key, for jobs with Allocation pending
	bucketIdleRunners = []byte("idleRunners") // <pool>\x00<name> → runner key, for runners in state idle

	buckets = [][]byte{
		bucketDeliveries, bucketPayloads, bucketPending, bucketDLQ, bucketCounters, bucketJobCounts,
		bucketJobs, bucketRunners, bucketRuns, bucketProfiles, bucketPools, bucketGates,
		bucketPendingJobs, bucketIdleRunners,
	}
)

// DB is an open embedded database.
type DB struct {
	bolt   *bolt.DB
	writes *groupCommitter
}

// Open opens the database file at path, creating it in a new data directory. It refuses,
// with ErrMissing, ErrCorrupt or ErrLocked, a database that is gone from a directory
// that held one, empty, damaged or held by another process (see checkBeforeOpen), and
// it reads the whole file to check it first.
func Open(path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	if err := checkBeforeOpen(path); err != nil {
		return nil, err
	}
	db, err := openBolt(path, &bolt.Options{Timeout: lockTimeout, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if err := ensureTimeIndex(tx); err != nil {
			return err
		}
		return ensurePoolCounts(tx)
	})
	if err == nil {
		err = writeMarker(path)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialise %s: %w", path, err)
	}
	return &DB{bolt: db, writes: newGroupCommitter(db)}, nil
}

// Close commits the writes under way and closes the file.
func (db *DB) Close() error {
	db.writes.close()
	return db.bolt.Close()
}

// Store returns the store backed by db: deliveries, job state and counters.
func (db *DB) Store() *Store { return &Store{db: db.bolt, writes: db.writes} }

// Queue returns the queue fed by db's pending index.
func (db *DB) Queue(maxAttempts int) *Queue { return newQueue(db.bolt, db.writes, maxAttempts) }

func getJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	return true, json.Unmarshal(raw, v)
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, raw)
}

// WriteBackup writes a consistent copy of the whole database to w from one read
// transaction: writers carry on meanwhile, and the copy is the database as it was when
// the transaction began. size, when not nil, is told the copy's exact length before the
// first byte is written (an HTTP handler sets Content-Length from it). The copy is a
// database file like the original: restore it by putting it in the original's place
// while nothing has the database open.
func (db *DB) WriteBackup(w io.Writer, size func(int64)) (int64, error) {
	var n int64
	err := db.bolt.View(func(tx *bolt.Tx) error {
		if size != nil {
			size(tx.Size())
		}
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("back up %s: %w", db.bolt.Path(), err)
	}
	return n, nil
}
