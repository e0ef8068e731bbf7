#include "textflag.h"

// func rdtsc() uint64
//
// LFENCE before RDTSC: the read waits until every earlier instruction has
// completed, so a sample cannot end before the load that saw the answer
// (without it the core, having learnt a spin loop's trip count, ran the
// closing RDTSC speculatively before the awaited cache line arrived and
// samples came out up to ~100 ns short). LFENCE after it: later
// instructions (the store that starts a round trip) cannot begin before
// the counter is read.
TEXT ·rdtsc(SB), NOSPLIT, $0-8
	LFENCE
	RDTSC
	LFENCE
	SHLQ $32, DX
	ORQ DX, AX
	MOVQ AX, ret+0(FP)
	RET
