package sstable

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/tapewire/tapewire/lsm/bloom"
	"github.com/tapewire/tapewire/lsm/internal/base"
)

type entry struct {
	ikey  []byte
	value []byte
}

// genEntries returns n entries in internal key order over a key space of
// `keys` user keys, several versions each, some deletions.
func genEntries(rng *rand.Rand, n, keys int) []entry {
	seen := map[string]bool{}
	var es []entry
	for len(es) < n {
		uk := fmt.Sprintf("user%06d", rng.IntN(keys))
		if rng.IntN(4) == 0 {
			uk += "/suffix"
		}
		seq := base.SeqNum(rng.IntN(1000) + 1)
		kind := base.KindSet
		if rng.IntN(8) == 0 {
			kind = base.KindDelete
		}
		ik := base.AppendInternalKey(nil, []byte(uk), seq, kind)
		if seen[string(base.UserKey(ik))+fmt.Sprint(seq)] {
			continue
		}
		seen[string(base.UserKey(ik))+fmt.Sprint(seq)] = true
		var v []byte
		if kind == base.KindSet {
			v = []byte(fmt.Sprintf("value-%s-%d-%s", uk, seq, bytes.Repeat([]byte{'x'}, rng.IntN(40))))
		}
		es = append(es, entry{ik, v})
	}
	sort.Slice(es, func(i, j int) bool { return base.CompareInternal(es[i].ikey, es[j].ikey) < 0 })
	return es
}

func build(t testing.TB, es []entry, fileNum uint64, opts WriterOptions) []byte {
	t.Helper()
	var out bytes.Buffer
	w := NewWriter(&out, fileNum, opts)
	for _, e := range es {
		if err := w.Add(e.ikey, e.value); err != nil {
			t.Fatal(err)
		}
	}
	props, size, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if size != uint64(out.Len()) {
		t.Fatalf("Finish reports %d bytes, wrote %d", size, out.Len())
	}
	if props.NumEntries != uint64(len(es)) {
		t.Fatalf("props.NumEntries = %d, want %d", props.NumEntries, len(es))
	}
	return out.Bytes()
}

var optionSets = []WriterOptions{
	{},
	{BlockSizeBytes: 64, RestartInterval: 1},
	{BlockSizeBytes: 256, RestartInterval: 3, BloomBitsPerKey: -1},
	{BlockSizeBytes: 32 << 10, RestartInterval: 16, BloomBitsPerKey: 4},
}

func TestRoundTripIterateAndSeek(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for oi, opts := range optionSets {
		es := genEntries(rng, 3000, 800)
		data := build(t, es, 7, opts)
		r, err := Open(data, 7, "000007.sst", nil)
		if err != nil {
			t.Fatalf("options %d: %v", oi, err)
		}
		p := r.Properties()
		if !bytes.Equal(p.SmallestKey, es[0].ikey) || !bytes.Equal(p.LargestKey, es[len(es)-1].ikey) {
			t.Fatalf("options %d: key bounds wrong", oi)
		}
		it := r.NewIter()
		i := 0
		for ok := it.First(); ok; ok = it.Next() {
			if !bytes.Equal(it.Key(), es[i].ikey) || !bytes.Equal(it.Value(), es[i].value) {
				t.Fatalf("options %d entry %d: got %s want %s", oi, i, base.FormatKey(it.Key()), base.FormatKey(es[i].ikey))
			}
			i++
		}
		if it.Error() != nil || i != len(es) {
			t.Fatalf("options %d: forward scan stopped at %d of %d: %v", oi, i, len(es), it.Error())
		}
		i = len(es) - 1
		for ok := it.Last(); ok; ok = it.Prev() {
			if !bytes.Equal(it.Key(), es[i].ikey) {
				t.Fatalf("options %d backward entry %d: got %s want %s", oi, i, base.FormatKey(it.Key()), base.FormatKey(es[i].ikey))
			}
			i--
		}
		if i != -1 {
			t.Fatalf("options %d: backward scan stopped at %d", oi, i)
		}
		for q := 0; q < 500; q++ {
			uk := []byte(fmt.Sprintf("user%06d", rng.IntN(900)))
			tr := base.MakeTrailer(base.SeqNum(rng.IntN(1100)), base.KindMax)
			ge := sort.Search(len(es), func(j int) bool { return base.CompareSearch(es[j].ikey, uk, tr) >= 0 })
			if ok := it.SeekGE(uk, tr); ok != (ge < len(es)) || (ok && !bytes.Equal(it.Key(), es[ge].ikey)) {
				t.Fatalf("options %d: SeekGE(%q) wrong (want index %d)", oi, uk, ge)
			}
			if ge < len(es) && ge+1 < len(es) {
				if !it.Next() || !bytes.Equal(it.Key(), es[ge+1].ikey) {
					t.Fatalf("options %d: Next after SeekGE wrong", oi)
				}
			}
			lt := ge - 1
			if ok := it.SeekLT(uk, tr); ok != (lt >= 0) || (ok && !bytes.Equal(it.Key(), es[lt].ikey)) {
				t.Fatalf("options %d: SeekLT(%q) wrong (want index %d, valid=%v)", oi, uk, lt, ok)
			}
			if lt > 0 {
				if !it.Prev() || !bytes.Equal(it.Key(), es[lt-1].ikey) {
					t.Fatalf("options %d: Prev after SeekLT wrong", oi)
				}
			}
		}
	}
}

