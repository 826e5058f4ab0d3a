package embedded

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	bolt "go.etcd.io/bbolt"
)

// Queue hands deliveries to the in-process consumer, at least once. It is a FIFO in
// memory; what makes it durable is the store's pending index, from which Recover refills
// it at start (see the package comment). A message that fails maxAttempts times moves to
// the dead-letter bucket with its last error and leaves the pending index, so a poison
// delivery is not retried forever across restarts.
type Queue struct {
	db          *bolt.DB
	writes      *groupCommitter
	maxAttempts int

	mu       sync.Mutex
	nextID   uint64
	ready    []Item
	inFlight map[uint64]Item
	wake     chan struct{} // signalled when ready gains items
}

var _ delivery.Queue = (*Queue)(nil)

// Item is a queued message as handed to the consumer.
type Item struct {
	ID       uint64
	Attempts int // earlier failed attempts
	delivery.Message
}

// DeadLetter is a message that kept failing.
type DeadLetter struct {
	delivery.Message
	Attempts  int    `json:"attempts"`
	LastError string `json:"lastError"`
}

func newQueue(db *bolt.DB, writes *groupCommitter, maxAttempts int) *Queue {
	return &Queue{db: db, writes: writes, maxAttempts: maxAttempts, inFlight: map[uint64]Item{}, wake: make(chan struct{}, 1)}
}

// Enqueue offers a message to the consumer. It needs no write of its own: the delivery is
// already in the pending index since Create.
func (q *Queue) Enqueue(ctx context.Context, msg delivery.Message) error {
	q.push(Item{Message: msg})
	return nil
}

func (q *Queue) push(items ...Item) {
	q.mu.Lock()
	for _, it := range items {
		q.nextID++
		it.ID = q.nextID
		q.ready = append(q.ready, it)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Recover queues every delivery the store has recorded but not finished: those that were
// queued or being processed when the process last stopped. Call it once, before serving.
func (q *Queue) Recover() (int, error) {
	var items []Item
	err := q.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPending).ForEach(func(_, v []byte) error {
			var msg delivery.Message
			if err := json.Unmarshal(v, &msg); err != nil {
				return err
			}
			items = append(items, Item{Message: msg})
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("recover pending deliveries: %w", err)
	}
	q.push(items...)
	return len(items), nil
}

// Receive waits until messages are available (or ctx ends) and takes up to max of them.
func (q *Queue) Receive(ctx context.Context, max int) ([]Item, error) {
	for {
		q.mu.Lock()
		n := min(max, len(q.ready))
		items := append([]Item(nil), q.ready[:n]...)
		q.ready = q.ready[n:]
		for _, it := range items {
			q.inFlight[it.ID] = it
		}
		more := len(q.ready) > 0
		q.mu.Unlock()
		if more {
			// Pass the signal on so another waiting consumer takes the rest.
			select {
			case q.wake <- struct{}{}:
			default:
			}
		}
		if n > 0 {
			return items, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-q.wake:
		}
	}
}

// Ack forgets a message whose delivery the consumer finished.
func (q *Queue) Ack(id uint64) {
	q.mu.Lock()
	delete(q.inFlight, id)
	q.mu.Unlock()
}

// Nack records a failed attempt: the message is offered again, or once it has failed
// maxAttempts times it is dead-lettered.
func (q *Queue) Nack(id uint64, cause error) error {
	q.mu.Lock()
	it, ok := q.inFlight[id]
	delete(q.inFlight, id)
	q.mu.Unlock()
	if !ok {
		return nil
	}
	it.Attempts++
	if it.Attempts < q.maxAttempts {
		// Offered again after a pause that doubles with each failure, so a passing
		// problem (a locked file, a full disk being cleared) is not retried to death.
		time.AfterFunc(retryDelay(it.Attempts), func() { q.push(it) })
		return nil
	}
	key := storeKey(it.Key)
	return q.writes.update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketPending).Delete(key); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketDLQ), key, DeadLetter{Message: it.Message, Attempts: it.Attempts, LastError: cause.Error()})
	})
}

// retryDelay is the pause before a message's next attempt: 100 ms after the first
// failure, doubling up to 5 s.
func retryDelay(attempts int) time.Duration {
	return min(100*time.Millisecond<<(attempts-1), 5*time.Second)
}

// DeadLetters returns what is in the dead-letter bucket.
func (q *Queue) DeadLetters() ([]DeadLetter, error) {
	var out []DeadLetter
	err := q.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDLQ).ForEach(func(_, v []byte) error {
			var d DeadLetter
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			out = append(out, d)
			return nil
		})
	})
	return out, err
}

// Depth returns how many deliveries wait for processing (queued or in flight) and how
// many are dead-lettered.
func (q *Queue) Depth() (pending, dead int, err error) {
	err = q.db.View(func(tx *bolt.Tx) error {
		pending = tx.Bucket(bucketPending).Stats().KeyN
		dead = tx.Bucket(bucketDLQ).Stats().KeyN
		return nil
	})
	return pending, dead, err
}

// ReplayDeadLetters puts every dead-lettered delivery back in the pending index and on
// the queue, with a fresh attempt count, and returns how many.
func (q *Queue) ReplayDeadLetters() (int, error) {
	var items []Item
	err := q.writes.update(func(tx *bolt.Tx) error {
		items = items[:0]
		dlq, pending := tx.Bucket(bucketDLQ), tx.Bucket(bucketPending)
		c := dlq.Cursor()
		for k, v := c.First(); k != nil; k, v = c.First() {
			var d DeadLetter
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			if err := putJSON(pending, k, d.Message); err != nil {
				return err
			}
			if err := dlq.Delete(k); err != nil {
				return err
			}
			items = append(items, Item{Message: d.Message})
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("replay dead letters: %w", err)
	}
	q.push(items...)
	return len(items), nil
}
