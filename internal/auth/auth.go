// Package auth checks the bearer tokens of the management API and the WebSocket API.
//
// Tokens come from RUNNERHUB_API_TOKENS (comma-separated, so a new token can be added
// before the old one is removed). A presented token is hashed and compared with every
// configured token's hash in constant time, so neither its content nor its length shows
// in the response time.
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

// Tokens is a set of accepted API tokens.
type Tokens struct {
	digests [][sha256.Size]byte
}

var _ httpapi.Authenticator = (*Tokens)(nil)

// Parse reads the RUNNERHUB_API_TOKENS format: tokens separated by commas.
func Parse(list string) (*Tokens, error) {
	t := &Tokens{}
	for i, tok := range strings.Split(list, ",") {
		tok = strings.TrimSpace(tok)
		if tok == "" {
			continue
		}
		if len(tok) < MinTokenLength {
			return nil, fmt.Errorf("RUNNERHUB_API_TOKENS: token %d is shorter than %d characters", i+1, MinTokenLength)
		}
		t.digests = append(t.digests, sha256.Sum256([]byte(tok)))
	}
	return t, nil
}

// Generate returns a new random token, for a local stack started without one.
func Generate() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return "rh_" + hex.EncodeToString(b)
}

// Empty reports whether no token is configured (then every request is refused).
func (t *Tokens) Empty() bool { return len(t.digests) == 0 }

// Valid reports whether token is one of the configured tokens.
func (t *Tokens) Valid(token string) bool {
	d := sha256.Sum256([]byte(token))
	ok := 0
	for i := range t.digests {
		ok |= subtle.ConstantTimeCompare(d[:], t.digests[i][:])
	}
	return ok == 1 && token != ""
}

// FromRequest returns the bearer token of r, or "".
func FromRequest(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// Require answers 401 with no data unless the request carries a valid bearer token.
func (t *Tokens) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !t.Valid(FromRequest(r)) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="runnerhub"`)
			httpjson.Error(w, http.StatusUnauthorized, "unauthorized", "a valid API token is required: Authorization: Bearer <token>")
			return
		}
		next.ServeHTTP(w, r)
	})
}
