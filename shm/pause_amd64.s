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
