package live

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// CoalesceInterval is the least time between two fan-out runs, and so between two posts
// to one connection: at 400 deliveries/s a dashboard gets four posts a second, each
// carrying the messages of about a hundred commits, instead of a post per message.
const CoalesceInterval = 250 * time.Millisecond

// CoalescerBuffer is how many announcements may wait for the local fan-out: at 400
// commits/s, ten seconds of them.
const CoalescerBuffer = 4096

// ErrDropped: the fan-out is that far behind, and the announcement was not kept.
var ErrDropped = errors.New("live fan-out behind: announcement dropped")

// Coalescer is the local stack's Outbox and fan-out: Publish puts an announcement on a
// bounded channel and never waits (a full channel drops it and counts the drop), and Run,
// on a goroutine of its own, hands what has gathered to the Hub's Deliver at most once
// per Interval. The first announcement after a quiet Interval goes out at once.
type Coalescer struct {
	Hub      *Hub
	Interval time.Duration

	in      chan Announcement
	dropped atomic.Int64
}

var _ Outbox = (*Coalescer)(nil)

// NewCoalescer returns a coalescer for h holding up to buffer announcements.
func NewCoalescer(h *Hub, interval time.Duration, buffer int) *Coalescer {
	return &Coalescer{Hub: h, Interval: interval, in: make(chan Announcement, buffer)}
}

// Publish implements Outbox: it returns ErrDropped when the buffer is full.
func (c *Coalescer) Publish(_ context.Context, a Announcement) error {
	select {
	case c.in <- a:
		return nil
	default:
		c.dropped.Add(1)
		return ErrDropped
	}
}

// Dropped is how many announcements Publish has dropped.
func (c *Coalescer) Dropped() int64 { return c.dropped.Load() }

// Run delivers what Publish gathers until ctx ends, then delivers what it still holds.
func (c *Coalescer) Run(ctx context.Context) {
	var (
		batch    []Announcement
		due      <-chan time.Time
		last     time.Time // the last run's start
		reported int64     // drops logged so far
	)
	// ctx only says when to stop: a run under way finishes its posts.
	runCtx := context.WithoutCancel(ctx)
	deliver := func() {
		last = time.Now()
		if dropped := c.dropped.Load(); dropped > reported {
			// Logged once per run, not once per drop: drops come in floods.
			c.Hub.log().WarnContext(runCtx, "live updates dropped: the fan-out is behind", "dropped", dropped-reported, "dropped_total", dropped)
			reported = dropped
		}
		if err := c.Hub.Deliver(runCtx, batch); err != nil {
			c.Hub.log().WarnContext(runCtx, "live update failed", "announcements", len(batch), "error", err)
		}
		batch, due = nil, nil
	}
	for {
		select {
		case a := <-c.in:
			batch = append(batch, a)
			if due == nil {
				due = time.After(time.Until(last.Add(c.Interval)))
			}
		case <-due:
			deliver()
		case <-ctx.Done():
		drain:
			for {
				select {
				case a := <-c.in:
					batch = append(batch, a)
				default:
					break drain
				}
			}
			if len(batch) > 0 {
				deliver()
			}
			return
		}
	}
}
