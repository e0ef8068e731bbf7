package arenabt

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tapewire/tapewire/lsm/internal/base"
)

// concurrentKey is writer w's i-th user key. Writer 0 appends (the finger
// path and 100/0 splits), the others insert in a scattered order over the
// same key space (50/50 splits everywhere, parents splitting under
// readers).
func concurrentKey(w, i int) []byte {
	var k [12]byte
	n := uint64(i)
	if w != 0 {
		n = uint64(i) * 0x9E3779B97F4A7C15 >> 20
	}
	binary.BigEndian.PutUint64(k[:8], n)
	binary.BigEndian.PutUint32(k[8:], uint32(w))
	return k[:]
}

// TestConcurrentReadersSeeEveryEarlierEntry runs writers while readers
// iterate both ways, seek and get. A reader must see keys in strictly
// sorted order, every value matching its key (no torn entry), and every
// entry whose Add returned before the reader started.
func TestConcurrentReadersSeeEveryEarlierEntry(t *testing.T) {
	for _, fanout := range []int{3, maxSlots} {
		t.Run(fmt.Sprint("fanout", fanout), func(t *testing.T) {
			testConcurrent(t, fanout)
		})
	}
}

func testConcurrent(t *testing.T, fanout int) {
	const writers, perWriter, readers = 3, 3000, 2
	tr := newTestTree(t, 32<<20, fanout)
	var done [writers]atomic.Int64 // entries of each writer whose Add returned
	var stop atomic.Bool
	errs := make(chan error, readers)
	var rw sync.WaitGroup
	for r := 0; r < readers; r++ {
		rw.Add(1)
		go func(r int) {
			defer rw.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			for round := 0; !stop.Load(); round++ {
				if err := readRound(tr, &done, rng, round%2 == 1); err != nil {
					errs <- err
					return
				}
			}
		}(r)
	}
	var ww sync.WaitGroup
	for w := 0; w < writers; w++ {
		ww.Add(1)
		go func(w int) {
			defer ww.Done()
			var ins Inserter
			for i := 0; i < perWriter; i++ {
				ik := base.AppendInternalKey(nil, concurrentKey(w, i), base.SeqNum(i+1), base.KindSet)
				if err := tr.AddWith(&ins, ik, valueFor(ik)); err != nil {
					t.Error(err)
					return
				}
				done[w].Store(int64(i + 1))
			}
		}(w)
	}
	ww.Wait()
	stop.Store(true)
	rw.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := readRound(tr, &done, rand.New(rand.NewPCG(1, 2)), false); err != nil {
		t.Fatal(err)
	}
}

// readRound walks the whole tree (backward when back), checking order,
// values and completeness against the writers' progress before the walk,
// then gets and seeks some of those entries.
func readRound(tr *Tree, done *[3]atomic.Int64, rng *rand.Rand, back bool) error {
	var before [3]int
	for w := range before {
		before[w] = int(done[w].Load())
	}
	var seen [3]map[int]bool
	for w := range seen {
		seen[w] = map[int]bool{}
	}
	var it Iterator
	it.Init(tr)
	var prev []byte
	step := func() {
		if back {
			it.Prev()
		} else {
			it.Next()
		}
	}
	if back {
		it.Last()
	} else {
		it.First()
	}
	for ; it.Valid(); step() {
		k := it.Key()
		if prev != nil {
			c := base.CompareInternal(prev, k)
			if (!back && c >= 0) || (back && c <= 0) {
				return fmt.Errorf("order broken (back=%v): %s then %s", back, base.FormatKey(prev), base.FormatKey(k))
			}
		}
		if !bytes.Equal(it.Value(), valueFor(k)) {
			return fmt.Errorf("torn entry: %s holds %q", base.FormatKey(k), it.Value())
		}
		prev = k
		u := base.UserKey(k)
		w := int(binary.BigEndian.Uint32(u[8:]))
		seen[w][int(base.TrailerSeq(base.Trailer(k)))-1] = true
	}
	for w := range before {
		for i := 0; i < before[w]; i++ {
			if !seen[w][i] {
				return fmt.Errorf("walk (back=%v) missed writer %d's entry %d of %d finished before it began", back, w, i, before[w])
			}
		}
	}
	for range 50 {
		w := rng.IntN(3)
		if before[w] == 0 {
			continue
		}
		i := rng.IntN(before[w])
		u := concurrentKey(w, i)
		v, _, ok := tr.Get(u, base.SeqNumMax)
		if want := valueFor(base.AppendInternalKey(nil, u, base.SeqNum(i+1), base.KindSet)); !ok || !bytes.Equal(v, want) {
			return fmt.Errorf("Get of writer %d's entry %d = %q, %v", w, i, v, ok)
		}
		it.SeekGE(u, base.SearchTrailerAll)
		if !it.Valid() || !bytes.Equal(base.UserKey(it.Key()), u) {
			return fmt.Errorf("SeekGE to writer %d's entry %d missed it", w, i)
		}
	}
	return nil
}
