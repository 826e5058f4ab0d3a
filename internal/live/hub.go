package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/runnerhub/webhooks/internal/auth"
	"github.com/runnerhub/webhooks/internal/jobs"
)

// fanOutWorkers bounds the sends in flight during one broadcast: each is an HTTPS
// request on AWS.
const fanOutWorkers = 16

// connectGrace: API Gateway answers GoneException to a PostToConnection made before the
// $connect handler has returned, so a connection that is that young is not forgotten for
// it; a connection that really died that soon is forgotten by a later broadcast or by
// its expiry.
const connectGrace = 10 * time.Second

// Hub is the one Broadcaster, and the commit pipeline's live-update subscriber: the protocol, the subscription rules and
// the fan-out, on a Registry and a Sender. The AWS and local hosts differ only in those.
type Hub struct {
	Registry Registry
	Sender   Sender
	Access   Access
	// Pools, when set, gives pool-status messages their counts; without it there are no
	// pool-status messages.
	Pools PoolReader
	Log   *slog.Logger
	Now   func() time.Time
}

var (
	_ Broadcaster     = (*Hub)(nil)
	_ jobs.Subscriber = (*Hub)(nil)
)

func (h *Hub) now() time.Time {
	if h.Now == nil {
		return time.Now().UTC()
	}
	return h.Now().UTC()
}

func (h *Hub) log() *slog.Logger {
	if h.Log == nil {
		return slog.Default()
	}
	return h.Log
}

// Role returns the role a connection request's query gives it, auth.RoleNone (refuse
// it) when its credentials are not valid.
func (h *Hub) Role(query url.Values) auth.Role { return h.Access.Role(query, h.now()) }

// Connect records a new connection; a zero ConnectedAt or ExpiresAt is filled in.
func (h *Hub) Connect(ctx context.Context, c Connection) error {
	if c.ConnectedAt.IsZero() {
		c.ConnectedAt = h.now()
	}
	if c.ExpiresAt.IsZero() {
		c.ExpiresAt = c.ConnectedAt.Add(ConnectionTTL)
	}
	return h.Registry.Put(ctx, c)
}

// Disconnect forgets a connection.
func (h *Hub) Disconnect(ctx context.Context, id string) error { return h.Registry.Delete(ctx, id) }

// Subscribe adds repositories (nil: every repository) to a connection's subscription.
func (h *Hub) Subscribe(ctx context.Context, id string, repositories []string) (Subscription, error) {
	return h.change(ctx, id, true, repositories)
}

// Unsubscribe removes repositories (nil: everything) from a connection's subscription.
// Subscribed to everything, a connection stays so until it unsubscribes without a list.
func (h *Hub) Unsubscribe(ctx context.Context, id string, repositories []string) (Subscription, error) {
	return h.change(ctx, id, false, repositories)
}

func (h *Hub) change(ctx context.Context, id string, subscribe bool, repositories []string) (Subscription, error) {
	repos, err := normalise(repositories)
	if err != nil {
		return Subscription{}, err
	}
	c, err := h.Registry.Update(ctx, id, SubscriptionChange{Subscribe: subscribe, Repositories: repos}, h.now())
	return c.Subscription, err
}

// HandleMessage answers one client message on the connection it came from: subscribed,
// unsubscribed, pong or error. A malformed message is answered, never a reason to close
// the connection. The error is the reply's delivery only.
func (h *Hub) HandleMessage(ctx context.Context, id string, data []byte) error {
	b, err := Encode(h.answer(ctx, id, data))
	if err != nil {
		return err
	}
	return h.deliver(ctx, Connection{ID: id}, [][]byte{b})
}

func (h *Hub) answer(ctx context.Context, id string, data []byte) Message {
	now := h.now()
	fail := func(code, message string) Message {
		return Message{Event: EventError, At: now, Data: errorData{Code: code, Message: message}}
	}
	req, err := parseRequest(data)
	if err != nil {
		return fail(codeBadMessage, err.Error())
	}
	if req.action == actionPing {
		return Message{Event: EventPong, At: now}
	}
	c, err := h.Registry.Update(ctx, id, SubscriptionChange{Subscribe: req.action == actionSubscribe, Repositories: req.repositories}, now)
	switch {
	case errors.Is(err, ErrUnknownConnection):
		return fail(codeUnknownConnection, "this connection is not registered any more: reconnect")
	case errors.Is(err, ErrTooManyRepositories):
		return fail(codeBadMessage, fmt.Sprintf("a connection may subscribe to at most %d repositories", MaxRepositories))
	case err != nil:
		h.log().ErrorContext(ctx, "updating a WebSocket subscription failed", "connection_id", id, "error", err)
		return fail(codeUnavailable, "the subscription could not be changed; try again")
	}
	event := EventSubscribed
	if req.action == actionUnsubscribe {
		event = EventUnsubscribed
	}
	repos := c.Repositories
	if repos == nil {
		repos = []string{}
	}
	return Message{Event: event, At: now, Data: subscriptionData{ConnectionID: id, Role: c.Role.String(), All: c.All, Repositories: repos}}
}

