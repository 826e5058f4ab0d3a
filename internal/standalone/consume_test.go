package standalone

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
)

// Each worker takes one queued delivery at a time: as many deliveries as there are
// workers, queued together (left unprocessed by an earlier run), are all in processing at
// once. A worker that took several processed them one after another, each behind the
// commit of the one before, while other workers stood idle.
func TestEveryWorkerTakesOneDelivery(t *testing.T) {
	s, err := Open(testConfig(t, t.TempDir(), nil), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for i := range workers {
		rec := &delivery.Record{
			Key:   delivery.Key{HookID: "1", DeliveryID: fmt.Sprintf("left-%d", i)},
			Event: "ping", ReceivedAt: time.Now(), State: delivery.Received, Payload: []byte(`{"zen":"Keep it simple."}`),
		}
		if _, err := s.db.Store().Create(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	// Each processed delivery holds its worker until the end of the test.
	var held atomic.Int64
	all, release := make(chan struct{}), make(chan struct{})
	s.OnProcessed(func(*delivery.Record) {
		if held.Add(1) == workers {
			close(all)
		}
		<-release
	})
	serve(t, s)
	t.Cleanup(func() { close(release) }) // runs before serving stops, which waits for the workers
	select {
	case <-all:
	case <-time.After(10 * time.Second):
		t.Fatalf("%d of %d queued deliveries in processing at once, want all: workers took more than one each", held.Load(), workers)
	}
}
