//go:build !purego

#include "textflag.h"

// func markBlocksAVX2(dst *uint64, src *byte, blocks int)
//
// For each 64-byte block of src, stores in dst a word with bit k set when byte k is '"',
// '\\' or below 0x20: the same marks as markBlock, exactly (no borrow flags).
TEXT ·markBlocksAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ blocks+16(FP), CX
	TESTQ CX, CX
	JEQ done

	MOVQ $0x22, AX
	MOVQ AX, X0
	VPBROADCASTB X0, Y13 // '"'
	MOVQ $0x5c, AX
	MOVQ AX, X0
	VPBROADCASTB X0, Y14 // '\\'
	MOVQ $0x1f, AX
	MOVQ AX, X0
	VPBROADCASTB X0, Y15 // 0x1f: x is a control character when min(x, 0x1f) == x

loop:
	VMOVDQU (SI), Y0
	VMOVDQU 32(SI), Y1
	VPCMPEQB Y13, Y0, Y2
	VPCMPEQB Y13, Y1, Y3
	VPCMPEQB Y14, Y0, Y4
	VPCMPEQB Y14, Y1, Y5
	VPMINUB Y15, Y0, Y6
	VPMINUB Y15, Y1, Y7
	VPCMPEQB Y0, Y6, Y6
	VPCMPEQB Y1, Y7, Y7
	VPOR Y2, Y4, Y4
	VPOR Y3, Y5, Y5
	VPOR Y4, Y6, Y6
	VPOR Y5, Y7, Y7
	VPMOVMSKB Y6, AX
	VPMOVMSKB Y7, BX
	SHLQ $32, BX
	ORQ BX, AX
	MOVQ AX, (DI)
	ADDQ $64, SI
	ADDQ $8, DI
	DECQ CX
	JNE loop
	VZEROUPPER

done:
	RET
