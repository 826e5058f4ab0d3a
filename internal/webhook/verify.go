package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strings"
	"sync"
)

// signaturePrefix starts every X-Hub-Signature-256 value.
const signaturePrefix = "sha256="

// Verifier checks X-Hub-Signature-256 against the current secret and, during a rotation,
// the previous one. It is safe for concurrent use.
type Verifier struct {
	keys []*macPool
}

// macPool reuses HMAC states for one secret: building an HMAC allocates two SHA-256 states
// and pads the key, which would otherwise cost more than hashing a small delivery.
type macPool struct{ pool sync.Pool }

type pooledMAC struct {
	mac hash.Hash
	sum [sha256.Size]byte
}

func newMACPool(secret string) *macPool {
	key := []byte(secret)
	p := &macPool{}
	p.pool.New = func() any { return &pooledMAC{mac: hmac.New(sha256.New, key)} }
	return p
}

// NewVerifier returns a Verifier for the given secrets; empty ones are skipped. A Verifier
// without any secret rejects every signature (see Enabled).
func NewVerifier(secrets ...string) *Verifier {
	v := &Verifier{}
	for _, s := range secrets {
		if s != "" {
			v.keys = append(v.keys, newMACPool(s))
		}
	}
	return v
}

// Enabled reports whether at least one secret is configured.
func (v *Verifier) Enabled() bool { return len(v.keys) > 0 }

// Valid reports whether header is "sha256=<hex HMAC-SHA256 of body>" under one of the
// secrets. The comparison is constant time; the header is decoded before any hashing so
// that a malformed value costs nothing.
func (v *Verifier) Valid(header string, body []byte) bool {
	want, ok := decodeSignature(header)
	if !ok {
		return false
	}
	valid := false
	for _, k := range v.keys {
		// Every secret is tried so the time taken does not tell which one matched.
		if k.matches(body, want[:]) {
			valid = true
		}
	}
	return valid
}

func (p *macPool) matches(body, want []byte) bool {
	m := p.pool.Get().(*pooledMAC)
	m.mac.Reset()
	m.mac.Write(body)
	ok := hmac.Equal(m.mac.Sum(m.sum[:0]), want)
	p.pool.Put(m)
	return ok
}

// decodeSignature returns the MAC an X-Hub-Signature-256 value carries, if it has the
// form "sha256=<64 hex digits>".
func decodeSignature(header string) (mac [sha256.Size]byte, ok bool) {
	hexSig, ok := strings.CutPrefix(header, signaturePrefix)
	if !ok || len(hexSig) != hex.EncodedLen(sha256.Size) {
		return mac, false
	}
	return mac, decodeHex(mac[:], hexSig)
}

// Sign returns the X-Hub-Signature-256 value GitHub would send for body under secret.
// Tests, the test-delivery endpoint and `make` helpers use it.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return signaturePrefix + hex.EncodeToString(mac.Sum(nil))
}

// decodeHex decodes src into dst (len(src) == 2*len(dst)) without the allocation that
// converting the header to a byte slice for encoding/hex would cost.
func decodeHex(dst []byte, src string) bool {
	for i := range dst {
		hi, ok1 := fromHexChar(src[2*i])
		lo, ok2 := fromHexChar(src[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func fromHexChar(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
