package wal

import (
	"fmt"
	"strconv"
)

// EndKind is what recovery finds at the end position: the block where the
// first frame after the recovered log would start.
type EndKind uint8

const (
	// EndZero: zero bytes, or no room and no further segment.
	EndZero EndKind = iota
	// EndTorn: our frame (or segment header) magic and segment id, but a
	// length or CRC check fails: a write that did not complete.
	EndTorn
	// EndForeign: non-zero bytes that are not a frame of this segment: old
	// data of a recycled segment, or a frame written for another place.
	EndForeign
	// EndShort: a segment file is shorter than its preallocated size. Files
	// are renamed into the log only at full size, so this is truncation.
	EndShort
)

func (k EndKind) String() string {
	if int(k) >= 4 {
		return "EndKind(" + strconv.Itoa(int(k)) + ")"
	}
	return [...]string{"zero", "torn", "foreign", "short"}[k]
}

// MarshalText renders the kind by name (in JSON reports).
func (k EndKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// TailEvidence is everything the decision table looks at: facts about the
// log past the last frame of the longest valid LSN-contiguous chain.
type TailEvidence struct {
	End EndKind `json:"end"`
	// LastIsClose: the recovered log ends with the frame Close writes.
	LastIsClose bool `json:"last_is_close"`
	// OutsideFrames: valid frames exist that are not part of the recovered
	// log (frames that were in flight at a crash, or evidence of damage).
	OutsideFrames bool `json:"outside_frames"`
	// PromiseBeyondEnd: some valid frame's durable-through promise names an
	// LSN past the recovered log: an acknowledged record is missing.
	PromiseBeyondEnd bool `json:"promise_beyond_end"`
	// OutsideContinues: a valid frame or segment header outside the
	// recovered log starts at or below its last LSN + 1, so the log goes on
	// past a damaged frame. (The first frame of a segment whose header is
	// invalid does not count: header and first frame are one write.)
	OutsideContinues bool `json:"outside_continues"`
}

// Verdict is the outcome of recovery classification.
type Verdict uint8

const (
	// Clean: the log ends with a close frame and nothing follows it.
	Clean Verdict = iota
	// TornTail: the log ends where a crash cut it; what follows was never
	// acknowledged. Open zeroes it and appends after the recovered log.
	TornTail
	// Corrupt: acknowledged data is missing or damaged. Open refuses.
	Corrupt
)

func (v Verdict) String() string {
	if int(v) >= 3 {
		return "Verdict(" + strconv.Itoa(int(v)) + ")"
	}
	return [...]string{"clean", "torn-tail", "corrupt"}[v]
}

// MarshalText renders the verdict by name (in JSON reports).
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// Decision is a verdict with the table row that produced it.
type Decision struct {
	Verdict Verdict `json:"verdict"`
	Rule    int     `json:"rule"`   // 1-based row of decisionTable
	Reason  string  `json:"reason"` // what the row means, for operators
}

// cond is a table cell: any value, or exactly true/false.
type cond uint8

const (
	any_ cond = iota
	yes
	no
)

func (c cond) match(b bool) bool { return c == any_ || (c == yes) == b }

// decisionTable is the recovery decision table. Rows are tried in order; the
// first match decides. Every combination of TailEvidence matches some row
// (the last row matches everything not Short), and the tests enumerate all
// 64 combinations.
var decisionTable = []struct {
	ends                               []EndKind // nil = any
	close, outside, promise, continues cond
	verdict                            Verdict
	reason                             string
}{
	{ends: []EndKind{EndShort}, verdict: Corrupt,
		reason: "a segment file is shorter than its preallocated size (truncated)"},
	{promise: yes, verdict: Corrupt,
		reason: "a valid frame promises LSNs durable that the recovered log lacks: an acknowledged frame is damaged or missing"},
	{continues: yes, verdict: Corrupt,
		reason: "valid log data continues past an invalid frame: a frame in the middle of the log is damaged"},
	{ends: []EndKind{EndZero, EndForeign}, close: yes, outside: no, verdict: Clean,
		reason: "the log ends with a close frame and nothing follows"},
	{ends: []EndKind{EndZero, EndTorn, EndForeign}, verdict: TornTail,
		reason: "the log ends at a write that never completed; nothing after it was acknowledged"},
}

// Classify applies the decision table to evidence. It is a pure function.
func Classify(e TailEvidence) Decision {
	for i, row := range decisionTable {
		if row.ends != nil {
			found := false
			for _, k := range row.ends {
				found = found || k == e.End
			}
			if !found {
				continue
			}
		}
		if row.close.match(e.LastIsClose) && row.outside.match(e.OutsideFrames) &&
			row.promise.match(e.PromiseBeyondEnd) && row.continues.match(e.OutsideContinues) {
			return Decision{Verdict: row.verdict, Rule: i + 1, Reason: row.reason}
		}
	}
	// Unreachable: the last two rows cover every EndKind. Assert it.
	panic(fmt.Sprintf("wal: decision table has no row for %+v", e))
}
