package webhook

import (
	"math/bits"
	"math/rand/v2"
	"testing"
)

// exactMarks is the specification every markBlocks kernel is held to: bit k for byte k
// when it is '"', '\\' or below 0x20.
func exactMarks(block []byte) uint64 {
	var m uint64
	for k, c := range block[:64] {
		if c == '"' || c == '\\' || c < 0x20 {
			m |= 1 << k
		}
	}
	return m
}

// checkMarks holds got to exact: every true mark is set, and any other set bit lies
// above a true mark in the same 8-byte word (the SWAR kernel's borrow), which the
// scanner tolerates because it checks the byte it lands on.
func checkMarks(t *testing.T, kernel string, block []byte, got uint64) {
	t.Helper()
	want := exactMarks(block)
	if got&want != want {
		t.Fatalf("%s misses marks %064b in %q", kernel, want&^got, block)
	}
	for extra := got &^ want; extra != 0; extra &= extra - 1 {
		k := bits.TrailingZeros64(extra)
		word := uint64(0xff) << (k &^ 7)
		if below := want & word & (1<<k - 1); below == 0 {
			t.Fatalf("%s marks byte %d (%q) with no true mark below it in its word, in %q", kernel, k, block[k], block)
		}
	}
}

// TestMarkBlocks drives every kernel with blocks rich in the bytes that matter and in
// their neighbours (0x21, '#', ']', 0x7f, high bytes), which are where SWAR borrows and
// signed-compare mistakes would show.
func TestMarkBlocks(t *testing.T) {
	alphabet := []byte("\"\\\x00\x01\x1f\x20\x21#]^\x7f\x80\xa1\xdc\xffaZ09:,{}")
	rng := rand.New(rand.NewPCG(1, 2))
	const blocks = 32
	src := make([]byte, blocks*64)
	for round := range 500 {
		for i := range src {
			if round%2 == 0 || rng.IntN(4) == 0 {
				src[i] = alphabet[rng.IntN(len(alphabet))]
			} else {
				src[i] = byte(rng.Uint32())
			}
		}
		generic := make([]uint64, blocks)
		markBlocksGeneric(generic, src)
		native := make([]uint64, blocks)
		markBlocks(native, src)
		for w := range blocks {
			block := src[w*64 : w*64+64]
			checkMarks(t, "markBlocksGeneric", block, generic[w])
			checkMarks(t, "markBlocks", block, native[w])
		}
	}
}
