package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/runnerhub/webhooks/internal/jobs"
)

// Announcement is what one commit announces, on its way from the committing process to
// the fan-out: its messages already encoded (each one as a client receives it), and the
// facts the fan-out needs to add a pool-status for every pool the commit changed. It is
// small and self-contained, so that on AWS it travels as one SQS message (FanoutQueue)
// and the fan-out reads nothing the committing process already knew.
type Announcement struct {
	At time.Time `json:"at"`
	// DeliveryID is the commit's delivery, "" for a fleet operation or a pool's settings.
	DeliveryID string  `json:"deliveryId,omitempty"`
	Frames     []Frame `json:"frames,omitempty"`
	// Pools are the pools whose pool-status the fan-out adds after Frames, with the
	// counts read when it runs; Jobs and Runners are what the commit changed in them,
	// which each pool-status lists (see poolStatus).
	Pools   []string        `json:"pools,omitempty"`
	Jobs    []changedJob    `json:"jobs,omitempty"`
	Runners []changedRunner `json:"runners,omitempty"`
}

// Frame is one encoded message (Encode's output) and its room.
type Frame struct {
	Room string          `json:"room,omitempty"`
	Data json.RawMessage `json:"data"`
}

// changedJob and changedRunner are the jobs and runners a commit wrote, as far as a
// pool-status tells of them.
type changedJob struct {
	Pool string `json:"pool,omitempty"`
	poolJob
}

type changedRunner struct {
	Pool string `json:"pool,omitempty"`
	poolRunner
}

// Empty reports whether the announcement would tell nobody anything (a heartbeat that
// changed nothing).
func (a Announcement) Empty() bool { return len(a.Frames) == 0 && len(a.Pools) == 0 }

// Announce returns what commit c announces: Messages(c) encoded, and the pools and
// entities behind its pool-status messages. A message that cannot be encoded even as its
// brief is left out and reported.
func Announce(c *jobs.Commit) (Announcement, error) {
	a := Announcement{At: c.At, Pools: c.Pools}
	if c.Delivery != nil {
		a.DeliveryID = c.Delivery.DeliveryID
	}
	frames, err := encodeAll(Messages(c))
	a.Frames = frames
	if len(a.Pools) == 0 {
		return a, err
	}
	change := c.Plan.Change
	for _, j := range change.Jobs {
		a.Jobs = append(a.Jobs, changedJob{Pool: j.Pool,
			poolJob: poolJob{ID: j.ID, Status: j.Status, Allocation: j.Allocation, ReservedRunner: j.ReservedRunner}})
	}
	for _, r := range change.Runners {
		a.Runners = append(a.Runners, changedRunner{Pool: r.Pool, poolRunner: poolRunner{Name: r.Name, State: r.State, JobID: r.JobID}})
	}
	for _, r := range change.DeleteRunners {
		a.Runners = append(a.Runners, changedRunner{Pool: r.Pool, poolRunner: poolRunner{Name: r.Name, State: runnerRemoved}})
	}
	return a, err
}

func encodeAll(msgs []Message) ([]Frame, error) {
	var errs []error
	frames := make([]Frame, 0, len(msgs))
	for _, m := range msgs {
		b, err := Encode(m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		frames = append(frames, Frame{Room: m.Room, Data: b})
	}
	return frames, errors.Join(errs...)
}

// Outbox takes announcements to the fan-out: an SQS queue on AWS, a bounded channel
// locally (Coalescer). Publish must return quickly and never wait for the fan-out.
type Outbox interface {
	Publish(ctx context.Context, a Announcement) error
}

// publishTimeout bounds handing one announcement to the Outbox: live updates must never
// hold up the change behind them (in Lambda, the batch and its visibility timeout).
const publishTimeout = 2 * time.Second

// Announcer is the commit pipeline's live-update subscriber: it hands each commit's
// Announcement to the Outbox and does nothing else, so a commit costs one enqueue
// (one SQS SendMessage on AWS), however many dashboards are connected.
type Announcer struct {
	Outbox Outbox
	// Idle, when set, reports that nobody is connected: the commit is then not even
	// encoded. The local stack knows its sockets; on AWS that would take a read.
	Idle func() bool
	Log  *slog.Logger
}

var _ jobs.Subscriber = (*Announcer)(nil)

func (a *Announcer) log() *slog.Logger {
	if a.Log == nil {
		return slog.Default()
	}
	return a.Log
}

// Committed implements jobs.Subscriber. The change is done whatever happens here: a
// failure is logged, and a dashboard that missed an update catches up through the API.
func (a *Announcer) Committed(ctx context.Context, c *jobs.Commit) {
	if a.Idle != nil && a.Idle() {
		return
	}
	ann, err := Announce(c)
	if err == nil && !ann.Empty() {
		err = a.publish(ctx, ann)
	}
	if err != nil && !errors.Is(err, ErrDropped) { // the Coalescer counts and logs drops
		attrs := []any{"operation", c.Operation, "error", err}
		if c.Delivery != nil {
			attrs = append(attrs, "delivery_id", c.Delivery.DeliveryID)
		}
		a.log().WarnContext(ctx, "live update failed", attrs...)
	}
}

func (a *Announcer) publish(ctx context.Context, ann Announcement) error {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if err := a.Outbox.Publish(ctx, ann); err != nil {
		return fmt.Errorf("publishing the live update: %w", err)
	}
	return nil
}

// AnnouncePoolChanges returns a fleet.Deps.PoolChanged hook: a pool created, replaced or
// deleted through the API is announced as a pool-status message with the pool's counts
// when the fan-out runs (no delivery stands behind it), so that pages showing the pool's
// settings read them again. Like Committed, it logs failures.
func (a *Announcer) AnnouncePoolChanges() func(ctx context.Context, pool string) {
	return func(ctx context.Context, pool string) {
		if err := a.publish(ctx, Announcement{At: time.Now().UTC(), Pools: []string{pool}}); err != nil {
			a.log().WarnContext(ctx, "live update of a pool change failed", "pool", pool, "error", err)
		}
	}
}
