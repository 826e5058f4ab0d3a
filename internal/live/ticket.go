package live

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/url"
	"strings"
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
// RUNNERHUB_API_TOKENS.
type Tickets struct {
	keys map[[8]byte][]byte // key id → key
}

// NewTickets derives one ticket key per token of a RUNNERHUB_API_TOKENS list (comma
// separated, as auth.Parse reads it; auth checks the tokens themselves).
func NewTickets(apiTokens string) *Tickets {
	t := &Tickets{keys: map[[8]byte][]byte{}}
	for _, tok := range strings.Split(apiTokens, ",") {
		if tok = strings.TrimSpace(tok); tok != "" {
			id, key := ticketKey(tok)
			t.keys[id] = key
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
	id, key := ticketKey(token)
	if _, ok := t.keys[id]; !ok {
		return "", time.Time{}, ErrUnknownToken
	}
	expires := now.Add(TicketTTL).Truncate(time.Second)
	b := make([]byte, ticketBody, ticketLen)
	b[0] = ticketVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(expires.Unix()))
	copy(b[9:17], id[:])
	_, _ = rand.Read(b[17:ticketBody]) // crypto/rand.Read never fails on supported platforms
	b = sign(key, b)
	return base64.RawURLEncoding.EncodeToString(b), expires, nil
}

// Valid reports whether ticket was issued for a configured token and has not expired.
func (t *Tickets) Valid(ticket string, now time.Time) bool {
	b, err := base64.RawURLEncoding.DecodeString(ticket)
	if err != nil || len(b) != ticketLen || b[0] != ticketVersion {
		return false
	}
	key, ok := t.keys[[8]byte(b[9:17])]
	if !ok || !hmac.Equal(sign(key, b[:ticketBody:ticketBody])[ticketBody:], b[ticketBody:]) {
		return false
	}
	expires := time.Unix(int64(binary.BigEndian.Uint64(b[1:9])), 0)
	return now.Before(expires) && expires.Sub(now) <= TicketTTL
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

// Allowed reports whether a connection request's query carries valid credentials.
func (a Access) Allowed(query url.Values, now time.Time) bool {
	if tok := query.Get("token"); tok != "" {
		return a.Tokens != nil && a.Tokens.Valid(tok)
	}
	if ticket := query.Get("ticket"); ticket != "" {
		return a.Tickets != nil && a.Tickets.Valid(ticket, now)
	}
	return false
}
