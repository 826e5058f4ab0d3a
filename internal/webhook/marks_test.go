package webhook

import (
	"io/fs"
	"math/bits"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

// exactMarks is the specification markBlocks is held to: bit k for byte k when it is
// '"', '\\' or below 0x20.
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
func checkMarks(t *testing.T, block []byte, got uint64) {
	t.Helper()
	want := exactMarks(block)
	if got&want != want {
		t.Fatalf("markBlocks misses marks %064b in %q", want&^got, block)
	}
	for extra := got &^ want; extra != 0; extra &= extra - 1 {
		k := bits.TrailingZeros64(extra)
		word := uint64(0xff) << (k &^ 7)
		if below := want & word & (1<<k - 1); below == 0 {
			t.Fatalf("markBlocks marks byte %d (%q) with no true mark below it in its word, in %q", k, block[k], block)
		}
	}
}

// TestMarkBlocks drives markBlocks with blocks rich in the bytes that matter and in
// their neighbours (0x21, '#', ']', 0x7f, high bytes), which are where SWAR borrows
// would show.
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
		got := make([]uint64, blocks)
		markBlocks(got, src)
		for w := range blocks {
			checkMarks(t, src[w*64:w*64+64], got[w])
		}
	}
}

// TestNoAssembly keeps the scanner portable Go: the SIMD kernels it once had saved 2-3 µs
// per delivery inside invocations that spend milliseconds on DynamoDB and SQS, at the
// price of per-architecture code, a purego test pass and an emulated arm64 pass.
func TestNoAssembly(t *testing.T) {
	var found []string
	err := filepath.WalkDir(filepath.Join("..", ".."), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".s") || strings.HasSuffix(path, ".S")) {
			found = append(found, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) > 0 {
		t.Fatalf("assembly files in the module: %v", found)
	}
}
