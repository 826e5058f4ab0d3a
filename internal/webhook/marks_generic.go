//go:build purego || !(amd64 || arm64)

package webhook

// markBlocks stores in dst the marks of the len(dst) 64-byte blocks at the start of src.
func markBlocks(dst []uint64, src []byte) { markBlocksGeneric(dst, src) }
