package deliverytest_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/delivery/deliverytest"
	"github.com/runnerhub/webhooks/internal/testenv/suite"
)

// The suites run against the simplest adapters that keep the ports' promises, so that a
// failure in a real adapter's run points at the adapter, not at the suite.
func TestStoreSuite(t *testing.T) {
	deliverytest.StoreSuite(t, func(*testing.T) delivery.Store { return &memStore{recs: map[delivery.Key]delivery.Record{}} }, memFinish)
}

func TestQueueSuite(t *testing.T) {
	deliverytest.QueueSuite(t, func(*testing.T) (delivery.Queue, func(context.Context) []delivery.Message) {
		q := &memQueue{}
		return q, q.drain
	})
}

type memStore struct {
	mu   sync.Mutex
	recs map[delivery.Key]delivery.Record
}

func (s *memStore) Create(_ context.Context, rec *delivery.Record) (*delivery.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if existing, ok := s.recs[rec.Key]; ok {
		existing.Payload = nil // Create reports an existing record without its payload
		return &existing, nil
	}
	stored := *clone(*rec)
	stored.ReceivedAt = storedTime(rec.ReceivedAt)
	stored.ProcessedAt = storedTime(rec.ProcessedAt)
	s.recs[rec.Key] = stored
	return nil, nil
}

func (s *memStore) Get(_ context.Context, key delivery.Key) (*delivery.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.recs[key]
	if !ok {
		return nil, delivery.ErrNotFound
	}
	return clone(rec), nil
}

func (s *memStore) MarkRedelivered(_ context.Context, key delivery.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.recs[key]
	if !ok {
		return delivery.ErrNotFound
	}
	rec.Redelivered = true
	s.recs[key] = rec
	return nil
}

// memFinish finishes a delivery of a memStore (or of a memLister, which embeds one) as
// a commit would, first outcome kept.
func memFinish(t *testing.T, s delivery.Store, rec *delivery.Record, state delivery.State, outcome string, at time.Time) {
	t.Helper()
	m, ok := s.(interface{ store() *memStore })
	if !ok {
		t.Fatalf("memFinish of a %T", s)
	}
	ms := m.store()
	ms.mu.Lock()
	defer ms.mu.Unlock()
	stored, ok := ms.recs[rec.Key]
	if !ok {
		t.Fatalf("memFinish of unknown delivery %s", rec.DeliveryID)
	}
	if !stored.State.Done() {
		stored.State, stored.Outcome, stored.ProcessedAt = state, outcome, storedTime(at)
		ms.recs[rec.Key] = stored
	}
}

func (s *memStore) store() *memStore { return s }

func clone(rec delivery.Record) *delivery.Record {
	rec.Payload = bytes.Clone(rec.Payload)
	return &rec
}

func storedTime(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

type memQueue struct {
	msgs suite.Recorded[delivery.Message]
}

func (q *memQueue) Enqueue(_ context.Context, msg delivery.Message) error {
	q.msgs.Add(msg)
	return nil
}

func (q *memQueue) drain(context.Context) []delivery.Message { return q.msgs.Take() }