// oracleGet is the newest entry of ukey below seqLimit in es.
func oracleGet(es []entry, ukey []byte, limit base.SeqNum) (entry, bool) {
	tr := base.MakeTrailer(limit-1, base.KindMax)
	j := sort.Search(len(es), func(j int) bool { return base.CompareSearch(es[j].ikey, ukey, tr) >= 0 })
	if j < len(es) && bytes.Equal(base.UserKey(es[j].ikey), ukey) {
		return es[j], true
	}
	return entry{}, false
}

func TestGetMatchesOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for oi, opts := range optionSets {
		es := genEntries(rng, 2000, 500)
		r, err := Open(build(t, es, 9, opts), 9, "000009.sst", nil)
		if err != nil {
			t.Fatal(err)
		}
		var s GetScratch
		for q := 0; q < 3000; q++ {
			uk := []byte(fmt.Sprintf("user%06d", rng.IntN(600)))
			if rng.IntN(4) == 0 {
				uk = append(uk, "/suffix"...)
			}
			limit := base.SeqNum(rng.IntN(1100) + 1)
			v, kind, found, err := r.Get(uk, bloom.Hash(uk), limit, &s)
			if err != nil {
				t.Fatal(err)
			}
			want, ok := oracleGet(es, uk, limit)
			if found != ok || (ok && (kind != base.TrailerKind(base.Trailer(want.ikey)) || !bytes.Equal(v, want.value))) {
				t.Fatalf("options %d: Get(%q, <%d) = %q %v %v, want %s %q", oi, uk, limit, v, kind, found, base.FormatKey(want.ikey), want.value)
			}
		}
	}
}

func TestGetDoesNotAllocate(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	es := genEntries(rng, 5000, 2000)
	r, err := Open(build(t, es, 1, WriterOptions{}), 1, "000001.sst", nil)
	if err != nil {
		t.Fatal(err)
	}
	var s GetScratch
	uk := base.UserKey(es[len(es)/2].ikey)
	h := bloom.Hash(uk)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, _, found, err := r.Get(uk, h, base.SeqNumMax, &s); err != nil || !found {
			t.Fatal("lost key")
		}
	})
	if allocs != 0 {
		t.Fatalf("Reader.Get allocates %.1f times per call", allocs)
	}
}

func TestBloomCheckedBeforeBlocks(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	es := genEntries(rng, 2000, 1000)
	stats := new(Stats)
	r, err := Open(build(t, es, 1, WriterOptions{}), 1, "000001.sst", stats)
	if err != nil {
		t.Fatal(err)
	}
	verifiedAtOpen := stats.BlocksVerified.Load()
	var s GetScratch
	for i := 0; i < 1000; i++ {
		uk := []byte(fmt.Sprintf("absent%06d", i))
		if _, _, found, _ := r.Get(uk, bloom.Hash(uk), base.SeqNumMax, &s); found {
			t.Fatal("found an absent key")
		}
	}
	useful, fp := stats.BloomUseful.Load(), stats.BloomFalsePositive.Load()
	if useful+fp != 1000 || useful < 950 {
		t.Fatalf("bloom useful %d false positive %d over 1000 absent keys", useful, fp)
	}
	if read := stats.BlocksVerified.Load() - verifiedAtOpen; read > fp {
		t.Fatalf("%d data blocks read for %d filter false positives", read, fp)
	}
}

