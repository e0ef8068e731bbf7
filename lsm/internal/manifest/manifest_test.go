package manifest

import (
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/tapewire/tapewire/lsm/internal/base"
)

func meta(num uint64, smallest, largest string, seq base.SeqNum) *FileMetadata {
	return &FileMetadata{
		FileNum:     num,
		Size:        100,
		Smallest:    base.AppendInternalKey(nil, []byte(smallest), seq, base.KindSet),
		Largest:     base.AppendInternalKey(nil, []byte(largest), seq, base.KindSet),
		SmallestSeq: seq, LargestSeq: seq,
	}
}

func TestEditRoundTrip(t *testing.T) {
	e := &VersionEdit{
		NextFileNum: 17, LastSeq: 1234, LastLSN: 0, HasLastLSN: true,
		Deleted: []DeletedFile{{0, 3}, {4, 9}},
		Added:   []NewFile{{1, meta(12, "a", "m", 7)}, {6, meta(13, "n", "z", 9)}},
	}
	var got VersionEdit
	if err := got.Decode(e.Encode(nil)); err != nil {
		t.Fatal(err)
	}
	if got.NextFileNum != 17 || got.LastSeq != 1234 || !got.HasLastLSN || got.LastLSN != 0 ||
		!reflect.DeepEqual(got.Deleted, e.Deleted) || len(got.Added) != 2 ||
		got.Added[1].Level != 6 || got.Added[1].Meta.FileNum != 13 || string(got.Added[1].Meta.Largest) != string(e.Added[1].Meta.Largest) {
		t.Fatalf("round trip: %+v", got)
	}
}

func TestDecodeRejectsDamage(t *testing.T) {
	good := (&VersionEdit{Added: []NewFile{{1, meta(1, "a", "b", 1)}}}).Encode(nil)
	for cut := 1; cut < len(good); cut++ {
		var e VersionEdit
		if err := e.Decode(good[:cut]); err == nil {
			t.Fatalf("edit cut at %d of %d decoded", cut, len(good))
		}
	}
	var e VersionEdit
	if err := e.Decode([]byte{99, 1}); err == nil {
		t.Fatal("unknown tag accepted")
	}
	if err := e.Decode([]byte{tagDeleted, NumLevels, 1}); err == nil {
		t.Fatal("level 7 accepted")
	}
	bad := (&VersionEdit{Added: []NewFile{{1, meta(1, "z", "a", 1)}}}).Encode(nil)
	if err := e.Decode(bad); err == nil {
		t.Fatal("inverted key range accepted")
	}
}

