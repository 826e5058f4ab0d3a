//go:build !purego

package webhook

//go:noescape
func markBlocksNEON(dst *uint64, src *byte, blocks int)

// markBlocks stores in dst the marks of the len(dst) 64-byte blocks at the start of src.
// Every arm64 processor has NEON (Advanced SIMD is part of ARMv8-A), so there is no
// feature check.
func markBlocks(dst []uint64, src []byte) {
	if len(dst) == 0 {
		return
	}
	_ = src[len(dst)*64-1] // the kernel reads this far
	markBlocksNEON(&dst[0], &src[0], len(dst))
}