// TestCorruptionIsDetected flips one bit at many offsets of a table: every
// flip must either be reported as a corruption naming the file (at Open or on
// reading the touched block) or — never — return a wrong answer.
func TestCorruptionIsDetected(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	es := genEntries(rng, 400, 200)
	clean := build(t, es, 42, WriterOptions{BlockSizeBytes: 512})
	step := max(1, len(clean)/300)
	for off := 0; off < len(clean); off += step {
		data := append([]byte(nil), clean...)
		data[off] ^= 1 << (off % 8)
		stats := new(Stats)
		r, err := Open(data, 42, "000042.sst", stats)
		if err != nil {
			var ce *base.CorruptionError
			if !errors.As(err, &ce) || ce.File != "000042.sst" {
				t.Fatalf("flip at %d: open error %v does not name the file", off, err)
			}
			continue
		}
		it := r.NewIter()
		i := 0
		for ok := it.First(); ok; ok = it.Next() {
			if !bytes.Equal(it.Key(), es[i].ikey) || !bytes.Equal(it.Value(), es[i].value) {
				t.Fatalf("flip at %d: scan returned wrong entry %d", off, i)
			}
			i++
		}
		err = it.Error()
		if i == len(es) {
			// Every block read back intact: the flip must have been in a
			// byte no read depends on, which this format does not have.
			t.Fatalf("flip at %d went unnoticed", off)
		}
		var ce *base.CorruptionError
		if !errors.As(err, &ce) || ce.File != "000042.sst" || ce.Offset < 0 || ce.Offset > int64(off) {
			t.Fatalf("flip at %d: scan error %v should name the file and a block offset at or before the flip", off, err)
		}
		if stats.ChecksumFailures.Load() == 0 {
			t.Fatalf("flip at %d: no checksum failure counted", off)
		}
	}
}

func TestChecksumSeededWithFileNumber(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	data := build(t, genEntries(rng, 100, 50), 5, WriterOptions{})
	if _, err := Open(data, 6, "000006.sst", nil); !errors.Is(err, base.ErrCorruption) {
		t.Fatalf("table 5 opened as table 6: %v", err)
	}
}

func TestSeparator(t *testing.T) {
	ik := func(s string, seq base.SeqNum) []byte {
		return base.AppendInternalKey(nil, []byte(s), seq, base.KindSet)
	}
	cases := []struct {
		last, next []byte
		wantUser   string
		shortened  bool
	}{
		{ik("abcdef", 5), ik("abzzz", 5), "abd", true},
		{ik("abc", 5), ik("abd", 5), "abc", false},
		{ik("abc", 5), ik("abc", 3), "abc", false},
		{ik("ab", 5), ik("abc", 5), "ab", false},
		{ik("a\xff\xff", 5), ik("b", 5), "a\xff\xff", false},
		{ik("zzz", 5), nil, "zzz", false},
	}
	for _, c := range cases {
		sep := separator(nil, c.last, c.next)
		if string(base.UserKey(sep)) != c.wantUser {
			t.Errorf("separator(%s, %v) = %s, want user key %q", base.FormatKey(c.last), c.next, base.FormatKey(sep), c.wantUser)
		}
		if base.CompareInternal(c.last, sep) > 0 || (c.next != nil && base.CompareInternal(sep, c.next) >= 0) {
			t.Errorf("separator %s not in [%s, %s)", base.FormatKey(sep), base.FormatKey(c.last), base.FormatKey(c.next))
		}
		if c.shortened && bytes.Equal(sep, c.last) {
			t.Errorf("separator of %s not shortened", base.FormatKey(c.last))
		}
	}
}

