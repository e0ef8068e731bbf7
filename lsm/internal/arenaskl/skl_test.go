package arenaskl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/tapewire/tapewire/lsm/internal/base"
)

func newList(t testing.TB, size int) *Skiplist {
	t.Helper()
	a, err := NewArena(make([]byte, size))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(a)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ikey(k string, seq base.SeqNum, kind base.Kind) []byte {
	return base.AppendInternalKey(nil, []byte(k), seq, kind)
}

func TestOrderAndIteration(t *testing.T) {
	s := newList(t, 1<<20)
	var want [][]byte
	for i := 0; i < 500; i++ {
		k := ikey(fmt.Sprintf("k%03d", (i*37)%250), base.SeqNum(i+1), base.KindSet)
		if err := s.Add(k, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		want = append(want, k)
	}
	sort.Slice(want, func(i, j int) bool { return base.CompareInternal(want[i], want[j]) < 0 })
	var it Iterator
	it.Init(s)
	i := 0
	for it.First(); it.Valid(); it.Next() {
		if !bytes.Equal(it.Key(), want[i]) {
			t.Fatalf("entry %d: got %s want %s", i, base.FormatKey(it.Key()), base.FormatKey(want[i]))
		}
		i++
	}
	if i != len(want) {
		t.Fatalf("forward visited %d of %d", i, len(want))
	}
	i = len(want) - 1
	for it.Last(); it.Valid(); it.Prev() {
		if !bytes.Equal(it.Key(), want[i]) {
			t.Fatalf("backward entry %d: got %s want %s", i, base.FormatKey(it.Key()), base.FormatKey(want[i]))
		}
		i--
	}
	if i != -1 {
		t.Fatalf("backward stopped at %d", i)
	}
	it.SeekGE([]byte("k100"), base.MakeTrailer(base.SeqNumMax, base.KindMax))
	if !it.Valid() || string(base.UserKey(it.Key())) != "k100" {
		t.Fatalf("SeekGE k100 landed on %v", it.Valid())
	}
	it.SeekLT([]byte("k100"), base.MakeTrailer(base.SeqNumMax, base.KindMax))
	if !it.Valid() || string(base.UserKey(it.Key())) != "k099" {
		t.Fatalf("SeekLT k100 landed on %s", base.FormatKey(it.Key()))
	}
	it.SeekLT([]byte("a"), base.MakeTrailer(base.SeqNumMax, base.KindMax))
	if it.Valid() {
		t.Fatal("SeekLT before the first key is valid")
	}
}

func TestGetVisibility(t *testing.T) {
	s := newList(t, 1<<16)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Add(ikey("a", 5, base.KindSet), []byte("v5")))
	must(s.Add(ikey("a", 9, base.KindDelete), nil))
	must(s.Add(ikey("a", 12, base.KindSet), []byte("v12")))
	must(s.Add(ikey("b", 3, base.KindSet), []byte("b3")))
	cases := []struct {
		key   string
		limit base.SeqNum
		found bool
		kind  base.Kind
		value string
	}{
		{"a", 5, false, 0, ""},
		{"a", 6, true, base.KindSet, "v5"},
		{"a", 9, true, base.KindSet, "v5"},
		{"a", 10, true, base.KindDelete, ""},
		{"a", 13, true, base.KindSet, "v12"},
		{"a", base.SeqNumMax, true, base.KindSet, "v12"},
		{"b", 4, true, base.KindSet, "b3"},
		{"ab", base.SeqNumMax, false, 0, ""},
		{"c", base.SeqNumMax, false, 0, ""},
	}
	for _, c := range cases {
		v, kind, found := s.Get([]byte(c.key), c.limit)
		if found != c.found || (found && (kind != c.kind || string(v) != c.value)) {
			t.Errorf("Get(%q, below %d) = %q %v %v; want %q %v %v", c.key, c.limit, v, kind, found, c.value, c.kind, c.found)
		}
	}
	if err := s.Add(ikey("a", 9, base.KindDelete), nil); !errors.Is(err, ErrRecordExists) {
		t.Fatalf("duplicate Add: %v", err)
	}
}

// TestInserterMatchesSortedOrder mixes runs of ascending keys (the cached
// fast path), jumps backwards (stale splice) and duplicates through one
// Inserter and checks the list against a sorted copy.
func TestInserterMatchesSortedOrder(t *testing.T) {
	s := newList(t, 4<<20)
	var ins Inserter
	seen := map[string]bool{}
	var want [][]byte
	k := 0
	for i := 0; i < 5000; i++ {
		switch {
		case i%97 == 0:
			k -= 300 // jump back: the cached splice no longer brackets the key
		case i%13 == 0:
			k += 50
		default:
			k++
		}
		if k < 0 {
			k = 0
		}
		ik := ikey(fmt.Sprintf("key%07d", k), 1, base.KindSet)
		err := s.AddWith(&ins, ik, nil)
		if seen[string(ik)] {
			if !errors.Is(err, ErrRecordExists) {
				t.Fatalf("duplicate %s through the inserter: %v", base.FormatKey(ik), err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[string(ik)] = true
		want = append(want, ik)
	}
	sort.Slice(want, func(i, j int) bool { return base.CompareInternal(want[i], want[j]) < 0 })
	var it Iterator
	it.Init(s)
	i := 0
	for it.First(); it.Valid(); it.Next() {
		if i >= len(want) || !bytes.Equal(it.Key(), want[i]) {
			t.Fatalf("entry %d: got %s", i, base.FormatKey(it.Key()))
		}
		i++
	}
	if i != len(want) {
		t.Fatalf("list holds %d of %d keys", i, len(want))
	}
	// An Inserter used on another list starts over.
	other := newList(t, 1<<16)
	if err := other.AddWith(&ins, ikey("a", 1, base.KindSet), nil); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := other.Get([]byte("a"), base.SeqNumMax); !ok {
		t.Fatal("insert into a second list through a used Inserter lost")
	}
	// Ascending keys search for the first insert and when the list grows
	// taller than the cached splice; the rest link at the cached splice.
	asc := newList(t, 1<<20)
	var fresh Inserter
	for i := range 1000 {
		if err := asc.AddWith(&fresh, ikey(fmt.Sprintf("key%07d", i), 1, base.KindSet), nil); err != nil {
			t.Fatal(err)
		}
	}
	if h := uint64(asc.height.Load()); fresh.Searches > h {
		t.Fatalf("1000 ascending inserts searched %d times, more than the list's height %d", fresh.Searches, h)
	}
}

// TestStaleSpliceSearchesAgain: two Inserters take turns appending runs of
// ascending keys (two Batches of one writer). A splice whose gap another
// Inserter filled is not trusted: it searches once instead of linking
// through a failed CAS and a walk over the whole run in the gap.
func TestStaleSpliceSearchesAgain(t *testing.T) {
	s := newList(t, 4<<20)
	var a, b Inserter
	k := 0
	add := func(ins *Inserter, n int) {
		for range n {
			if err := s.AddWith(ins, ikey(fmt.Sprintf("key%07d", k), 1, base.KindSet), nil); err != nil {
				t.Fatal(err)
			}
			k++
		}
	}
	add(&a, 100)
	add(&b, 5000)
	before := a.Searches
	add(&a, 100)
	if a.Searches != before+1 {
		t.Fatalf("a stale splice searched %d times on the next run, want once", a.Searches-before)
	}
	var it Iterator
	it.Init(s)
	i := 0
	for it.First(); it.Valid(); it.Next() {
		if want := fmt.Sprintf("key%07d", i); string(base.UserKey(it.Key())) != want {
			t.Fatalf("entry %d is %s, want %s", i, base.FormatKey(it.Key()), want)
		}
		i++
	}
	if i != k {
		t.Fatalf("list holds %d of %d keys", i, k)
	}
}

func TestArenaFull(t *testing.T) {
	s := newList(t, 4096)
	var err error
	n := 0
	for err == nil {
		err = s.Add(ikey(fmt.Sprintf("key%06d", n), 1, base.KindSet), make([]byte, 100))
		n++
	}
	if !errors.Is(err, ErrArenaFull) {
		t.Fatalf("filling a 4 KiB arena ended with %v", err)
	}
	if n < 10 || n > 40 {
		t.Fatalf("a 4 KiB arena held %d entries of ~125 B", n)
	}
	// Everything acknowledged is still readable.
	for i := 0; i < n-1; i++ {
		if _, _, ok := s.Get([]byte(fmt.Sprintf("key%06d", i)), base.SeqNumMax); !ok {
			t.Fatalf("key %d lost after ErrArenaFull", i)
		}
	}
}

// TestConcurrentWritersAndReaders runs writers on disjoint keys while readers
// iterate; readers must always see a strictly increasing sequence and every
// writer's keys must be present at the end.
func TestConcurrentWritersAndReaders(t *testing.T) {
	s := newList(t, 8<<20)
	const writers, perWriter = 4, 2000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readerErr error
	var readerOnce sync.Once
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var it Iterator
			it.Init(s)
			for {
				select {
				case <-stop:
					return
				default:
				}
				var prev []byte
				for it.First(); it.Valid(); it.Next() {
					if prev != nil && base.CompareInternal(prev, it.Key()) >= 0 {
						readerOnce.Do(func() {
							readerErr = fmt.Errorf("order broken: %s then %s", base.FormatKey(prev), base.FormatKey(it.Key()))
						})
						return
					}
					prev = it.Key()
				}
			}
		}()
	}
	var ww sync.WaitGroup
	for w := 0; w < writers; w++ {
		ww.Add(1)
		go func(w int) {
			defer ww.Done()
			var k [8]byte
			// Each writer appends through its own Inserter while the others
			// link nodes into its cached gaps: the CAS-failure path runs.
			var ins Inserter
			for i := 0; i < perWriter; i++ {
				binary.BigEndian.PutUint64(k[:], uint64(i*writers+w))
				if err := s.AddWith(&ins, base.AppendInternalKey(nil, k[:], base.SeqNum(i+1), base.KindSet), k[:]); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	ww.Wait()
	close(stop)
	wg.Wait()
	if readerErr != nil {
		t.Fatal(readerErr)
	}
	var it Iterator
	it.Init(s)
	n := 0
	for it.First(); it.Valid(); it.Next() {
		if got := binary.BigEndian.Uint64(base.UserKey(it.Key())); got != uint64(n) {
			t.Fatalf("entry %d has key %d", n, got)
		}
		n++
	}
	if n != writers*perWriter {
		t.Fatalf("found %d of %d entries", n, writers*perWriter)
	}
}

func TestAddAndGetDoNotAllocate(t *testing.T) {
	s := newList(t, 64<<20)
	var k [16]byte
	ik := make([]byte, 0, 24)
	val := make([]byte, 100)
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		binary.BigEndian.PutUint64(k[:], uint64(i))
		i++
		ik = base.AppendInternalKey(ik[:0], k[:], base.SeqNum(i), base.KindSet)
		if err := s.Add(ik, val); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Add allocates %.1f times per call", allocs)
	}
	allocs = testing.AllocsPerRun(1000, func() {
		if _, _, ok := s.Get(k[:], base.SeqNumMax); !ok {
			t.Fatal("missing")
		}
	})
	if allocs != 0 {
		t.Fatalf("Get allocates %.1f times per call", allocs)
	}
}

// BenchmarkAddSequential measures single-threaded inserts of 16-byte
// time-ordered keys with 100-byte values (the 3 M/s target).
func BenchmarkAddSequential(b *testing.B) {
	benchAdd(b, func(i int) uint64 { return uint64(i) })
}

// BenchmarkAddRandom is the same with keys in random order.
func BenchmarkAddRandom(b *testing.B) {
	benchAdd(b, func(i int) uint64 { return uint64(i) * 0x9E3779B97F4A7C15 })
}

// BenchmarkAddWithSequential is the sequential case with a cached splice,
// as the memtable inserts (the fast path for time-ordered keys).
func BenchmarkAddWithSequential(b *testing.B) {
	var ins Inserter
	benchAddWith(b, func(i int) uint64 { return uint64(i) }, &ins)
}

func benchAdd(b *testing.B, keyOf func(int) uint64) { benchAddWith(b, keyOf, nil) }

func benchAddWith(b *testing.B, keyOf func(int) uint64, ins *Inserter) {
	val := make([]byte, 100)
	var k [16]byte
	ik := make([]byte, 0, 24)
	var s *Skiplist
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%400_000 == 0 {
			b.StopTimer()
			s = newList(b, 64<<20)
			b.StartTimer()
		}
		binary.BigEndian.PutUint64(k[:8], keyOf(i))
		ik = base.AppendInternalKey(ik[:0], k[:], base.SeqNum(i+1), base.KindSet)
		var err error
		if ins != nil {
			err = s.AddWith(ins, ik, val)
		} else {
			err = s.Add(ik, val)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
