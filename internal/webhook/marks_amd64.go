//go:build !purego

package webhook

import "golang.org/x/sys/cpu"

// hasAVX2 selects the vector kernel, which marks a 64-byte block in a handful of
// instructions where the portable SWAR code needs about a hundred.
var hasAVX2 = cpu.X86.HasAVX2

//go:noescape
func markBlocksAVX2(dst *uint64, src *byte, blocks int)

// markBlocks stores in dst the marks of the len(dst) 64-byte blocks at the start of src.
func markBlocks(dst []uint64, src []byte) {
	if !hasAVX2 || len(dst) == 0 {
		markBlocksGeneric(dst, src)
		return
	}
	_ = src[len(dst)*64-1] // the kernel reads this far
	markBlocksAVX2(&dst[0], &src[0], len(dst))
}
