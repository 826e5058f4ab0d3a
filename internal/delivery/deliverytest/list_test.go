package deliverytest_test

import (
	"context"
	"slices"
	"strings"
	"time"

	"testing"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/delivery/deliverytest"
)

// The listing suite runs against the memory store, listed through delivery.ListDays like
// the real adapters, so that the suite and ListDays are checked before any adapter is.
func TestListSuite(t *testing.T) {
	deliverytest.ListSuite(t, func(*testing.T) deliverytest.Listing {
		return &memLister{memStore: &memStore{recs: map[delivery.Key]delivery.Record{}}}
	}, memFinish)
}

type memLister struct{ *memStore }

func (s *memLister) List(ctx context.Context, q delivery.ListQuery) (delivery.Page, error) {
	return delivery.ListDays(ctx, q, s.readDay)
}

// readDay sorts the whole store on every read: the simplest index there is.
func (s *memLister) readDay(_ context.Context, day time.Time, before delivery.Position, max int) ([]*delivery.Record, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var recs []*delivery.Record
	for _, rec := range s.recs {
		key := delivery.Position{At: rec.ReceivedAt, Key: rec.Key}.SortKey()
		if rec.ReceivedAt.Truncate(24*time.Hour).Equal(day) && key < before.SortKey() {
			r := rec
			r.Payload = nil
			recs = append(recs, &r)
		}
	}
	slices.SortFunc(recs, func(a, b *delivery.Record) int {
		return strings.Compare(delivery.Position{At: b.ReceivedAt, Key: b.Key}.SortKey(), delivery.Position{At: a.ReceivedAt, Key: a.Key}.SortKey())
	})
	if len(recs) > max {
		return recs[:max], true, nil
	}
	return recs, false, nil
}
