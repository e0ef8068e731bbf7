package wal

import (
	"hash/crc32"
	"testing"
)

// TestDecisionTableEveryCase enumerates every combination of TailEvidence
// (4 end kinds × 2^4 flags = 64 cases) against expectations written out by
// hand, one string per end kind. Character i of a string is the verdict for
//
//	i = LastIsClose<<3 | OutsideFrames<<2 | PromiseBeyondEnd<<1 | OutsideContinues
//
// with K = clean, T = torn tail, C = corrupt.
func TestDecisionTableEveryCase(t *testing.T) {
	want := map[EndKind]string{
		//          close=0                 close=1
		//          out=0     out=1         out=0     out=1
		//          pc: 00 01 10 11
		EndZero:    "TCCC" + "TCCC" + "KCCC" + "TCCC",
		EndTorn:    "TCCC" + "TCCC" + "TCCC" + "TCCC",
		EndForeign: "TCCC" + "TCCC" + "KCCC" + "TCCC",
		EndShort:   "CCCC" + "CCCC" + "CCCC" + "CCCC",
	}
	letter := map[Verdict]byte{Clean: 'K', TornTail: 'T', Corrupt: 'C'}
	cases := 0
	for end, row := range want {
		for i := range 16 {
			e := TailEvidence{End: end, LastIsClose: i&8 != 0, OutsideFrames: i&4 != 0, PromiseBeyondEnd: i&2 != 0, OutsideContinues: i&1 != 0}
			d := Classify(e)
			if letter[d.Verdict] != row[i] {
				t.Errorf("%+v: got %v (rule %d), want %c", e, d.Verdict, d.Rule, row[i])
			}
			if d.Rule < 1 || d.Rule > len(decisionTable) || d.Reason == "" {
				t.Errorf("%+v: rule %d without a reason", e, d.Rule)
			}
			cases++
		}
	}
	if cases != 64 {
		t.Fatalf("enumerated %d cases, want 64", cases)
	}
}

// TestDecisionTableRowsReachable checks that every row decides some case:
// a row that can never match is dead logic.
func TestDecisionTableRowsReachable(t *testing.T) {
	hit := make([]bool, len(decisionTable)+1)
	for end := EndZero; end <= EndShort; end++ {
		for i := range 16 {
			hit[Classify(TailEvidence{End: end, LastIsClose: i&8 != 0, OutsideFrames: i&4 != 0, PromiseBeyondEnd: i&2 != 0, OutsideContinues: i&1 != 0}).Rule] = true
		}
	}
	for r := 1; r <= len(decisionTable); r++ {
		if !hit[r] {
			t.Errorf("decision table row %d (%s) is never used", r, decisionTable[r-1].reason)
		}
	}
}

func TestCRCUint64MatchesStdlib(t *testing.T) {
	for _, v := range []uint64{0, 1, 0xdeadbeef, 1<<63 | 12345} {
		var b [8]byte
		for i := range 8 {
			b[i] = byte(v >> (8 * i))
		}
		for _, seed := range []uint32{0, 0xffffffff, 0x1234} {
			if got, want := crcUint64(seed, v), crc32.Update(seed, castagnoli, b[:]); got != want {
				t.Fatalf("crcUint64(%#x, %#x) = %#x, want %#x", seed, v, got, want)
			}
		}
	}
}
