package webhook

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"unicode/utf8"
)

// The ingest path must check that a delivery is well-formed JSON and pull out the few
// fields the audit record lists it under, at close to the cost of the HMAC. A full
// encoding/json decode of a ~9 KB workflow_job costs ten times that, so this file holds a
// single-pass validating scanner that skips everything it does not need.
//
// It accepts exactly the documents encoding/json accepts as an object: the RFC 8259
// grammar, nesting up to encoding/json's depth of 10,000, and, like encoding/json,
// invalid UTF-8 inside strings (read as U+FFFD). It reads fields as the processor does
// (internal/jobs, payload.go): names match exactly, and of duplicate names the last
// member counts, whole.

// maxDepth is encoding/json's nesting limit (and json/v2's), so that one accepts exactly
// what the other does.
const maxDepth = 10000

// Summary is what the audit record lists a delivery under, read without decoding the
// payload. Nothing routes on it: the queue routes on the event header.
type Summary struct {
	Action     string // top-level "action" when it is a string, else empty
	Repository string // top-level repository.full_name when it is a string, else empty
}

// ErrMalformed wraps every reason a payload is not acceptable JSON.
var ErrMalformed = errors.New("malformed JSON payload")

func malformed(what string, at int) error {
	return fmt.Errorf("%w: %s at byte %d", ErrMalformed, what, at)
}

// Which summary field the next value is.
const (
	fieldNone = iota
	fieldAction
	fieldRepository
	fieldFullName
)

// Summarize validates payload and returns its summary fields.
//
// It is one flat loop with an explicit bracket stack (a bit per level: object or array)
// rather than a recursive descent,
// and it follows the grammar's fixed sequences directly — a key is always followed by
// ':' and a value, a value by ',' or a closing bracket — instead of going round the loop
// once per token. The position is a local variable threaded through helpers that return
// the next one, so it stays in a register along the whole walk, and strings are crossed
// with the bitmap in marks.go. That keeps the cost close to one pass over the bytes.
func Summarize(payload []byte) (Summary, error) {
	var r Summary
	var m marks
	var open brackets
	depth, field := 0, fieldNone
	repoDepth := -1 // depth of the top-level "repository" object while inside it
	inKey := false  // an object member's key comes before the next value
	b := payload
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return Summary{}, malformed("payload is not a JSON object", i)
	}
	var err error
	for {
		if inKey {
			// A member: its key, ':' and then its value.
			i = skipSpace(b, i)
			if i >= len(b) || b[i] != '"' {
				return Summary{}, malformed("expected a string key", i)
			}
			field = fieldNone
			summarized := depth == 1 || depth == repoDepth // the only depths fieldOf looks at
			if q := m.closingQuote(b, i+1); q >= 0 {
				if summarized {
					field = fieldOf(b[i+1:q], depth, repoDepth)
				}
				i = q + 1
			} else if !summarized {
				if i, _, err = m.skipString(b, i); err != nil {
					return Summary{}, err
				}
			} else {
				var key []byte
				if key, i, err = m.key(b, i); err != nil {
					return Summary{}, err
				}
				field = fieldOf(key, depth, repoDepth)
			}
			r.forget(field) // of duplicate names, the last counts whatever its value
			i = skipSpace(b, i)
			if i >= len(b) || b[i] != ':' {
				return Summary{}, malformed("expected ':' after a key", i)
			}
			i++
		}
		// A value starts here.
		i = skipSpace(b, i)
		if i >= len(b) {
			return Summary{}, malformed("unexpected end of input", i)
		}
		switch c := b[i]; {
		case c == '"':
			if q := m.closingQuote(b, i+1); q >= 0 && field == fieldNone {
				i = q + 1
			} else if i, err = m.stringInto(&r, field, b, i); err != nil {
				return Summary{}, err
			}
		case c == '{' || c == '[':
			if depth == maxDepth {
				return Summary{}, malformed("nesting too deep", i)
			}
			if c == '{' && field == fieldRepository {
				repoDepth = depth + 1
			}
			open.set(depth, c == '{')
			depth++
			i = skipSpace(b, i+1)
			if i >= len(b) || b[i] != c+2 { // '{'+2 is '}', '['+2 is ']'
				inKey, field = c == '{', fieldNone
				continue
			}
			// Empty: it closes at once.
			if depth == repoDepth {
				repoDepth = -1
			}
			depth--
			i++
		case c == '-' || ('0' <= c && c <= '9'):
			if i, err = number(b, i); err != nil {
				return Summary{}, err
			}
		case c == 't' || c == 'f' || c == 'n':
			if i, err = literal(b, i, literals[c]); err != nil {
				return Summary{}, err
			}
		default:
			return Summary{}, malformed("unexpected character", i)
		}
		// After a value: ',' and the next member or element, or closing brackets.
		for {
			i = skipSpace(b, i)
			if depth == 0 {
				if i != len(b) {
					return Summary{}, malformed("unexpected data after the top-level object", i)
				}
				return r, nil
			}
			if i >= len(b) {
				return Summary{}, malformed("unexpected end of input", i)
			}
			c := b[i]
			if c == ',' {
				i++
				inKey, field = open.object(depth-1), fieldNone
				break
			}
			if c != '}' && c != ']' {
				return Summary{}, malformed("expected ',' or a closing bracket", i)
			}
			if (c == '}') != (open.object(depth - 1)) {
				return Summary{}, malformed("mismatched closing bracket", i)
			}
			if depth == repoDepth {
				repoDepth = -1
			}
			depth--
			i++
		}
	}
}

