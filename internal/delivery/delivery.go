// Package delivery defines what RunnerHub keeps of a GitHub webhook delivery and the
// ports through which it is kept: a Store for the durable record and a Queue that hands
// recorded deliveries to the processor.
//
// A delivery is identified by (hook id, delivery id): GitHub reuses X-GitHub-Delivery when
// a delivery is redelivered and can send the same GUID to two different hooks, so neither
// id alone is a key.
package delivery

import (
	"context"
	"errors"
	"time"
)

// NoHook stands in for the hook id of deliveries that carry no X-GitHub-Hook-ID header
// (hand-made test deliveries); they deduplicate among themselves by delivery id.
const NoHook = "-"

// Key identifies one delivery.
type Key struct {
	HookID     string `json:"hookId"`
	DeliveryID string `json:"deliveryId"`
}

// State says how far a delivery has got.
type State string

const (
	// Received: durable and queued, not yet processed.
	Received State = "received"
	// Processed: the processor committed its effects.
	Processed State = "processed"
	// Ignored: processed, but the processor does not act on this event; Outcome says why.
	Ignored State = "ignored"
)

// Done reports whether the processor has finished with a delivery in this state.
func (s State) Done() bool { return s == Processed || s == Ignored }

// Record is the durable record of one delivery.
type Record struct {
	Key
	Event      string // X-GitHub-Event
	Action     string // payload "action", empty for events without one (push, ping)
	Repository string // payload repository.full_name, empty when absent
	// InstallationTargetType and InstallationTargetID come from the
	// X-GitHub-Hook-Installation-Target-* headers (repository, organization, integration...).
	InstallationTargetType string
	InstallationTargetID   string
	ReceivedAt             time.Time
	// Payload is the JSON document GitHub sent: the exact body for application/json
	// deliveries, the decoded payload field for form-encoded ones.
	Payload     []byte
	State       State
	Outcome     string // free text set with the final state, e.g. "ignored: event not handled"
	ProcessedAt time.Time
	// Redelivered: the delivery arrived by redelivery, its original attempt having failed
	// at GitHub. Set afterwards by MarkRedelivered, once GitHub's log shows it.
	Redelivered bool
}

// Message is what travels on the queue: just enough to find the record again. The payload
// stays in the store, so the queue's message size limit never bounds what can be accepted.
type Message struct {
	Key
	Event string `json:"event"`
}

// ErrNotFound is returned by Store.Get for an unknown key.
var ErrNotFound = errors.New("delivery not found")

// Store keeps delivery records. A delivery is finished (Processed or Ignored) by the
// commit that applies its effects, jobs.Store.Commit with a jobs.Finish, in the same
// transaction, so that the state and the effects never disagree; Store itself has no
// finishing method.
type Store interface {
	// Create stores rec if no record with its key exists and returns (nil, nil). If one
	// exists it is left untouched and returned instead, without its Payload, so the caller
	// can tell a redelivery from a new delivery in one round trip and a redelivered 25 MB
	// payload is never read back just to be thrown away.
	Create(ctx context.Context, rec *Record) (existing *Record, err error)
	// Get returns the record for key, payload included, or ErrNotFound.
	Get(ctx context.Context, key Key) (*Record, error)
	// MarkRedelivered sets Redelivered on key's record, leaving everything else as it is,
	// or returns ErrNotFound. Marking twice is harmless.
	MarkRedelivered(ctx context.Context, key Key) error
}

// Queue hands deliveries to the processor, at least once.
type Queue interface {
	Enqueue(ctx context.Context, msg Message) error
}

// HourlyCount is the counters of one event type for one UTC hour, keyed by the hour the
// deliveries were received in. Pending is Total − Processed.
type HourlyCount struct {
	Hour      time.Time // truncated to the hour, UTC
	Event     string
	Total     int64 // deliveries recorded (incremented by Store.Create, once per new delivery)
	Processed int64 // deliveries finished (incremented with the finishing commit, once per delivery)
	Errors    int64 // failed processing attempts
}

// Counters are the per-hour counters, maintained on write so that statistics read a
// bounded number of counter items and never scan deliveries.
type Counters interface {
	// HourlyCounts returns the counters of the hours in [from, to), oldest first.
	HourlyCounts(ctx context.Context, from, to time.Time) ([]HourlyCount, error)
	// CountError records one failed processing attempt of a delivery of event received at
	// receivedAt.
	CountError(ctx context.Context, event string, receivedAt time.Time) error
}

// Hour is the counter bucket of t.
func Hour(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }
