//go:build !purego

#include "textflag.h"

// Bit k of each byte's weight, repeating every eight bytes: ANDed with a compare result
// and summed pairwise three times, it folds 64 byte lanes into one 64-bit mask.
DATA laneBits<>+0(SB)/8, $0x8040201008040201
DATA laneBits<>+8(SB)/8, $0x8040201008040201
GLOBL laneBits<>(SB), RODATA|NOPTR, $16

// func markBlocksNEON(dst *uint64, src *byte, blocks int)
//
// For each 64-byte block of src, stores in dst a word with bit k set when byte k is '"',
// '\\' or below 0x20: the same marks as markBlock, exactly (no borrow flags).
TEXT ·markBlocksNEON(SB), NOSPLIT, $0-24
	MOVD dst+0(FP), R0
	MOVD src+8(FP), R1
	MOVD blocks+16(FP), R2
	CBZ R2, done

	VMOVI $0x22, V20.B16 // '"'
	VMOVI $0x5c, V21.B16 // '\\'
	VMOVI $0x1f, V22.B16 // x is a control character when min(x, 0x1f) == x
	MOVD $laneBits<>(SB), R3
	VLD1 (R3), [V23.B16]

loop:
	VLD1.P 64(R1), [V0.B16, V1.B16, V2.B16, V3.B16]

	VCMEQ V20.B16, V0.B16, V4.B16
	VCMEQ V21.B16, V0.B16, V5.B16
	VUMIN V22.B16, V0.B16, V6.B16
	VCMEQ V0.B16, V6.B16, V6.B16
	VORR V4.B16, V5.B16, V4.B16
	VORR V4.B16, V6.B16, V4.B16
	VAND V23.B16, V4.B16, V0.B16

	VCMEQ V20.B16, V1.B16, V4.B16
	VCMEQ V21.B16, V1.B16, V5.B16
	VUMIN V22.B16, V1.B16, V6.B16
	VCMEQ V1.B16, V6.B16, V6.B16
	VORR V4.B16, V5.B16, V4.B16
	VORR V4.B16, V6.B16, V4.B16
	VAND V23.B16, V4.B16, V1.B16

	VCMEQ V20.B16, V2.B16, V4.B16
	VCMEQ V21.B16, V2.B16, V5.B16
	VUMIN V22.B16, V2.B16, V6.B16
	VCMEQ V2.B16, V6.B16, V6.B16
	VORR V4.B16, V5.B16, V4.B16
	VORR V4.B16, V6.B16, V4.B16
	VAND V23.B16, V4.B16, V2.B16

	VCMEQ V20.B16, V3.B16, V4.B16
	VCMEQ V21.B16, V3.B16, V5.B16
	VUMIN V22.B16, V3.B16, V6.B16
	VCMEQ V3.B16, V6.B16, V6.B16
	VORR V4.B16, V5.B16, V4.B16
	VORR V4.B16, V6.B16, V4.B16
	VAND V23.B16, V4.B16, V3.B16

	// Pairwise sums: lanes 0-15 and 16-31, then 32-63, then all 64, eight bits a byte.
	VADDP V1.B16, V0.B16, V4.B16
	VADDP V3.B16, V2.B16, V5.B16
	VADDP V5.B16, V4.B16, V4.B16
	VADDP V4.B16, V4.B16, V4.B16
	VMOV V4.D[0], R4
	MOVD.P R4, 8(R0)

	SUBS $1, R2, R2
	BNE loop

done:
	RET