func TestWriterRejectsDisorder(t *testing.T) {
	w := NewWriter(new(bytes.Buffer), 1, WriterOptions{})
	if err := w.Add(base.AppendInternalKey(nil, []byte("b"), 1, base.KindSet), nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(base.AppendInternalKey(nil, []byte("a"), 1, base.KindSet), nil); err == nil {
		t.Fatal("out-of-order key accepted")
	}
}

// TestBlockSizePerKey: one table, small blocks for one key range and large
// ones for another.
func TestBlockSizePerKey(t *testing.T) {
	var es []entry
	for i := 0; i < 2000; i++ {
		for _, p := range []string{"e/", "s/"} {
			es = append(es, entry{base.AppendInternalKey(nil, []byte(fmt.Sprintf("%s%06d", p, i)), 1, base.KindSet), bytes.Repeat([]byte{'v'}, 50)})
		}
	}
	sort.Slice(es, func(i, j int) bool { return base.CompareInternal(es[i].ikey, es[j].ikey) < 0 })
	opts := WriterOptions{BlockSizeBytes: 4096, BlockSizeFor: func(k []byte) int {
		if bytes.HasPrefix(k, []byte("e/")) {
			return 32 << 10
		}
		return 0
	}}
	r, err := Open(build(t, es, 1, opts), 1, "t.sst", nil)
	if err != nil {
		t.Fatal(err)
	}
	var small, large int
	for _, e := range r.index {
		switch {
		case e.handle.Length >= 30<<10:
			large++
		case e.handle.Length <= 4096+200:
			small++
		}
	}
	if large < 3 || small < 20 || large+small < len(r.index)-1 { // the last e/ block may be partial
		t.Fatalf("%d large and %d small blocks of %d", large, small, len(r.index))
	}
	var s GetScratch
	for _, k := range []string{"e/001234", "s/001234"} {
		if _, _, found, err := r.Get([]byte(k), bloom.Hash([]byte(k)), base.SeqNumMax, &s); !found || err != nil {
			t.Fatalf("Get(%s): %v %v", k, found, err)
		}
	}
}

// TestFindBlockMatchesPlainSearch checks the fence-accelerated index search
// against a plain binary search over the separators, for key sets sharing
// long prefixes, keys shorter than the shared prefix, and probes outside it.
func TestFindBlockMatchesPlainSearch(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	prefixes := []string{"", "e/", "e/0001/", "e/0001/0000000", "s/order/"}
	for _, prefix := range prefixes {
		var es []entry
		seen := map[string]bool{}
		for len(es) < 3000 {
			k := prefix + fmt.Sprintf("%x", rng.Uint64()>>uint(rng.IntN(60)))
			switch rng.IntN(6) {
			case 0: // long shared segments past the common prefix: equal fences
				k = fmt.Sprintf("%saccount/%06d", prefix, rng.IntN(100000))
			case 1:
				k = prefix + "\xff\xff\xff\xff\xff\xff\xff\xff" + fmt.Sprint(rng.IntN(1000))
			}
			if rng.IntN(10) == 0 {
				k = k[:rng.IntN(len(k)+1)]
			}
			if seen[k] {
				continue
			}
			seen[k] = true
			es = append(es, entry{base.AppendInternalKey(nil, []byte(k), 5, base.KindSet), []byte("v")})
		}
		sort.Slice(es, func(i, j int) bool { return base.CompareInternal(es[i].ikey, es[j].ikey) < 0 })
		r, err := Open(build(t, es, 1, WriterOptions{BlockSizeBytes: 64, RestartInterval: 1}), 1, "t.sst", nil)
		if err != nil {
			t.Fatal(err)
		}
		for q := 0; q < 5000; q++ {
			var probe []byte
			switch rng.IntN(5) {
			case 4:
				probe = []byte(prefix + "\xff\xff\xff\xff\xff\xff\xff\xff\xff")
			case 0:
				probe = base.UserKey(es[rng.IntN(len(es))].ikey)
			case 1:
				probe = []byte(prefix[:rng.IntN(len(prefix)+1)])
			case 2:
				probe = []byte(fmt.Sprintf("%s%x", prefix, rng.Uint64()>>uint(rng.IntN(64))))
			default:
				probe = []byte(fmt.Sprintf("%x", rng.Uint64()))
			}
			tr := base.MakeTrailer(base.SeqNum(rng.IntN(10)), base.KindMax)
			want := sort.Search(len(r.index), func(i int) bool { return base.CompareSearch(r.index[i].sep, probe, tr) >= 0 })
			if got := r.findBlock(probe, tr); got != want {
				t.Fatalf("prefix %q, probe %q: findBlock = %d, plain search = %d", prefix, probe, got, want)
			}
		}
	}
}
