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

// Which routing field the next value is.
const (
	fieldNone = iota
	fieldAction
	fieldRepository
	fieldFullName
)

// ExtractRouting validates payload and returns its routing fields.
//
// It is one flat loop with an explicit bracket stack rather than a recursive descent,
// and it follows the grammar's fixed sequences directly — a key is always followed by
// ':' and a value, a value by ',' or a closing bracket — instead of going round the loop
// once per token. Strings are skipped with a vectorised search for the closing quote.
// That keeps the cost close to one pass over the bytes.
func ExtractRouting(payload []byte) (Routing, error) {
	var r Routing
	s := scanner{b: payload, noControl: !hasControl(payload)}
	var stack [maxDepth]byte
	depth, field := 0, fieldNone
	repoDepth := -1 // depth of the top-level "repository" object while inside it
	b := s.b
	s.skipSpace()
	if s.i >= len(b) || b[s.i] != '{' {
		return Routing{}, s.fail("payload is not a JSON object")
	}
	for {
		// A value starts here.
		s.skipSpace()
		if s.i >= len(b) {
			return Routing{}, s.fail("unexpected end of input")
		}
		switch c := b[s.i]; {
		case c == '{' || c == '[':
			if depth == maxDepth {
				return Routing{}, s.fail("nesting too deep")
			}
			if c == '{' && field == fieldRepository {
				repoDepth = depth + 1
			}
			stack[depth] = c
			depth++
			s.i++
			s.skipSpace()
			if s.i < len(b) && b[s.i] == c+2 { // '{'+2 is '}', '['+2 is ']'
				// Empty: it closes at once, and the tail steps past its closing bracket.
				if depth == repoDepth {
					repoDepth = -1
				}
				depth--
				break
			}
			if c == '[' {
				field = fieldNone
				continue // the first element is a value
			}
			if err := s.member(&field, depth, repoDepth); err != nil {
				return Routing{}, err
			}
			continue
		case c == '"':
			if err := s.stringInto(&r, field); err != nil {
				return Routing{}, err
			}
			s.i-- // the common tail below steps past the last byte of the value
		case c == '-' || ('0' <= c && c <= '9'):
			if err := s.number(); err != nil {
				return Routing{}, err
			}
			s.i--
		case c == 't' || c == 'f' || c == 'n':
			if err := s.literal(literals[c]); err != nil {
				return Routing{}, err
			}
			s.i--
		default:
			return Routing{}, s.fail("unexpected character")
		}
		s.i++
		// After a value: ',' and the next member or element, or closing brackets.
		for {
			s.skipSpace()
			if depth == 0 {
				if s.i != len(b) {
					return Routing{}, s.fail("unexpected data after the top-level object")
				}
				return r, nil
			}
			if s.i >= len(b) {
				return Routing{}, s.fail("unexpected end of input")
			}
			c := b[s.i]
			if c == ',' {
				s.i++
				field = fieldNone
				if stack[depth-1] == '{' {
					if err := s.member(&field, depth, repoDepth); err != nil {
						return Routing{}, err
					}
				}
				break
			}
			if c != '}' && c != ']' {
				return Routing{}, s.fail("expected ',' or a closing bracket")
			}
			var err error
			if depth, err = s.closeChecked(&stack, depth, c, &repoDepth); err != nil {
				return Routing{}, err
			}
		}
	}
}

// literals maps a literal's first byte to the literal.
var literals = [256]string{'t': "true", 'f': "false", 'n': "null"}

// member reads an object member's key and the ':' after it, leaving the scanner at the
// value, and says which routing field the value is.
func (s *scanner) member(field *int, depth, repoDepth int) error {
	s.skipSpace()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return s.fail("expected a string key")
	}
	key, err := s.key()
	if err != nil {
		return err
	}
	*field = fieldOf(key, depth, repoDepth)
	s.skipSpace()
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		return s.fail("expected ':' after a key")
	}
	s.i++
	return nil
}

// fieldOf says which routing field a key names: "action" and "repository" at the top
// level, "full_name" directly inside the top-level repository object.
func fieldOf(key []byte, depth, repoDepth int) int {
	switch {
	case depth == 1 && string(key) == "action":
		return fieldAction
	case depth == 1 && string(key) == "repository":
		return fieldRepository
	case depth == repoDepth && string(key) == "full_name":
		return fieldFullName
	}
	return fieldNone
}

// key consumes a key and returns it, unescaped in the rare case it holds escapes
// (GitHub never escapes key names, but "\u0061ction" still means "action").
func (s *scanner) key() ([]byte, error) {
	start := s.i
	escaped, err := s.skipString()
	if err != nil {
		return nil, err
	}
	if !escaped {
		return s.b[start+1 : s.i-1], nil
	}
	var k string
	if json.Unmarshal(s.b[start:s.i], &k) != nil {
		return nil, s.fail("invalid key")
	}
	return []byte(k), nil
}

// stringInto consumes a string value, keeping it if it is a routing field.
func (s *scanner) stringInto(r *Routing, field int) error {
	start := s.i
	escaped, err := s.skipString()
	if err != nil || (field != fieldAction && field != fieldFullName) {
		return err
	}
	v := string(s.b[start+1 : s.i-1])
	if escaped {
		v, err = unescape(s.b[start:s.i])
		if err != nil {
			return s.fail("invalid string")
		}
	}
	if field == fieldAction {
		r.Action = v
	} else {
		r.Repository = v
	}
	return nil
}

// unescape decodes a JSON string with escapes (rare in routing fields, so the standard
// decoder is fine; kept apart so the common path's string does not escape to the heap).
func unescape(quoted []byte) (string, error) {
	var v string
	err := json.Unmarshal(quoted, &v)
	return v, err
}

// closeChecked pops the container closed by c, failing if c does not match it.
func (s *scanner) closeChecked(stack *[maxDepth]byte, depth int, c byte, repoDepth *int) (int, error) {
	if depth == 0 || (c == '}') != (stack[depth-1] == '{') {
		return depth, s.fail("mismatched closing bracket")
	}
	if depth == *repoDepth {
		*repoDepth = -1
	}
	s.i++
	return depth - 1, nil
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
