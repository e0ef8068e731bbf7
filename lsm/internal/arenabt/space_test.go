package arenabt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/tapewire/tapewire/lsm/internal/base"
	"pgregory.net/rapid"
)

// spaceCheck inserts keys and checks after every insertion that the arena
// used beyond the empty tree stays within Σ MaxNodeSize + FixedOverhead —
// the reservation the memtable makes (doc.go proves the bound).
type spaceCheck struct {
	tr       *Tree
	ins      Inserter
	empty    uint64
	reserved uint64
	n        int
}

func newSpaceCheck(t fataler) *spaceCheck {
	tr := newTestTree(t, 64<<20, maxSlots)
	return &spaceCheck{tr: tr, empty: tr.arena.exactSize()}
}

func (s *spaceCheck) add(ukey []byte, value []byte, finger bool) error {
	s.n++
	ik := base.AppendInternalKey(nil, ukey, base.SeqNum(s.n), base.KindSet)
	var err error
	if finger {
		err = s.tr.AddWith(&s.ins, ik, value)
	} else {
		err = s.tr.Add(ik, value)
	}
	if err != nil {
		return err
	}
	s.reserved += MaxNodeSize(len(ik), len(value))
	if used := s.tr.arena.exactSize() - s.empty; used > s.reserved+FixedOverhead {
		return fmt.Errorf("after %d insertions the tree uses %d bytes, more than the %d reserved + %d fixed", s.n, used, s.reserved, FixedOverhead)
	}
	return nil
}

// TestSpaceBound draws insertion patterns — random, ascending, several
// interleaved ascending streams, descending, keys squeezed just above a
// leaf's largest key (the 100/0 split's worst case) — and checks the space
// bound after every insertion.
func TestSpaceBound(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		s := newSpaceCheck(rt)
		n := rapid.IntRange(1, 3000).Draw(rt, "inserts")
		pattern := rapid.IntRange(0, 4).Draw(rt, "pattern")
		streams := rapid.IntRange(1, 20).Draw(rt, "streams")
		valLen := rapid.IntRange(0, 120).Draw(rt, "valLen")
		finger := rapid.Bool().Draw(rt, "finger")
		value := make([]byte, valLen)
		next := make([]uint64, streams)
		var k [16]byte
		for i := 0; i < n; i++ {
			var key uint64
			switch pattern {
			case 0: // random
				key = uint64(i) * 0x9E3779B97F4A7C15
			case 1: // ascending
				key = uint64(i)
			case 2: // interleaved ascending streams
				st := rapid.IntRange(0, streams-1).Draw(rt, "stream")
				key = uint64(st)<<40 | next[st]
				next[st]++
			case 3: // descending
				key = uint64(n - i)
			case 4: // halving the gap above a fixed key: each key lands
				// right above the previous leaf's largest key
				key = 1<<62 - uint64(i)<<20
			}
			binary.BigEndian.PutUint64(k[:8], key)
			binary.BigEndian.PutUint64(k[8:], uint64(i))
			if err := s.add(k[:], value, finger); err != nil {
				rt.Fatal(err)
			}
		}
	})
}

// TestSpaceBoundAdversarial fills leaves in order and then inserts, into
// each full leaf, a key above its largest (a 100/0 split where allowed) and
// then one in its middle (a 50/50 split), the sequence that allocates the
// most nodes per insertion.
func TestSpaceBoundAdversarial(t *testing.T) {
	s := newSpaceCheck(t)
	var k [12]byte
	add := func(hi, lo uint64) {
		binary.BigEndian.PutUint64(k[:8], hi)
		binary.BigEndian.PutUint32(k[8:], uint32(lo))
		if err := s.add(k[:], nil, false); err != nil {
			t.Fatal(err)
		}
	}
	for i := uint64(0); i < 14*500; i++ {
		add(i*1000, 0)
	}
	for round := uint64(1); round < 20; round++ {
		for i := uint64(0); i < 14*500; i += 7 {
			add(i*1000+round, 0)
			add(i*1000+999-round, 0)
		}
	}
}

