package arenabt

import (
	"encoding/binary"
	"testing"

	"github.com/tapewire/tapewire/lsm/internal/base"
)

// TestAddGetIterateAllocNothing guards the hot paths: Add, AddWith (finger
// hits and misses, splits included), Get and iterator moves allocate
// nothing.
func TestAddGetIterateAllocNothing(t *testing.T) {
	tr := newTestTree(t, 64<<20, maxSlots)
	var k [16]byte
	ik := make([]byte, 0, 24)
	val := make([]byte, 100)
	i := 0
	next := func(scatter bool) []byte {
		n := uint64(i)
		if scatter {
			n *= 0x9E3779B97F4A7C15
		}
		binary.BigEndian.PutUint64(k[:8], n)
		i++
		ik = base.AppendInternalKey(ik[:0], k[:], base.SeqNum(i), base.KindSet)
		return ik
	}
	var ins Inserter
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"Add random", func() {
			if err := tr.Add(next(true), val); err != nil {
				t.Fatal(err)
			}
		}},
		{"AddWith ascending", func() {
			if err := tr.AddWith(&ins, next(false), val); err != nil {
				t.Fatal(err)
			}
		}},
		{"AddWith random", func() {
			if err := tr.AddWith(&ins, next(true), val); err != nil {
				t.Fatal(err)
			}
		}},
		{"Get", func() {
			if _, _, ok := tr.Get(k[:], base.SeqNumMax); !ok {
				t.Fatal("missing")
			}
		}},
	} {
		if allocs := testing.AllocsPerRun(2000, c.f); allocs != 0 {
			t.Errorf("%s allocates %.2f times per call", c.name, allocs)
		}
	}
	var it Iterator
	it.Init(tr)
	if allocs := testing.AllocsPerRun(100, func() {
		it.SeekGE(k[:8], base.SearchTrailerAll)
		for range 30 {
			it.Next()
		}
		for range 30 {
			it.Prev()
		}
		it.SeekLT(k[:8], base.SearchTrailerAll)
		it.First()
		it.Last()
	}); allocs != 0 {
		t.Errorf("iterator moves allocate %.2f times per run", allocs)
	}
}
