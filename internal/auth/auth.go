// Package auth checks the bearer tokens of the management API and the WebSocket API.
//
// Tokens have a role. Admin tokens come from RUNNERHUB_API_TOKENS, read-only tokens from
// RUNNERHUB_API_READ_TOKENS (both comma-separated, so a new token can be added before
// the old one is removed). A read token may call every GET (and mint a WebSocket
// ticket, which then carries the read role); every other request with it is a 403. A
// presented token is hashed and compared with every configured token's hash in
// constant time, so neither its content nor its length shows in the response time.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/runnerhub/webhooks/internal/httpapi"
	"github.com/runnerhub/webhooks/internal/httpjson"
)

// MinTokenLength keeps guessable tokens out.
const MinTokenLength = 16

// Role is what a token may do. The zero Role is no access at all.
type Role uint8

// Roles, weakest first.
const (
	RoleNone Role = iota
	// RoleRead may read everything and change nothing.
	RoleRead
	// RoleAdmin may do everything.
	RoleAdmin
)

// String names the role as the API and the configuration do: "read", "admin".
func (r Role) String() string {
	switch r {
	case RoleRead:
		return "read"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// ParseRole reads a Role's String; anything else is RoleNone.
func ParseRole(s string) Role {
	switch s {
	case "read":
		return RoleRead
	case "admin":
		return RoleAdmin
	}
	return RoleNone
}

// The variables the roles' tokens come from.
const (
	AdminVariable = "RUNNERHUB_API_TOKENS"
	ReadVariable  = "RUNNERHUB_API_READ_TOKENS"
)

// Tokens is a set of accepted API tokens and their roles.
type Tokens struct {
	digests [][sha256.Size]byte
	roles   []Role
}

var _ httpapi.Authenticator = (*Tokens)(nil)

// Parse reads RUNNERHUB_API_TOKENS alone: admin tokens separated by commas.
func Parse(list string) (*Tokens, error) { return ParseRoles(list, "") }

// ParseRoles reads RUNNERHUB_API_TOKENS (admin) and RUNNERHUB_API_READ_TOKENS (read). A
// token in both lists is refused: which role it should have is a guess.
func ParseRoles(admin, read string) (*Tokens, error) {
	t := &Tokens{}
	for _, l := range []struct {
		variable, list string
		role           Role
	}{{AdminVariable, admin, RoleAdmin}, {ReadVariable, read, RoleRead}} {
		for i, tok := range Split(l.list) {
			if len(tok) < MinTokenLength {
				return nil, fmt.Errorf("%s: token %d is shorter than %d characters", l.variable, i+1, MinTokenLength)
			}
			if t.Role(tok) != RoleNone {
				return nil, fmt.Errorf("%s: token %d is also in %s: give each token one role", l.variable, i+1, AdminVariable)
			}
			t.digests = append(t.digests, sha256.Sum256([]byte(tok)))
			t.roles = append(t.roles, l.role)
		}
	}
	return t, nil
}

// Split returns the tokens of a comma-separated list, blanks left out.
func Split(list string) []string {
	var out []string
	for _, tok := range strings.Split(list, ",") {
		if tok = strings.TrimSpace(tok); tok != "" {
			out = append(out, tok)
		}
	}
	return out
}

// Generate returns a new random token, for a local stack started without one.
func Generate() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return "rh_" + hex.EncodeToString(b)
}

// Empty reports whether no token is configured (then every request is refused).
func (t *Tokens) Empty() bool { return len(t.digests) == 0 }

// Role returns the role of token, RoleNone when it is not configured. Every configured
// digest is compared, so the time taken does not say which one matched.
func (t *Tokens) Role(token string) Role {
	if token == "" {
		return RoleNone
	}
	d := sha256.Sum256([]byte(token))
	role := RoleNone
	for i := range t.digests {
		match := subtle.ConstantTimeCompare(d[:], t.digests[i][:])
		role = Role(subtle.ConstantTimeSelect(match, int(t.roles[i]), int(role)))
	}
	return role
}

// FromRequest returns the bearer token of r, or "".
func FromRequest(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// Require answers 401 with no data unless the request carries a valid bearer token, and
// 403 when write is set and the token may only read.
func (t *Tokens) Require(next http.Handler, write bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		role := t.Role(FromRequest(r))
		switch {
		case role == RoleNone:
			w.Header().Set("WWW-Authenticate", `Bearer realm="runnerhub"`)
			httpjson.Error(w, http.StatusUnauthorized, "unauthorized", "a valid API token is required: Authorization: Bearer <token>")
			return
		case write && role < RoleAdmin:
			httpjson.Error(w, http.StatusForbidden, "forbidden",
				fmt.Sprintf("this token may only read (%s); %s %s changes something and needs a token from %s", ReadVariable, r.Method, r.URL.Path, AdminVariable))
			return
		}
		next.ServeHTTP(w, r)
	})
}
