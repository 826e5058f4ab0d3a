package live

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
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

// Hub is the one Broadcaster: the protocol, the subscription rules and the fan-out
// (Deliver), on a Registry and a Sender. The AWS and local hosts differ only in those,
// and in what feeds Deliver (see Announcer): the FanoutFunction's SQS batches on AWS, a
// Coalescer's goroutine locally.
type Hub struct {
	Registry Registry
	Sender   Sender
	Access   Access
	// Pools, when set, gives pool-status messages their counts, one read per run;
	// without it the fan-out sends no pool-status messages.
	Pools PoolReader
	Log   *slog.Logger
	Now   func() time.Time
}

var _ Broadcaster = (*Hub)(nil)

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

// Broadcast sends each message to every unexpired connection that wants it, in order,
// in one post per connection (see Deliver).
func (h *Hub) Broadcast(ctx context.Context, msgs ...Message) error {
	frames, err := encodeAll(msgs)
	if len(frames) == 0 {
		return err
	}
	return errors.Join(err, h.Deliver(ctx, []Announcement{{At: h.now(), Frames: frames}}))
}

// Deliver is the fan-out: it sends what the announcements announce (each one's frames,
// then a pool-status for each pool it names, the counts of every pool read once per run)
// to the connections that want it, in the announcements' order (by commit time),
// coalesced into one post per connection: a
// connection that wants one message receives that envelope, one that wants several
// receives a JSON array of them (several arrays when they exceed MaxMessageBytes
// together). The connections come from the Registry's Audience of the rooms involved,
// so a message in a repository's room reads only that room's and everything's
// subscribers, and of those the Hub keeps the ones that want a message in one of the
// rooms (for a message without a room: those subscribed to anything); with nobody to
// tell, nothing more is read.
//
// It returns an error only when it sent nothing because the audience could not be read:
// the announcements may then be delivered again. Later failures (a pool's counts, a
// post) are logged, since sending again would repeat what others already received.
func (h *Hub) Deliver(ctx context.Context, anns []Announcement) error {
	anns = slices.Clone(anns)
	slices.SortStableFunc(anns, func(a, b Announcement) int { return a.At.Compare(b.At) })
	rooms, pools := map[string]bool{}, map[string]bool{}
	for _, a := range anns {
		for _, f := range a.Frames {
			rooms[f.Room] = true
		}
		if len(a.Pools) > 0 && h.Pools != nil {
			rooms[""] = true // pool-status has no room
			for _, pool := range a.Pools {
				pools[pool] = true
			}
		}
	}
	if len(rooms) == 0 {
		return nil
	}
	audience := slices.Sorted(maps.Keys(rooms))
	conns, err := h.Registry.Audience(ctx, audience, h.now())
	if err != nil {
		return fmt.Errorf("finding the connections to tell: %w", err)
	}
	// The Registry lists every connection for a message without a room; only those
	// subscribed to something want it (Subscription.Wants), the others are nobody to tell.
	conns = slices.DeleteFunc(conns, func(c Connection) bool {
		return !slices.ContainsFunc(audience, c.Wants)
	})
	if len(conns) == 0 {
		return nil
	}
	var frames []Frame
	var errs []error
	var counts map[string]jobs.PoolCounts
	if len(pools) > 0 {
		var err error
		counts, err = h.readPools(ctx, slices.Sorted(maps.Keys(pools)))
		errs = append(errs, err)
	}
	for _, a := range anns {
		frames = append(frames, a.Frames...)
		statuses, err := poolStatuses(a, counts)
		frames = append(frames, statuses...)
		errs = append(errs, err)
	}
	errs = append(errs, h.fanOut(ctx, conns, frames))
	if err := errors.Join(errs...); err != nil {
		h.log().WarnContext(ctx, "live update failed", "announcements", len(anns), "error", err)
	}
	return nil
}

// fanOut sends every connection the frames it wants, in order, coalesced into as few
// posts as MaxMessageBytes allows, with up to fanOutWorkers connections served at a time.
func (h *Hub) fanOut(ctx context.Context, conns []Connection, frames []Frame) error {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		failed int
		sem    = make(chan struct{}, fanOutWorkers)
	)
	// Connections that want the same frames (every dashboard subscribed to everything)
	// share their posts: packed once, not once per connection.
	packed := map[string][][]byte{}
	for _, c := range conns {
		var mine [][]byte
		var wanted []byte // which frames, as a key
		for i, f := range frames {
			if c.Wants(f.Room) {
				mine = append(mine, f.Data)
				wanted = binary.AppendUvarint(wanted, uint64(i))
			}
		}
		if len(mine) == 0 {
			continue
		}
		posts, ok := packed[string(wanted)]
		if !ok {
			posts = coalesce(mine)
			packed[string(wanted)] = posts
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := h.deliver(ctx, c, posts); err != nil {
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

// coalesce packs encoded messages into posts: a message alone as it is, several as a
// JSON array of them, each post at most MaxMessageBytes (a message that fills a post by
// itself goes alone).
func coalesce(msgs [][]byte) [][]byte {
	var posts [][]byte
	var group [][]byte
	size := 1 // "["
	flush := func() {
		switch len(group) {
		case 0:
		case 1:
			posts = append(posts, group[0])
		default:
			posts = append(posts, slices.Concat([]byte("["), bytes.Join(group, []byte(",")), []byte("]")))
		}
		group, size = nil, 1
	}
	for _, m := range msgs {
		if len(group) > 0 && size+len(m)+1 > MaxMessageBytes { // the "," or the "]"
			flush()
		}
		group = append(group, m)
		size += len(m) + 1
	}
	flush()
	return posts
}

// deliver sends one connection its posts in order. A connection that is gone is
// forgotten (unless it may still be connecting), which is not an error.
func (h *Hub) deliver(ctx context.Context, c Connection, posts [][]byte) error {
	for _, b := range posts {
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
