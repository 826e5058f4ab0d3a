// Package live is RunnerHub's live-update domain: what dashboards receive over
// WebSocket after each committed state change, who may connect, and what each connection
// has asked for.
//
// One Hub implements the protocol and the fan-out on two small ports, so the AWS and the
// local hosts behave the same by construction:
//
//   - Registry keeps the connections and their subscriptions, with an expiry (DynamoDB on
//     AWS, memory locally), indexed by room. API Gateway closes a WebSocket after 2 hours
//     and does not guarantee $disconnect, so a record must stop counting on its own:
//     every read ignores expired records, and the DynamoDB items also carry a TTL.
//   - Sender delivers one encoded message to one connection (apigatewaymanagementapi's
//     PostToConnection on AWS, the in-process coder/websocket hub locally) and reports
//     ErrGone for a connection that no longer exists, which the Hub then forgets.
//
// # Protocol
//
// A client connects with its API token (?token=) or, from a browser, which cannot set
// headers on a WebSocket, with a ticket (?ticket=) from POST /api/ws/ticket; anything else
// is refused with 401. A new connection receives nothing until it subscribes:
//
//	{"action": "subscribe", "repositories": ["octo-org/octo-repo"]}   // those rooms
//	{"action": "subscribe"}                                           // everything
//	{"action": "unsubscribe", "repositories": ["octo-org/octo-repo"]}
//	{"action": "unsubscribe"}                                         // nothing any more
//	{"action": "ping"}                                                // answered with pong
//
// Fan-out runs behind the post-commit event, never on the committing goroutine: the
// Announcer subscriber only hands each commit's Announcement to an Outbox (an SQS queue
// feeding the FanoutFunction on AWS, a Coalescer's bounded channel locally), and the
// Hub's Deliver posts what has gathered, at most one post per connection per run.
//
// Every server message is one envelope, {"event", "room", "data", "at"}; a post that
// carries several is a JSON array of envelopes. Messages about
// a repository are in its room, "repo:<full_name>", and reach the connections subscribed
// to that repository or to everything; messages without a room (pool-status, an
// organisation's ping) reach every connection subscribed to anything. Each message
// reaches a connection once: the description's socket.io example emits to everyone and
// to the room, which would deliver it twice to a room member. A malformed request is
// answered with an "error" event and the connection stays open.
package live

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/runnerhub/webhooks/internal/auth"
	"github.com/runnerhub/webhooks/internal/jobs"
)

// Event names of broadcast messages (the description's) and of replies.
const (
	EventWorkflowJob  = "workflow-job"
	EventPush         = "push-event"
	EventPullRequest  = "pull-request"
	EventPing         = "ping"
	EventWebhook      = "webhook-event"
	EventPoolStatus   = "pool-status"
	EventSubscribed   = "subscribed"
	EventUnsubscribed = "unsubscribed"
	EventPong         = "pong"
	EventError        = "error"
)

// ConnectionTTL is how long a connection record counts: API Gateway closes every
// WebSocket connection after 2 hours, and the local hub does the same.
const ConnectionTTL = 2 * time.Hour

// MaxRepositories bounds one connection's subscriptions, and so the size of its record.
const MaxRepositories = 100

// RoomPrefix starts the room of a repository: "repo:<full_name>".
const RoomPrefix = "repo:"

// Room returns the room of a repository's messages, "" for none.
func Room(repository string) string {
	if repository == "" {
		return ""
	}
	return RoomPrefix + repository
}

// Subscription is what a connection has asked for.
type Subscription struct {
	// All: every repository (the subscribe request without a list).
	All bool `json:"all"`
	// Repositories are lower-cased full names (GitHub compares them case-insensitively),
	// sorted.
	Repositories []string `json:"repositories"`
}

// Active reports whether the connection asked for anything at all.
func (s Subscription) Active() bool { return s.All || len(s.Repositories) > 0 }

// Wants reports whether a message in room reaches this subscription.
func (s Subscription) Wants(room string) bool {
	repo, ok := strings.CutPrefix(room, RoomPrefix)
	if !ok {
		return s.Active() // not about one repository
	}
	_, found := slices.BinarySearch(s.Repositories, strings.ToLower(repo))
	return s.All || found
}

// SubscriptionChange is one subscribe or unsubscribe request, applied atomically by a
// Registry.
type SubscriptionChange struct {
	Subscribe bool
	// Repositories are normalised (lower case, sorted, unique); nil means everything.
	Repositories []string
}

