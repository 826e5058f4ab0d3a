package embedded

import (
	"context"
	"fmt"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	bolt "go.etcd.io/bbolt"
)

// Store is the embedded delivery.Store, jobs.Store, delivery.Counters and jobs.Counters.
type Store struct {
	db     *bolt.DB // for reads; writes go through writes
	writes *groupCommitter
}

var (
	_ delivery.Store    = (*Store)(nil)
	_ delivery.Counters = (*Store)(nil)
	_ jobs.Store        = (*Store)(nil)
	_ jobs.Counters     = (*Store)(nil)
)

// meta is the stored form of a Record without its payload.
type meta struct {
	Event                  string         `json:"event"`
	Action                 string         `json:"action,omitempty"`
	Repository             string         `json:"repository,omitempty"`
	InstallationTargetType string         `json:"installationTargetType,omitempty"`
	InstallationTargetID   string         `json:"installationTargetId,omitempty"`
	ReceivedAt             time.Time      `json:"receivedAt"`
	State                  delivery.State `json:"state"`
	Outcome                string         `json:"outcome,omitempty"`
	ProcessedAt            time.Time      `json:"processedAt,omitzero"`
	Redelivered            bool           `json:"redelivered,omitempty"`
}

// storeKey joins the two ids with a NUL, which neither can contain.
func storeKey(k delivery.Key) []byte {
	return []byte(k.HookID + "\x00" + k.DeliveryID)
}

// Times are kept at millisecond precision in UTC, like the DynamoDB store.
func ms(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

func toMeta(r *delivery.Record) meta {
	return meta{
		Event: r.Event, Action: r.Action, Repository: r.Repository,
		InstallationTargetType: r.InstallationTargetType, InstallationTargetID: r.InstallationTargetID,
		ReceivedAt: ms(r.ReceivedAt), State: r.State, Outcome: r.Outcome, ProcessedAt: ms(r.ProcessedAt),
		Redelivered: r.Redelivered,
	}
}

func (m meta) record(k delivery.Key, payload []byte) *delivery.Record {
	r := &delivery.Record{
		Key: k, Event: m.Event, Action: m.Action, Repository: m.Repository,
		InstallationTargetType: m.InstallationTargetType, InstallationTargetID: m.InstallationTargetID,
		ReceivedAt: m.ReceivedAt, State: m.State, Outcome: m.Outcome, ProcessedAt: m.ProcessedAt,
		Redelivered: m.Redelivered,
	}
	if payload != nil {
		r.Payload = append([]byte{}, payload...) // bbolt's bytes live only as long as the transaction
	}
	return r
}

func (s *Store) Create(ctx context.Context, rec *delivery.Record) (*delivery.Record, error) {
	key := storeKey(rec.Key)
	var existing *delivery.Record
	// The function may run more than once, so it starts from scratch each time.
	err := s.writes.update(func(tx *bolt.Tx) error {
		existing = nil
		deliveries := tx.Bucket(bucketDeliveries)
		var m meta
		found, err := getJSON(deliveries, key, &m)
		if err != nil {
			return err
		}
		if found {
			existing = m.record(rec.Key, nil)
			return nil
		}
		if err := putJSON(deliveries, key, toMeta(rec)); err != nil {
			return err
		}
		created := tally{Total: 1}
		if rec.State.Done() {
			created.Processed = 1 // recorded finished: Pending (Total − Processed) must not count it
		} else if err := putJSON(tx.Bucket(bucketPending), key, delivery.Message{Key: rec.Key, Event: rec.Event}); err != nil {
			return err
		}
		if err := count(tx, rec.Event, rec.ReceivedAt, created); err != nil {
			return err
		}
		if err := indexTime(tx, rec.Key, rec.ReceivedAt); err != nil {
			return err
		}
		return tx.Bucket(bucketPayloads).Put(key, rec.Payload)
	})
	if err != nil {
		return nil, fmt.Errorf("store delivery %s: %w", rec.DeliveryID, err)
	}
	return existing, nil
}

func (s *Store) Get(ctx context.Context, k delivery.Key) (*delivery.Record, error) {
	key := storeKey(k)
	var rec *delivery.Record
	err := s.db.View(func(tx *bolt.Tx) error {
		var m meta
		found, err := getJSON(tx.Bucket(bucketDeliveries), key, &m)
		if err != nil || !found {
			return err
		}
		rec = m.record(k, tx.Bucket(bucketPayloads).Get(key))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read delivery %s: %w", k.DeliveryID, err)
	}
	if rec == nil {
		return nil, delivery.ErrNotFound
	}
	return rec, nil
}

// MarkRedelivered implements delivery.Store. Like every write, it goes through the
// group committer.
func (s *Store) MarkRedelivered(ctx context.Context, k delivery.Key) error {
	key := storeKey(k)
	err := s.writes.update(func(tx *bolt.Tx) error {
		deliveries := tx.Bucket(bucketDeliveries)
		var m meta
		found, err := getJSON(deliveries, key, &m)
		switch {
		case err != nil:
			return err
		case !found:
			return delivery.ErrNotFound
		case m.Redelivered:
			return nil
		}
		m.Redelivered = true
		return putJSON(deliveries, key, m)
	})
	if err != nil {
		return fmt.Errorf("mark delivery %s redelivered: %w", k.DeliveryID, err)
	}
	return nil
}
