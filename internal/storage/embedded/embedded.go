// Package embedded keeps deliveries and the processing queue in one bbolt file, for the
// local stack (make run). Writes go through bbolt's Batch, which folds concurrent
// requests into one transaction and one fsync: every delivery is durable before it is
// acknowledged, and throughput still grows with concurrency instead of being bounded by
// the disk's fsync rate.
//
// The queue's durability comes from the store: Create records a new delivery and adds it
// to a pending index in the same transaction, Finish removes it in the same transaction
// as the state change. The queue itself is in memory and is refilled from the pending
// index at start (Queue.Recover). So a delivery costs two commits, not four, and there is
// no window in which a delivery is recorded but not queued.
package embedded

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketDeliveries = []byte("deliveries") // key → record metadata (JSON)
	bucketPayloads   = []byte("payloads")   // key → payload bytes, kept apart so state changes do not rewrite them
	bucketPending    = []byte("pending")    // key → queue message, for every delivery not yet finished
	bucketDLQ        = []byte("dlq")        // key → message that kept failing, with its last error
)

// DB is an open embedded database.
type DB struct {
	bolt *bolt.DB
}

// Open opens (creating if needed) the database file at path.
func Open(path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w (is another runnerhub using it?)", path, err)
	}
	// Group commits: wait up to 5 ms for company before committing (measured best under
	// load; see the README performance section).
	db.MaxBatchDelay = 5 * time.Millisecond
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketDeliveries, bucketPayloads, bucketPending, bucketDLQ} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialise %s: %w", path, err)
	}
	return &DB{bolt: db}, nil
}

// Close closes the file.
func (db *DB) Close() error { return db.bolt.Close() }

// Store returns the delivery store backed by db.
func (db *DB) Store() *Store { return &Store{db: db.bolt} }

// Queue returns the queue fed by db's pending index.
func (db *DB) Queue(maxAttempts int) *Queue { return newQueue(db.bolt, maxAttempts) }

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
