package webhook

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
)

// The ingest path must check that a delivery is well-formed JSON and pull out the few
// fields that routing and the audit record need, at close to the cost of the HMAC. A full
// encoding/json decode of a ~9 KB workflow_job costs ten times that, so this file holds a
// single-pass validating scanner that skips everything it does not need.
//
// It accepts exactly the documents encoding/json accepts (RFC 8259 grammar, top-level
// object required here), except that, like encoding/json, it does not reject invalid
// UTF-8 inside strings.

// maxDepth bounds nesting so a hostile body cannot exhaust the stack.
const maxDepth = 256

// Routing is what ingest needs from a payload without decoding it.
type Routing struct {
	Action     string // top-level "action", empty when absent
	Repository string // repository.full_name, empty when absent
}

// ErrMalformed wraps every reason a payload is not acceptable JSON.
var ErrMalformed = errors.New("malformed JSON payload")

type scanner struct {
	b []byte
	i int
	// noControl is set when the body holds no byte below 0x20 at all (GitHub sends compact
	// JSON, so this is the usual case): strings then cannot contain control characters
	// and can be skipped with the vectorised bytes.IndexByte.
	noControl bool
}

func (s *scanner) fail(what string) error {
	return fmt.Errorf("%w: %s at byte %d", ErrMalformed, what, s.i)
}

// ExtractRouting validates payload and returns its routing fields.
func ExtractRouting(payload []byte) (Routing, error) {
	var r Routing
	s := scanner{b: payload, noControl: !hasControl(payload)}
	s.skipSpace()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return r, s.fail("payload is not a JSON object")
	}
	err := s.object(1, func(key []byte) (bool, error) {
		switch string(key) {
		case "action":
			v, ok, err := s.stringValue()
			if ok {
				r.Action = v
			}
			return ok, err
		case "repository":
			if s.peek() != '{' {
				return false, nil
			}
			return true, s.object(2, func(key []byte) (bool, error) {
				if string(key) != "full_name" {
					return false, nil
				}
				v, ok, err := s.stringValue()
				if ok {
					r.Repository = v
				}
				return ok, err
			})
		}
		return false, nil
	})
	if err != nil {
		return Routing{}, err
	}
	s.skipSpace()
	if s.i != len(s.b) {
		return Routing{}, s.fail("unexpected data after the top-level object")
	}
	return r, nil
}

func (s *scanner) peek() byte {
	s.skipSpace()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) skipSpace() {
	b, i := s.b, s.i
	for i < len(b) {
		switch b[i] {
		case ' ':
			// Indented payloads have long runs of spaces: skip them eight at a time.
			i++
			for i+8 <= len(b) {
				if nonSpace := binary.LittleEndian.Uint64(b[i:]) ^ (' ' * ones); nonSpace != 0 {
					i += bits.TrailingZeros64(nonSpace) / 8
					break
				}
				i += 8
			}
		case '\t', '\n', '\r':
			i++
		default:
			s.i = i
			return
		}
	}
	s.i = i
}

// object scans an object starting at '{'. For each member it calls member with the raw
// key bytes positioned before the value; member either consumes the value itself
// (returning true) or leaves it to be skipped.
func (s *scanner) object(depth int, member func(key []byte) (bool, error)) error {
	if depth > maxDepth {
		return s.fail("nesting too deep")
	}
	s.i++ // '{'
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.fail("expected a string key")
		}
		start := s.i + 1
		escaped, err := s.skipString()
		if err != nil {
			return err
		}
		key := s.b[start : s.i-1]
		if escaped {
			// Rare: GitHub never escapes key names, but "\u0061ction" still means "action".
			var k string
			if json.Unmarshal(s.b[start-1:s.i], &k) != nil {
				return s.fail("invalid key")
			}
			key = []byte(k)
		}
		if s.peek() != ':' {
			return s.fail("expected ':' after a key")
		}
		s.i++
		s.skipSpace()
		consumed := false
		if member != nil {
			if consumed, err = member(key); err != nil {
				return err
			}
		}
		if !consumed {
			if err := s.value(depth); err != nil {
				return err
			}
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.fail("expected ',' or '}' in an object")
		}
	}
}

