package webhook

import (
	"encoding/binary"
	"math/bits"
)

// Most of a GitHub payload is string content, so how fast the scanner crosses a string
// decides how fast it is. Searching each string for its closing quote costs a call and a
// few unpredictable branches per string; instead, a window of the body at a time is
// turned into a bitmap of the bytes that can end plain string content ('"', '\\' and
// control characters), with no branches at all, and crossing a string becomes a
// trailing-zero count.

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

// marks is the bitmap over a window of body: bit k of bits[w] is set when byte
// base+64w+k may end plain string content.
type marks struct {
	bits      [markWords + 1]uint64 // one more, always 0, past the window's last block
	base, end int                   // the window covers bytes [base, end)
}

// fill builds the bitmap for the window of b that starts at the 64-byte block holding
// byte i: whole blocks with markBlocks, a last partial block padded with spaces.
func (m *marks) fill(b []byte, i int) {
	m.base = i &^ 63
	m.end = min(m.base+markWords*64, (len(b)+63)&^63)
	whole := (min(m.end, len(b)) - m.base) / 64
	markBlocks(m.bits[:whole], b[m.base:])
	if j := m.base + whole*64; j < m.end {
		tail := [64]byte{}
		for k := range tail {
			tail[k] = ' '
		}
		copy(tail[:], b[j:])
		m.bits[whole] = markBlock(&tail)
	}
	m.bits[(m.end-m.base)/64] = 0 // closingQuote reads one block ahead
}

// markBlocks stores in dst the marks of the len(dst) 64-byte blocks at the start of src.
func markBlocks(dst []uint64, src []byte) {
	for w := range dst {
		dst[w] = markBlock((*[64]byte)(src[w*64 : w*64+64]))
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
//
// The eight bytes are tested for '"', '\\' and bytes below 0x20 at once with the classic
// SWAR test "has a byte less than n", (x - n*ones) &^ x & highs. Flipping bit 1 maps the
// control characters onto themselves and '"' (0x22) onto 0x20, so one test below 0x21
// finds both; the backslash is the byte that XOR '\\' makes zero, so a test below 1. The
// XORs keep x's high bits, so one &^ x serves both. The test can flag a byte just above
// a true match (a borrow), never one below it, so users check the byte they land on.
func markWord(x uint64) uint64 {
	h := (((x ^ 0x02*ones) - 0x21*ones) | ((x ^ '\\'*ones) - ones)) &^ x & highs
	return h * gather >> 56
}

// next returns the first marked byte of b at or after i, or len(b) when there is none.
func (m *marks) next(b []byte, i int) int {
	for {
		if i >= m.end {
			if i >= len(b) {
				return len(b)
			}
			m.fill(b, i)
		}
		off := i - m.base
		if w := m.bits[off>>6] >> (off & 63); w != 0 {
			return i + bits.TrailingZeros64(w)
		}
		i = (i | 63) + 1 // the next block
	}
}

// closingQuote is the common case of crossing a string, small enough to inline: for a
// string whose content starts at b[i], it returns the index of its closing quote when
// that quote is the first mark from i on and lies within 64 bytes of i in the current
// window, and -1 otherwise (an escape, a control character, a borrow, a long string, or
// a window still to fill).
func (m *marks) closingQuote(b []byte, i int) int {
	if off := uint(i - m.base); off < uint(m.end-m.base) {
		// The next 64 bytes from off, across a block boundary (x << 64 is 0 in Go).
		k, s := off>>6, off&63
		if w := m.bits[k]>>s | m.bits[k+1]<<(64-s); w != 0 {
			if q := i + bits.TrailingZeros64(w); b[q] == '"' {
				return q
			}
		}
	}
	return -1
}
