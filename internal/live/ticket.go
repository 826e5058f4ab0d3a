package live

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/url"
	"time"

	"github.com/runnerhub/webhooks/internal/auth"
)

// TicketTTL is how long a WebSocket ticket is accepted. Tickets travel in URLs, which
// proxies and browsers may log, so they are short-lived; within that minute a ticket can
// be used more than once, the price of needing no storage.
const TicketTTL = 60 * time.Second

// ticketVersion is the first byte of every ticket, so the format can change.
const ticketVersion = 1

// Ticket layout (before base64url): version (1) | expiry, Unix seconds (8) | key id (8)
// | nonce (12) | HMAC-SHA256 of everything before it (32).
const (
	ticketBody = 1 + 8 + 8 + 12
	ticketLen  = ticketBody + sha256.Size
)

// ErrUnknownToken: a ticket was asked for with a token that is not configured.
var ErrUnknownToken = errors.New("not a configured API token")

// Tickets issues and checks WebSocket tickets. A ticket is signed with a key derived
// from the API token that asked for it, so tickets need no storage, survive a restart or
// another Lambda instance, and stop working when their token is removed from
// RUNNERHUB_API_TOKENS or RUNNERHUB_API_READ_TOKENS. A ticket has its token's role, as
// configured when it is used: a read token's tickets open read connections.
type Tickets struct {
	keys map[[8]byte]roleKey // key id → key
}

type roleKey struct {
	key  []byte
	role auth.Role
}

// NewTickets derives one ticket key per token of the admin (RUNNERHUB_API_TOKENS) and
// read (RUNNERHUB_API_READ_TOKENS) lists, comma separated as auth.ParseRoles reads them
// (auth checks the tokens themselves).
func NewTickets(admin, read string) *Tickets {
	t := &Tickets{keys: map[[8]byte]roleKey{}}
	for _, l := range []struct {
		list string
		role auth.Role
	}{{read, auth.RoleRead}, {admin, auth.RoleAdmin}} {
		for _, tok := range auth.Split(l.list) {
			id, key := ticketKey(tok)
			t.keys[id] = roleKey{key: key, role: l.role}
		}
	}
	return t
}

// ticketKey derives the key of a token's tickets (never the token itself, so a ticket
// key is useless as an API token) and the key's public id.
func ticketKey(token string) (id [8]byte, key []byte) {
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte("runnerhub websocket ticket v1"))
	key = mac.Sum(nil)
	sum := sha256.Sum256(key)
	copy(id[:], sum[:])
	return id, key
}

// Issue returns a ticket for token, valid until the returned time.
func (t *Tickets) Issue(token string, now time.Time) (string, time.Time, error) {
	id, _ := ticketKey(token)
	k, ok := t.keys[id]
	if !ok {
		return "", time.Time{}, ErrUnknownToken
	}
	expires := now.Add(TicketTTL).Truncate(time.Second)
	b := make([]byte, ticketBody, ticketLen)
	b[0] = ticketVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(expires.Unix()))
	copy(b[9:17], id[:])
	_, _ = rand.Read(b[17:ticketBody]) // crypto/rand.Read never fails on supported platforms
	b = sign(k.key, b)
	return base64.RawURLEncoding.EncodeToString(b), expires, nil
}

// Valid reports whether ticket was issued for a configured token and has not expired.
func (t *Tickets) Valid(ticket string, now time.Time) bool {
	return t.Role(ticket, now) != auth.RoleNone
}

// Role returns the role of the token ticket was issued for, RoleNone when the ticket is
// not valid (forged, expired, or its token no longer configured).
func (t *Tickets) Role(ticket string, now time.Time) auth.Role {
	b, err := base64.RawURLEncoding.DecodeString(ticket)
	if err != nil || len(b) != ticketLen || b[0] != ticketVersion {
		return auth.RoleNone
	}
	k, ok := t.keys[[8]byte(b[9:17])]
	if !ok || !hmac.Equal(sign(k.key, b[:ticketBody:ticketBody])[ticketBody:], b[ticketBody:]) {
		return auth.RoleNone
	}
	expires := time.Unix(int64(binary.BigEndian.Uint64(b[1:9])), 0)
	if !now.Before(expires) || expires.Sub(now) > TicketTTL {
		return auth.RoleNone
	}
	return k.role
}

func sign(key, body []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	return mac.Sum(body)
}

// Access decides who may open a WebSocket: an API token in the token query parameter
// or a ticket in the ticket parameter.
type Access struct {
	Tokens  *auth.Tokens
	Tickets *Tickets
}

// Role returns the role of a connection request's credentials: its token's, or that of
// the token its ticket was issued for; RoleNone when they are not valid.
func (a Access) Role(query url.Values, now time.Time) auth.Role {
	switch tok, ticket := query.Get("token"), query.Get("ticket"); {
	case tok != "" && a.Tokens != nil:
		return a.Tokens.Role(tok)
	case tok == "" && ticket != "" && a.Tickets != nil:
		return a.Tickets.Role(ticket, now)
	}
	return auth.RoleNone
}
