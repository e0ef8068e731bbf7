package arenabt

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/tapewire/tapewire/lsm/internal/base"
	"pgregory.net/rapid"
)

// userKeyGen draws user keys that collide often: short keys over a tiny
// alphabet (ties in the 4-byte prefixes, keys that are prefixes of others,
// the empty key), 8-byte big-endian numbers from a narrow range, and keys
// with long shared prefixes of several lengths (state keys s/order/<n>,
// event keys e/<topic u32>/<seq u64>) so nodes take prefixes deep in the
// key.
func userKeyGen() *rapid.Generator[[]byte] {
	return rapid.OneOf(
		rapid.Map(rapid.IntRange(0, 3000), func(n int) []byte { return fmt.Appendf(nil, "s/order/%d", n) }),
		rapid.Map(rapid.IntRange(0, 4*500-1), func(n int) []byte {
			k := binary.BigEndian.AppendUint32([]byte("e/"), uint32(n%4))
			return binary.BigEndian.AppendUint64(append(k, '/'), uint64(n/4))
		}),
		rapid.Map(rapid.StringMatching(`[ab\x00]{0,6}`), func(s string) []byte { return []byte(s) }),
		rapid.Map(rapid.Uint64Range(0, 600), func(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }),
		rapid.Map(rapid.Uint64(), func(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }),
	)
}

// TestTreeMatchesModel: random inserts (duplicate user keys at several
// sequence numbers, exact duplicates, through two fingers or none) into
// trees of tiny and full-size nodes; after them every Get at snapshot
// sequence numbers, full walks both ways and seeks followed by mixed
// Next/Prev agree with a sorted slice.
func TestTreeMatchesModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		fanout := rapid.SampledFrom([]int{2, 3, 4, 7, maxSlots}).Draw(rt, "fanout")
		tr := newTestTree(rt, 8<<20, fanout)
		m := newModel(tr)
		ukeys := userKeyGen()
		n := rapid.IntRange(0, 600).Draw(rt, "inserts")
		ascending := rapid.Bool().Draw(rt, "ascending")
		for i := 0; i < n; i++ {
			var ukey []byte
			if ascending && rapid.IntRange(0, 3).Draw(rt, "mostly ascending") > 0 {
				ukey = binary.BigEndian.AppendUint64(nil, uint64(i)) // finger fast path
			} else {
				ukey = ukeys.Draw(rt, "ukey")
			}
			seq := base.SeqNum(rapid.IntRange(1, 50).Draw(rt, "seq"))
			kind := rapid.SampledFrom([]base.Kind{base.KindSet, base.KindDelete}).Draw(rt, "kind")
			f := rapid.IntRange(-1, 1).Draw(rt, "finger")
			if err := m.add(base.AppendInternalKey(nil, ukey, seq, kind), f); err != nil {
				rt.Fatal(err)
			}
		}
		if err := m.checkFull(); err != nil {
			rt.Fatal(err)
		}
		for range rapid.IntRange(1, 30).Draw(rt, "probes") {
			ukey := ukeys.Draw(rt, "probe")
			if err := m.checkGet(ukey, base.SeqNum(rapid.IntRange(1, 52).Draw(rt, "seqLimit"))); err != nil {
				rt.Fatal(err)
			}
			trailer := base.MakeTrailer(base.SeqNum(rapid.IntRange(0, 51).Draw(rt, "seekSeq")), base.KindSet)
			steps := rapid.SliceOfN(rapid.Bool(), 0, 40).Draw(rt, "steps")
			if err := m.checkSeekWalk(ukey, trailer, rapid.Bool().Draw(rt, "lt"), steps); err != nil {
				rt.Fatal(err)
			}
		}
	})
}