// Broadcast sends each message to every unexpired connection that wants it, in order.
func (h *Hub) Broadcast(ctx context.Context, msgs ...Message) error {
	conns, err := h.Registry.List(ctx, h.now())
	if err != nil || len(conns) == 0 {
		return err
	}
	return h.fanOut(ctx, conns, msgs)
}

// publishTimeout bounds announcing one commit: live updates must never hold up the
// change behind them (in Lambda, the batch and its visibility timeout).
const publishTimeout = 2 * time.Second

// Committed implements jobs.Subscriber: it announces the commit (Announce) within
// publishTimeout and logs a failure. The change is done whatever happens here, and a
// dashboard that missed an update catches up through the API.
func (h *Hub) Committed(ctx context.Context, c *jobs.Commit) {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if err := h.Announce(ctx, c); err != nil {
		attrs := []any{"operation", c.Operation, "error", err}
		if c.Delivery != nil {
			attrs = append(attrs, "delivery_id", c.Delivery.DeliveryID)
		}
		h.log().WarnContext(ctx, "live update failed", attrs...)
	}
}

// Announce broadcasts what a commit changed: Messages, then a pool-status for every
// pool whose counts it changed. With nobody connected it reads nothing more.
func (h *Hub) Announce(ctx context.Context, c *jobs.Commit) error {
	conns, err := h.Registry.List(ctx, h.now())
	if err != nil || len(conns) == 0 {
		return err
	}
	statuses, statusErr := h.poolStatuses(ctx, c)
	return errors.Join(statusErr, h.fanOut(ctx, conns, append(Messages(c), statuses...)))
}

// AnnouncePoolChanges returns a fleet.Deps.PoolChanged hook: a pool created, replaced or
// deleted through the API is announced as a pool-status message with the pool's counts
// now (no delivery stands behind it), so that pages showing the pool's settings read
// them again. Like Committed, it waits a bounded time and logs failures.
func (h *Hub) AnnouncePoolChanges() func(ctx context.Context, pool string) {
	return func(ctx context.Context, pool string) {
		ctx, cancel := context.WithTimeout(ctx, publishTimeout)
		defer cancel()
		if err := h.publishPoolChange(ctx, pool); err != nil {
			h.log().WarnContext(ctx, "live update of a pool change failed", "pool", pool, "error", err)
		}
	}
}

func (h *Hub) publishPoolChange(ctx context.Context, pool string) error {
	conns, err := h.Registry.List(ctx, h.now())
	if err != nil || len(conns) == 0 {
		return err
	}
	d := poolStatusData{Pool: pool}
	if h.Pools != nil {
		if d, err = h.poolStatus(ctx, pool, &jobs.Plan{}); err != nil {
			return fmt.Errorf("pool-status of %s: %w", pool, err)
		}
	}
	return h.fanOut(ctx, conns, []Message{{Event: EventPoolStatus, At: h.now(), Data: d}})
}

type frame struct {
	room string
	data []byte
}

// fanOut encodes each message once and sends every connection the ones it wants, in
// order, with up to fanOutWorkers connections served at a time.
func (h *Hub) fanOut(ctx context.Context, conns []Connection, msgs []Message) error {
	var errs []error
	frames := make([]frame, 0, len(msgs))
	for _, m := range msgs {
		b, err := Encode(m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		frames = append(frames, frame{room: m.Room, data: b})
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed int
		sem    = make(chan struct{}, fanOutWorkers)
	)
	for _, c := range conns {
		var mine [][]byte
		for _, f := range frames {
			if c.Wants(f.room) {
				mine = append(mine, f.data)
			}
		}
		if len(mine) == 0 {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := h.deliver(ctx, c, mine); err != nil {
				mu.Lock()
				if failed++; failed == 1 {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if failed > 1 {
		errs = append(errs, fmt.Errorf("sending failed on %d connections", failed))
	}
	return errors.Join(errs...)
}

// deliver sends one connection its messages in order. A connection that is gone is
// forgotten (unless it may still be connecting), which is not an error.
func (h *Hub) deliver(ctx context.Context, c Connection, data [][]byte) error {
	for _, b := range data {
		err := h.Sender.Send(ctx, c.ID, b)
		if errors.Is(err, ErrGone) {
			if !c.ConnectedAt.IsZero() && h.now().Sub(c.ConnectedAt) < connectGrace {
				return nil
			}
			if err := h.Registry.Delete(ctx, c.ID); err != nil {
				return fmt.Errorf("forgetting gone connection %s: %w", c.ID, err)
			}
			h.log().DebugContext(ctx, "forgot a gone WebSocket connection", "connection_id", c.ID)
			return nil
		}
		if err != nil {
			return fmt.Errorf("sending to connection %s: %w", c.ID, err)
		}
	}
	return nil
}