// stringValue consumes a string value and returns it; for any other kind of value it
// consumes nothing and returns ok=false so the caller skips it.
func (s *scanner) stringValue() (string, bool, error) {
	if s.peek() != '"' {
		return "", false, nil
	}
	start := s.i
	escaped, err := s.skipString()
	if err != nil {
		return "", false, err
	}
	if !escaped {
		return string(s.b[start+1 : s.i-1]), true, nil
	}
	var v string
	if err := json.Unmarshal(s.b[start:s.i], &v); err != nil {
		return "", false, s.fail("invalid string")
	}
	return v, true, nil
}

// value skips one JSON value of any kind.
func (s *scanner) value(depth int) error {
	switch c := s.peek(); {
	case c == '"':
		_, err := s.skipString()
		return err
	case c == '{':
		return s.object(depth+1, nil)
	case c == '[':
		return s.array(depth + 1)
	case c == '-' || ('0' <= c && c <= '9'):
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == 0 && s.i >= len(s.b):
		return s.fail("unexpected end of input")
	default:
		return s.fail("unexpected character")
	}
}

func (s *scanner) array(depth int) error {
	if depth > maxDepth {
		return s.fail("nesting too deep")
	}
	s.i++ // '['
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		if err := s.value(depth); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.fail("expected ',' or ']' in an array")
		}
	}
}

func (s *scanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return s.fail("invalid literal")
	}
	s.i += len(lit)
	return nil
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

func (s *scanner) number() error {
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.digits() == 0:
		return s.fail("invalid number")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return s.fail("invalid number")
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return s.fail("invalid number")
		}
	}
	return nil
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// hasControl reports whether b holds any byte below 0x20, eight bytes at a time (the
// SWAR test explained at skipString).
func hasControl(b []byte) bool {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		if (x-0x20*ones)&^x&highs != 0 {
			return true
		}
	}
	for ; i < len(b); i++ {
		if b[i] < 0x20 {
			return true
		}
	}
	return false
}

// skipString consumes a string starting at '"' and reports whether it held escapes.
//
// Eight bytes at a time, it jumps to the next byte that needs a look: '"', '\\' or a
// control character. That is the classic SWAR test "has a byte less than n",
// (x - n*ones) &^ x & highs, applied to x for control characters and to x XOR the quote
// or backslash pattern for those two ('"' and '\\' are ASCII, so the XORs keep x's high
// bits and one &^ x serves all three). False positives only ever appear above a true
// match, so the lowest flagged byte is exact. The word is inlined by hand (and the index
// kept in a local) because this loop is most of the scanner's time.
func (s *scanner) skipString() (escaped bool, err error) {
	b, i := s.b, s.i+1 // past the opening quote
	if s.noControl {
		// Only '"' and '\\' matter: find the closing quote, and take the exact path
		// below only if a backslash comes before it (it may escape that quote).
		if q := bytes.IndexByte(b[i:], '"'); q >= 0 && bytes.IndexByte(b[i:i+q], '\\') < 0 {
			s.i = i + q + 1
			return false, nil
		}
	}
	for {
		for i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			m := ((x - 0x20*ones) | ((x ^ '"'*ones) - ones) | ((x ^ '\\'*ones) - ones)) &^ x & highs
			if m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		if i >= len(b) {
			s.i = i
			return escaped, s.fail("unterminated string")
		}
		switch c := b[i]; {
		case c == '"':
			s.i = i + 1
			return escaped, nil
		case c == '\\':
			escaped = true
			s.i = i
			if err := s.escape(); err != nil {
				return escaped, err
			}
			i = s.i
		case c < 0x20:
			s.i = i
			return escaped, s.fail("control character in string")
		default:
			i++
		}
	}
}

func (s *scanner) escape() error {
	s.i++ // backslash
	if s.i >= len(s.b) {
		return s.fail("unterminated escape")
	}
	switch s.b[s.i] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.i++
		return nil
	case 'u':
		if len(s.b)-s.i < 5 {
			return s.fail("short \\u escape")
		}
		for _, c := range s.b[s.i+1 : s.i+5] {
			if _, ok := fromHexChar(c); !ok {
				return s.fail("invalid \\u escape")
			}
		}
		s.i += 5
		return nil
	}
	return s.fail("invalid escape")
}
