package webhook

import (
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
	// marks is a bitmap over the window of the body starting at byte base: bit k of
	// marks[w] is set for byte base+64w+k when that byte may end a run of plain string
	// content ('"', '\\' or a control character; see fillMarks). Building it a window at
	// a time, with no branches, costs far less than searching each string separately.
	marks     [markWords]uint64
	base, end int // the window covers bytes [base, end)
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
	s := scanner{b: payload}
	var stack [maxDepth]byte
	depth, field := 0, fieldNone
	repoDepth := -1 // depth of the top-level "repository" object while inside it
	inKey := false  // an object member's key comes before the next value
	b := s.b
	s.skipSpace()
	if s.i >= len(b) || b[s.i] != '{' {
		return Routing{}, s.fail("payload is not a JSON object")
	}
	for {
		if inKey {
			// A member: its key, ':' and then its value.
			s.skipSpace()
			if s.i >= len(b) || b[s.i] != '"' {
				return Routing{}, s.fail("expected a string key")
			}
			start, end := s.i, s.plainEnd(s.i)
			key := b[start+1 : max(end-1, start+1)]
			if end >= 0 {
				s.i = end
			} else if k, err := s.key(); err != nil {
				return Routing{}, err
			} else {
				key = k
			}
			field = fieldOf(key, depth, repoDepth)
			s.skipSpace()
			if s.i >= len(b) || b[s.i] != ':' {
				return Routing{}, s.fail("expected ':' after a key")
			}
			s.i++
		}
		// A value starts here.
		s.skipSpace()
		if s.i >= len(b) {
			return Routing{}, s.fail("unexpected end of input")
		}
		switch c := b[s.i]; {
		case c == '"':
			if end := s.plainEnd(s.i); end >= 0 && field == fieldNone {
				s.i = end
			} else if err := s.stringInto(&r, field); err != nil {
				return Routing{}, err
			}
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
			if s.i >= len(b) || b[s.i] != c+2 { // '{'+2 is '}', '['+2 is ']'
				inKey, field = c == '{', fieldNone
				continue
			}
			// Empty: it closes at once.
			if depth == repoDepth {
				repoDepth = -1
			}
			depth--
			s.i++
		case c == '-' || ('0' <= c && c <= '9'):
			if err := s.number(); err != nil {
				return Routing{}, err
			}
		case c == 't' || c == 'f' || c == 'n':
			if err := s.literal(literals[c]); err != nil {
				return Routing{}, err
			}
		default:
			return Routing{}, s.fail("unexpected character")
		}
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
				inKey, field = stack[depth-1] == '{', fieldNone
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
	if end := s.plainEnd(start); end >= 0 {
		s.i = end
		return s.b[start+1 : end-1], nil
	}
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
	if field == fieldNone {
		if end := s.plainEnd(start); end >= 0 {
			s.i = end
			return nil
		}
	}
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
	if s.i < len(s.b) && s.b[s.i] > ' ' {
		return // compact JSON, as GitHub sends it: nothing to skip
	}
	s.skipSpaceRun()
}

// skipSpaceRun is kept out of line so that skipSpace's one-byte test inlines.
//
//go:noinline
func (s *scanner) skipSpaceRun() {
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
	// gather moves the high bits of a word's eight bytes into its top byte, byte k's to bit
	// 56+k: each partial product lands on a distinct bit, so nothing carries.
	gather = 1<<49 | 1<<42 | 1<<35 | 1<<28 | 1<<21 | 1<<14 | 1<<7 | 1
	// markWords is the window's size in 64-byte blocks: 4 KB of body, half a kilobyte
	// of bitmap, small enough to live on the stack.
	markWords = 64
)

// fillMarks builds the bitmap for the window that starts at the 64-byte block holding
// byte i.
//
// Each 8-byte word is tested for '"', '\\' and bytes below 0x20 at once, with the classic
// SWAR test "has a byte less than n", (x - n*ones) &^ x & highs, applied to x for control
// characters and to x XOR the quote or backslash pattern for those two ('"' and '\\' are
// ASCII, so the XORs keep x's high bits and one &^ x serves all three). The test can
// flag a byte just above a true match (a borrow), never one below it, so skipString
// checks the byte it lands on. Bytes past the end of the body read as spaces.
func (s *scanner) fillMarks(i int) {
	b := s.b
	s.base = i &^ 63
	s.end = min(s.base+markWords*64, (len(b)+63)&^63)
	for w, j := 0, s.base; j < s.end; w, j = w+1, j+64 {
		if j+64 <= len(b) {
			s.marks[w] = markBlock((*[64]byte)(b[j : j+64]))
			continue
		}
		tail := [64]byte{}
		for k := range tail {
			tail[k] = ' '
		}
		copy(tail[:], b[j:])
		s.marks[w] = markBlock(&tail)
	}
}

// markBlock returns the marks of 64 bytes, bit k for byte k.
func markBlock(p *[64]byte) uint64 {
	le := binary.LittleEndian
	return markWord(le.Uint64(p[0:])) | markWord(le.Uint64(p[8:]))<<8 |
		markWord(le.Uint64(p[16:]))<<16 | markWord(le.Uint64(p[24:]))<<24 |
		markWord(le.Uint64(p[32:]))<<32 | markWord(le.Uint64(p[40:]))<<40 |
		markWord(le.Uint64(p[48:]))<<48 | markWord(le.Uint64(p[56:]))<<56
}

// markWord returns the marks of the eight bytes of x, bit k for byte k.
func markWord(x uint64) uint64 {
	h := ((x - 0x20*ones) | ((x ^ '"'*ones) - ones) | ((x ^ '\\'*ones) - ones)) &^ x & highs
	return h * gather >> 56
}

// nextMark returns the first marked byte at or after i, or len(s.b) when there is none.
func (s *scanner) nextMark(i int) int {
	for {
		if i >= s.end {
			if i >= len(s.b) {
				return len(s.b)
			}
			s.fillMarks(i)
		}
		off := i - s.base
		if m := s.marks[off>>6] >> (off & 63); m != 0 {
			return i + bits.TrailingZeros64(m)
		}
		i = (i | 63) + 1 // the next block
	}
}

// plainEnd is the common case of skipString, small enough to inline: for a string
// starting at '"' at i, it returns the index just past its closing quote when the quote
// is the first mark after i and lies in the current window, and -1 otherwise.
func (s *scanner) plainEnd(i int) int {
	if off := uint(i + 1 - s.base); off < uint(s.end-s.base) {
		if m := s.marks[off>>6&(markWords-1)] >> (off & 63); m != 0 {
			if q := i + 1 + bits.TrailingZeros64(m); q < len(s.b) && s.b[q] == '"' {
				return q + 1
			}
		}
	}
	return -1
}

// skipString consumes a string starting at '"' and reports whether it held escapes.
func (s *scanner) skipString() (escaped bool, err error) {
	i := s.i + 1 // past the opening quote
	for {
		i = s.nextMark(i)
		if i >= len(s.b) {
			s.i = i
			return escaped, s.fail("unterminated string")
		}
		switch c := s.b[i]; {
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
			i++ // a byte the test flagged by borrow
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