// brackets records, a bit per depth, whether the bracket open there is an object's: 1.25 KB
// for encoding/json's 10,000 levels, small enough for the stack.
type brackets [maxDepth/64 + 1]uint64

func (o *brackets) set(depth int, object bool) {
	if bit := uint64(1) << (depth & 63); object {
		o[depth>>6] |= bit
	} else {
		o[depth>>6] &^= bit
	}
}

func (o *brackets) object(depth int) bool { return o[depth>>6]>>(depth&63)&1 == 1 }

// forget clears the summary field a key names, before its value is read.
func (r *Summary) forget(field int) {
	switch field {
	case fieldAction:
		r.Action = ""
	case fieldRepository, fieldFullName:
		r.Repository = ""
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

// key reads the key starting at b[i] and returns it and the index past it, unescaped in
// the rare case it holds escapes (GitHub never escapes key names, but "\u0061ction"
// still means "action").
func (m *marks) key(b []byte, i int) ([]byte, int, error) {
	end, escaped, err := m.skipString(b, i)
	if err != nil || !escaped {
		return b[i+1 : max(end-1, i+1)], end, err
	}
	var k string
	if json.Unmarshal(b[i:end], &k) != nil {
		return nil, end, malformed("invalid key", i)
	}
	return []byte(k), end, nil
}

// stringInto crosses the string value starting at b[i], keeping it in r if it is a
// routing field, and returns the index past it.
func (m *marks) stringInto(r *Summary, field int, b []byte, i int) (int, error) {
	end, escaped, err := m.skipString(b, i)
	if err != nil || (field != fieldAction && field != fieldFullName) {
		return end, err
	}
	v := string(b[i+1 : end-1])
	if escaped || !utf8.ValidString(v) {
		// Decode as encoding/json does, which also turns invalid UTF-8 into U+FFFD.
		if v, err = unescape(b[i:end]); err != nil {
			return end, malformed("invalid string", i)
		}
	}
	if field == fieldAction {
		r.Action = v
	} else {
		r.Repository = v
	}
	return end, nil
}

// unescape decodes a JSON string with escapes (rare in summary fields, so the standard
// decoder is fine; kept apart so the common path's string does not escape to the heap).
func unescape(quoted []byte) (string, error) {
	var v string
	err := json.Unmarshal(quoted, &v)
	return v, err
}

// skipString crosses the string starting at b[i], returns the index past its closing
// quote and reports whether it held escapes.
func (m *marks) skipString(b []byte, i int) (end int, escaped bool, err error) {
	i++ // past the opening quote
	for {
		i = m.next(b, i)
		if i >= len(b) {
			return i, escaped, malformed("unterminated string", i)
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			if i, err = escape(b, i); err != nil {
				return i, escaped, err
			}
		case c < 0x20:
			return i, escaped, malformed("control character in string", i)
		default:
			i++ // a byte the mark test flagged by borrow
		}
	}
}

// escape checks the escape sequence starting at the backslash b[i] and returns the index
// past it.
func escape(b []byte, i int) (int, error) {
	i++ // backslash
	if i >= len(b) {
		return i, malformed("unterminated escape", i)
	}
	switch b[i] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 1, nil
	case 'u':
		if len(b)-i < 5 {
			return i, malformed("short \\u escape", i)
		}
		for _, c := range b[i+1 : i+5] {
			if _, ok := fromHexChar(c); !ok {
				return i, malformed("invalid \\u escape", i)
			}
		}
		return i + 5, nil
	}
	return i, malformed("invalid escape", i)
}

// skipSpace returns the index of the first byte at or after i that is not whitespace.
func skipSpace(b []byte, i int) int {
	if i < len(b) && b[i] > ' ' {
		return i // compact JSON, as GitHub sends it: nothing to skip
	}
	return skipSpaceRun(b, i)
}

// skipSpaceRun is kept out of line so that skipSpace's one-byte test inlines.
//
//go:noinline
func skipSpaceRun(b []byte, i int) int {
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
			return i
		}
	}
	return i
}

// literal checks that lit starts at b[i] and returns the index past it.
func literal(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, malformed("invalid literal", i)
	}
	return i + len(lit), nil
}

// digits returns the index past the run of digits starting at b[i], and whether the run
// is empty.
func digits(b []byte, i int) (int, bool) {
	start := i
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i, i == start
}

// number checks the number starting at b[i] and returns the index past it.
func number(b []byte, i int) (int, error) {
	start := i
	if b[i] == '-' {
		i++
	}
	var empty bool
	if i < len(b) && b[i] == '0' {
		i++
	} else if i, empty = digits(b, i); empty {
		return i, malformed("invalid number", start)
	}
	if i < len(b) && b[i] == '.' {
		if i, empty = digits(b, i+1); empty {
			return i, malformed("invalid number", start)
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i, empty = digits(b, i); empty {
			return i, malformed("invalid number", start)
		}
	}
	return i, nil
}
