package arenabt

import (
	"fmt"
	"testing"

	"github.com/tapewire/tapewire/lsm/internal/base"
)

// fuzzUserKey maps a byte to one of 256 user keys whose prefixes often
// tie: below 128, lengths 0-7 over the bytes 'a', 'b' and 0; from 128,
// state keys s/order/<n> sharing 8 bytes (deep node prefixes).
func fuzzUserKey(b byte) []byte {
	if b >= 128 {
		return fmt.Appendf(nil, "s/order/%d", int(b-128)*37%100)
	}
	n := int(b % 8)
	k := make([]byte, n)
	for i := range k {
		k[i] = "ab\x00"[(int(b)>>(3+i%5))%3]
	}
	return k
}

// FuzzInsertIterate decodes data as a tree's fanout and then 3-byte
// insertions (key, sequence number and kind, finger) followed by checks:
// a full walk both ways, then Gets and seeks with mixed Next/Prev, all
// against a sorted slice.
func FuzzInsertIterate(f *testing.F) {
	f.Add([]byte{3, 1, 2, 0, 5, 6, 1, 9, 9, 2})
	f.Add([]byte{14, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7, 7})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		fanout := 2 + int(data[0])%(maxSlots-1)
		data = data[1:]
		tr := newTestTree(t, 1<<20, fanout)
		m := newModel(tr)
		for len(data) >= 3 && len(m.keys) < 2000 {
			op, kb, sb := data[0], data[1], data[2]
			data = data[3:]
			kind := base.KindSet
			if op&1 != 0 {
				kind = base.KindDelete
			}
			finger := int(op>>1)%3 - 1
			if err := m.add(base.AppendInternalKey(nil, fuzzUserKey(kb), base.SeqNum(sb%32+1), kind), finger); err != nil {
				t.Fatal(err)
			}
		}
		if err := m.checkFull(); err != nil {
			t.Fatal(err)
		}
		for kb := 0; kb < 256; kb += 7 {
			ukey := fuzzUserKey(byte(kb))
			if err := m.checkGet(ukey, base.SeqNum(kb%34+1)); err != nil {
				t.Fatal(err)
			}
			steps := make([]bool, kb%20)
			for i := range steps {
				steps[i] = (kb>>uint(i%8))&1 == 1
			}
			if err := m.checkSeekWalk(ukey, base.MakeTrailer(base.SeqNum(kb%33), base.KindSet), kb%2 == 0, steps); err != nil {
				t.Fatal(err)
			}
		}
	})
}