// Apply returns s changed by c: what every Registry stores.
func (c SubscriptionChange) Apply(s Subscription) Subscription {
	switch {
	case c.Subscribe && c.Repositories == nil:
		s.All = true
	case c.Subscribe:
		s.Repositories = merge(s.Repositories, c.Repositories)
	case c.Repositories == nil:
		s = Subscription{}
	default:
		s.Repositories = slices.DeleteFunc(slices.Clone(s.Repositories), func(r string) bool {
			_, found := slices.BinarySearch(c.Repositories, r)
			return found
		})
	}
	if len(s.Repositories) == 0 {
		s.Repositories = nil
	}
	return s
}

// Fits reports whether c may be applied to s without exceeding MaxRepositories. It
// counts a repository that s already has twice, so that DynamoDB can check it in the
// update's condition (size(repos) <= MaxRepositories - len(c.Repositories)): every
// Registry refuses exactly the same requests.
func (c SubscriptionChange) Fits(s Subscription) bool {
	return !c.Subscribe || len(s.Repositories)+len(c.Repositories) <= MaxRepositories
}

func merge(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// Connection is one open WebSocket connection.
type Connection struct {
	ID          string
	ConnectedAt time.Time
	// ExpiresAt is when the record stops counting (ConnectionTTL after ConnectedAt).
	ExpiresAt time.Time
	// Role is its credentials' (a ticket has its token's role). Every message a client
	// can send only reads today; the role is kept so that one that writes can check it.
	Role auth.Role
	Subscription
}

// Expired reports whether the record no longer counts at now.
func (c Connection) Expired(now time.Time) bool { return !now.Before(c.ExpiresAt) }

// Errors of the ports.
var (
	// ErrGone: the connection no longer exists (API Gateway's GoneException, 410).
	ErrGone = errors.New("connection gone")
	// ErrUnknownConnection: no unexpired record of the connection.
	ErrUnknownConnection = errors.New("unknown or expired connection")
	// ErrTooManyRepositories: a subscription would exceed MaxRepositories.
	ErrTooManyRepositories = errors.New("too many repositories")
)

// Registry keeps connection records. Every read ignores expired records.
type Registry interface {
	// Put records a connection, replacing any record with its id.
	Put(ctx context.Context, c Connection) error
	// Update applies a change to an unexpired connection's subscription atomically (two
	// requests of one connection may be handled at the same time) and returns the
	// result: ErrUnknownConnection or ErrTooManyRepositories when it cannot.
	Update(ctx context.Context, id string, change SubscriptionChange, now time.Time) (Connection, error)
	// Delete forgets a connection; unknown ids are not an error.
	Delete(ctx context.Context, id string) error
	// List returns the connections unexpired at now, without scanning.
	List(ctx context.Context, now time.Time) ([]Connection, error)
	// Audience returns, each once, the connections unexpired at now that may want a
	// message in at least one of rooms: for a repository's room, reading only the
	// subscribers of that room and of everything (a repository's message never lists
	// every connection); for "" (messages without a room), every connection, as List.
	// Which of them want the message is the Hub's rule (Subscription.Wants), not the
	// Registry's. A returned connection's Subscription may be partial, but tells which of
	// rooms it wants.
	Audience(ctx context.Context, rooms []string, now time.Time) ([]Connection, error)
}

// Sender delivers one encoded message to one connection.
type Sender interface {
	// Send returns ErrGone (possibly wrapped) when the connection no longer exists.
	Send(ctx context.Context, id string, data []byte) error
}

// Broadcaster is the live-update port both hosts implement (with the one Hub).
type Broadcaster interface {
	Connect(ctx context.Context, c Connection) error
	Subscribe(ctx context.Context, id string, repositories []string) (Subscription, error)
	Unsubscribe(ctx context.Context, id string, repositories []string) (Subscription, error)
	// Broadcast sends each message to every connection that wants it. A connection that
	// is gone is forgotten, which is not an error.
	Broadcast(ctx context.Context, msgs ...Message) error
	Disconnect(ctx context.Context, id string) error
}

// PoolReader is the part of jobs.Store that pool-status messages read their counts from.
type PoolReader interface {
	PoolCounts(ctx context.Context, pools []string) ([]jobs.PoolCounts, error)
}
