#include "textflag.h"

// func spinPause(n uint32)
TEXT ·spinPause(SB), NOSPLIT, $0-4
	MOVL n+0(FP), CX
	TESTL CX, CX
	JZ done
loop:
	PAUSE
	DECL CX
	JNZ loop
done:
	RET

// func demoteLine(addr unsafe.Pointer)
//
// CLDEMOTE m8 (NP 0F 1C /0), encoded by hand: processors without it
// execute the encoding as a NOP (it lies in the reserved-NOP hint space).
TEXT ·demoteLine(SB), NOSPLIT, $0-8
	MOVQ addr+0(FP), AX
	BYTE $0x0F; BYTE $0x1C; BYTE $0x00
	RET