// TestReservedEntriesNeverFail fills an arena exactly as the memtable
// does — reserving MaxNodeSize per entry plus FixedOverhead and stopping
// when the next reservation would not fit — and requires that no insertion
// fails and that the stop comes close to the arena's end.
func TestReservedEntriesNeverFail(t *testing.T) {
	for _, pattern := range []string{"random", "ascending"} {
		t.Run(pattern, func(t *testing.T) {
			tr := newTestTree(t, 8<<20, maxSlots)
			reserved := tr.arena.exactSize() + FixedOverhead
			var k [16]byte
			val := make([]byte, 100)
			var ins Inserter
			n := 0
			for ; ; n++ {
				key := uint64(n)
				if pattern == "random" {
					key *= 0x9E3779B97F4A7C15
				}
				binary.BigEndian.PutUint64(k[:8], key)
				ik := base.AppendInternalKey(nil, k[:], base.SeqNum(n+1), base.KindSet)
				need := MaxNodeSize(len(ik), len(val))
				if reserved+need > tr.arena.Capacity() {
					break
				}
				reserved += need
				if err := tr.AddWith(&ins, ik, val); err != nil {
					t.Fatalf("insertion %d within the reservation failed: %v", n, err)
				}
			}
			if want := int((tr.arena.Capacity() - FixedOverhead - 1024) / MaxNodeSize(24, 100)); n < want {
				t.Fatalf("only %d entries reserved, want %d", n, want)
			}
			// The reservation is a bound, not a fit: show the slack.
			t.Logf("%s: %d entries, arena %d of %d bytes used, %d reserved", pattern, n, tr.arena.exactSize(), tr.arena.Capacity(), reserved)
			big := base.AppendInternalKey(nil, []byte("overflow"), 1, base.KindSet)
			if err := tr.Add(big, make([]byte, 9<<20)); !errors.Is(err, ErrArenaFull) {
				t.Fatalf("a 9 MiB value in an 8 MiB arena: %v", err)
			}
		})
	}
}

// TestArenaFullLeavesNoTrace fills small arenas of drawn sizes with drawn
// keys and value sizes until insertions fail: every failure is
// ErrArenaFull, leaves the arena's allocation state exactly as it was (so
// a failed split published nothing and the entry is gone) and the tree
// equal to the acknowledged entries, and later smaller entries still go in.
func TestArenaFullLeavesNoTrace(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		size := rapid.IntRange(1<<10, 32<<10).Draw(rt, "arenaBytes")
		fanout := rapid.SampledFrom([]int{2, 3, 5, maxSlots}).Draw(rt, "fanout")
		tr := newTestTree(rt, size, fanout)
		m := newModel(tr)
		ukeys := userKeyGen()
		failures := 0
		for i := 0; failures < 20 && i < 5000; i++ {
			ik := base.AppendInternalKey(nil, ukeys.Draw(rt, "ukey"), base.SeqNum(i+1), base.KindSet)
			if _, dup := m.vals[string(ik)]; dup {
				continue
			}
			val := make([]byte, rapid.IntRange(0, 300).Draw(rt, "valLen"))
			before := tr.arena.mark()
			err := tr.Add(ik, val)
			if err == nil {
				m.vals[string(ik)] = string(val)
				m.keys = append(m.keys, ik)
				m.dirty = true
				continue
			}
			if !errors.Is(err, ErrArenaFull) {
				rt.Fatalf("insert %d: %v", i, err)
			}
			failures++
			if after := tr.arena.mark(); after != before {
				rt.Fatalf("failed insert moved the arena from %+v to %+v", before, after)
			}
		}
		m.sort()
		var it Iterator
		it.Init(tr)
		n := 0
		for it.First(); it.Valid(); it.Next() {
			if n >= len(m.keys) || string(it.Key()) != string(m.keys[n]) || string(it.Value()) != m.vals[string(m.keys[n])] {
				rt.Fatalf("entry %d is %s, want %s", n, base.FormatKey(it.Key()), base.FormatKey(m.keys[n]))
			}
			n++
		}
		if n != len(m.keys) {
			rt.Fatalf("tree holds %d of %d acknowledged entries", n, len(m.keys))
		}
	})
}
