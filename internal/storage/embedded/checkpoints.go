package embedded

import (
	"context"
	"slices"

	"github.com/runnerhub/webhooks/internal/checkpoint"
	bolt "go.etcd.io/bbolt"
)

// bucketCheckpoints: checkpoint name → the reconciler's document. Created on first
// write, so databases from before the reconciler open unchanged.
var bucketCheckpoints = []byte("checkpoints")

var _ checkpoint.Store = (*Store)(nil)

// Checkpoint implements checkpoint.Store.
func (s *Store) Checkpoint(_ context.Context, name string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketCheckpoints); b != nil {
			out = slices.Clone(b.Get([]byte(name)))
		}
		return nil
	})
	return out, err
}

// PutCheckpoint implements checkpoint.Store.
func (s *Store) PutCheckpoint(_ context.Context, name string, data []byte) error {
	return s.writes.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketCheckpoints)
		if err != nil {
			return err
		}
		return b.Put([]byte(name), slices.Clone(data))
	})
}
