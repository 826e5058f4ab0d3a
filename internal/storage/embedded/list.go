package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	bolt "go.etcd.io/bbolt"
)

// bucketByTime is the time index of deliveries: <receivedAt>#<hookId>#<deliveryId>
// (delivery.Position.SortKey, the DynamoDB store's gsi1sk) → store key. Create adds to it
// in the transaction that records the delivery; nothing removes from it, as nothing
// removes deliveries.
var bucketByTime = []byte("byTime")

var (
	_ delivery.Lister      = (*Store)(nil)
	_ delivery.DeadLetters = (*Queue)(nil)
)

// indexTime adds a new delivery to the time index, in the transaction that creates it.
func indexTime(tx *bolt.Tx, key delivery.Key, receivedAt time.Time) error {
	pos := delivery.Position{At: ms(receivedAt), Key: key}
	return tx.Bucket(bucketByTime).Put([]byte(pos.SortKey()), storeKey(key))
}

// ensureTimeIndex creates the time index of a database made before it existed and fills
// it from the deliveries already recorded, once.
func ensureTimeIndex(tx *bolt.Tx) error {
	if tx.Bucket(bucketByTime) != nil {
		return nil
	}
	if _, err := tx.CreateBucket(bucketByTime); err != nil {
		return err
	}
	return tx.Bucket(bucketDeliveries).ForEach(func(k, v []byte) error {
		hook, id, _ := bytes.Cut(k, []byte{0})
		var m meta
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("index delivery %q: %w", id, err)
		}
		return indexTime(tx, delivery.Key{HookID: string(hook), DeliveryID: string(id)}, m.ReceivedAt)
	})
}

// List implements delivery.Lister over the time index.
func (s *Store) List(ctx context.Context, q delivery.ListQuery) (delivery.Page, error) {
	return delivery.ListDays(ctx, q, s.readDay)
}

// readDay is the delivery.DayReader of the time index: one read transaction that walks
// back from before to the start of day, at most max entries.
func (s *Store) readDay(_ context.Context, day time.Time, before delivery.Position, max int) ([]*delivery.Record, bool, error) {
	dayStart := []byte(day.UTC().Format(delivery.TimeKeyLayout)) // sorts before every key of the day
	var (
		recs []*delivery.Record
		more bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		deliveries := tx.Bucket(bucketDeliveries)
		c := tx.Bucket(bucketByTime).Cursor()
		var k, v []byte
		if at, _ := c.Seek([]byte(before.SortKey())); at == nil { // the first key at or after before...
			k, v = c.Last()
		} else {
			k, v = c.Prev() // ...so the one before it is the first to list
		}
		for ; k != nil && bytes.Compare(k, dayStart) >= 0; k, v = c.Prev() {
			if len(recs) == max {
				more = true
				return nil
			}
			var m meta
			found, err := getJSON(deliveries, v, &m)
			if err != nil {
				return fmt.Errorf("read indexed delivery %q: %w", k, err)
			}
			if !found {
				return fmt.Errorf("time index entry %q has no delivery", k)
			}
			hook, id, _ := bytes.Cut(v, []byte{0})
			recs = append(recs, m.record(delivery.Key{HookID: string(hook), DeliveryID: string(id)}, nil))
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return recs, more, nil
}

// Depths implements delivery.DeadLetters: deliveries pending (queued or in flight) and
// dead-lettered.
func (q *Queue) Depths(context.Context) (delivery.Depths, error) {
	pending, dead, err := q.Depth()
	if err != nil {
		return delivery.Depths{}, fmt.Errorf("queue depth: %w", err)
	}
	return delivery.Depths{Queued: int64(pending), Dead: int64(dead)}, nil
}

// Redrive implements delivery.DeadLetters with ReplayDeadLetters.
func (q *Queue) Redrive(context.Context) (int, error) { return q.ReplayDeadLetters() }