func TestApplyKeepsLevelInvariants(t *testing.T) {
	v := NewVersion(nil)
	v2, err := v.Apply(&VersionEdit{Added: []NewFile{
		{0, meta(3, "c", "f", 30)}, {0, meta(2, "a", "z", 20)},
		{1, meta(5, "m", "p", 5)}, {1, meta(4, "a", "c", 4)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if v2.Levels[0][0].FileNum != 2 || v2.Levels[1][0].FileNum != 4 {
		t.Fatalf("order wrong: L0 %v L1 %v", v2.Levels[0], v2.Levels[1])
	}
	if _, err := v2.Apply(&VersionEdit{Added: []NewFile{{1, meta(6, "c", "d", 6)}}}); err == nil {
		t.Fatal("L1 overlap on user key c accepted")
	}
	if _, err := v2.Apply(&VersionEdit{Deleted: []DeletedFile{{2, 4}}}); err == nil {
		t.Fatal("deleting a file from the wrong level accepted")
	}
	if f := v2.FindFile(1, []byte("n")); f == nil || f.FileNum != 5 {
		t.Fatalf("FindFile(n) = %v", f)
	}
	if f := v2.FindFile(1, []byte("e")); f != nil {
		t.Fatalf("FindFile(e) = %v, want none", f)
	}
}

func TestL0Depth(t *testing.T) {
	cases := []struct {
		name  string
		files [][2]string
		want  int
	}{
		{"empty", nil, 0},
		{"one", [][2]string{{"a", "b"}}, 1},
		{"disjoint time-ordered flushes", [][2]string{{"a", "b"}, {"c", "d"}, {"e", "f"}}, 1},
		{"sharing an end key", [][2]string{{"a", "c"}, {"c", "d"}}, 2},
		{"nested", [][2]string{{"a", "z"}, {"b", "c"}, {"d", "e"}, {"d", "d"}}, 3},
		{"partitioned flushes: events apart, state stacked", [][2]string{{"e/1", "e/2"}, {"s/a", "s/y"}, {"e/3", "e/4"}, {"s/b", "s/z"}, {"s/c", "s/c"}}, 3},
	}
	for _, c := range cases {
		e := &VersionEdit{}
		for i, f := range c.files {
			e.Added = append(e.Added, NewFile{0, meta(uint64(i+1), f[0], f[1], base.SeqNum(i+1))})
		}
		v, err := NewVersion(nil).Apply(e)
		if err != nil {
			t.Fatal(err)
		}
		if v.L0Depth != c.want {
			t.Errorf("%s: L0Depth %d, want %d", c.name, v.L0Depth, c.want)
		}
	}
}

func TestOverlapsExpandsL0(t *testing.T) {
	v, err := NewVersion(nil).Apply(&VersionEdit{Added: []NewFile{
		{0, meta(1, "a", "c", 1)}, {0, meta(2, "b", "f", 2)}, {0, meta(3, "e", "g", 3)}, {0, meta(4, "x", "z", 4)},
		{2, meta(5, "a", "b", 1)}, {2, meta(6, "d", "e", 1)}, {2, meta(7, "h", "k", 1)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	nums := func(fs []*FileMetadata) (out []uint64) {
		for _, f := range fs {
			out = append(out, f.FileNum)
		}
		return
	}
	if got := nums(v.Overlaps(0, []byte("a"), []byte("a"))); !reflect.DeepEqual(got, []uint64{1, 2, 3}) {
		t.Fatalf("L0 overlap of [a,a] = %v, want the chain 1,2,3", got)
	}
	if got := nums(v.Overlaps(2, []byte("c"), []byte("i"))); !reflect.DeepEqual(got, []uint64{6, 7}) {
		t.Fatalf("L2 overlap of [c,i] = %v", got)
	}
	if got := nums(v.Overlaps(2, []byte("l"), []byte("m"))); len(got) != 0 {
		t.Fatalf("L2 overlap of [l,m] = %v", got)
	}
}

// TestObsoleteOnlyWhenUnreferenced: a file removed by an edit is reported
// obsolete only after every version holding it is released, however the
// releases interleave.
func TestObsoleteOnlyWhenUnreferenced(t *testing.T) {
	var mu sync.Mutex
	var obsolete []uint64
	v0 := NewVersion(func(fs []*FileMetadata) {
		mu.Lock()
		defer mu.Unlock()
		for _, f := range fs {
			obsolete = append(obsolete, f.FileNum)
		}
	})
	v1, _ := v0.Apply(&VersionEdit{Added: []NewFile{{1, meta(1, "a", "b", 1)}, {1, meta(2, "c", "d", 1)}}})
	v0.Unref()
	reader := v1
	reader.Ref()
	v2, err := v1.Apply(&VersionEdit{Deleted: []DeletedFile{{1, 1}}, Added: []NewFile{{2, meta(3, "a", "b", 1)}}})
	if err != nil {
		t.Fatal(err)
	}
	v1.Unref()
	if len(obsolete) != 0 {
		t.Fatalf("files %v reported obsolete while a reader holds v1", obsolete)
	}
	reader.Unref()
	if fmt.Sprint(obsolete) != "[1]" {
		t.Fatalf("after the reader let go, obsolete = %v, want [1]", obsolete)
	}
	v2.Unref()
	if len(obsolete) != 3 {
		t.Fatalf("after the last version, obsolete = %v", obsolete)
	}
}

func FuzzDecodeEdit(f *testing.F) {
	f.Add((&VersionEdit{NextFileNum: 3, LastSeq: 9, HasLastLSN: true, LastLSN: 4,
		Deleted: []DeletedFile{{1, 2}}, Added: []NewFile{{1, meta(2, "a", "b", 1)}}}).Encode(nil))
	f.Add([]byte{tagAdded, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e VersionEdit
		if e.Decode(b) != nil {
			return
		}
		var again VersionEdit
		if err := again.Decode(e.Encode(nil)); err != nil {
			t.Fatalf("re-encoding a decoded edit fails: %v", err)
		}
	})
}
