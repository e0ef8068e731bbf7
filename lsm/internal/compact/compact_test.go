package compact

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/tapewire/tapewire/lsm/internal/base"
	"github.com/tapewire/tapewire/lsm/internal/manifest"
)

// sliceIter is a forward InternalIterator over sorted entries.
type sliceIter struct {
	keys, vals [][]byte
	pos        int
}

func (s *sliceIter) First() bool                { s.pos = 0; return s.pos < len(s.keys) }
func (s *sliceIter) Next() bool                 { s.pos++; return s.pos < len(s.keys) }
func (s *sliceIter) Last() bool                 { panic("unused") }
func (s *sliceIter) Prev() bool                 { panic("unused") }
func (s *sliceIter) SeekGE([]byte, uint64) bool { panic("unused") }
func (s *sliceIter) SeekLT([]byte, uint64) bool { panic("unused") }
func (s *sliceIter) Key() []byte                { return s.keys[s.pos] }
func (s *sliceIter) Value() []byte              { return s.vals[s.pos] }
func (s *sliceIter) Error() error               { return nil }
func (s *sliceIter) Close() error               { return nil }

// parse reads "a.SET.5 a.DEL.3 b.SET.1" into a sorted iterator.
func parse(spec string) *sliceIter {
	s := &sliceIter{}
	for _, f := range strings.Fields(spec) {
		p := strings.Split(f, ".")
		var seq base.SeqNum
		fmt.Sscan(p[2], &seq)
		kind := base.KindSet
		if p[1] == "DEL" {
			kind = base.KindDelete
		}
		s.keys = append(s.keys, base.AppendInternalKey(nil, []byte(p[0]), seq, kind))
		s.vals = append(s.vals, []byte(f))
	}
	sort.Sort(s)
	return s
}

func (s *sliceIter) Len() int           { return len(s.keys) }
func (s *sliceIter) Less(i, j int) bool { return base.CompareInternal(s.keys[i], s.keys[j]) < 0 }
func (s *sliceIter) Swap(i, j int) {
	s.keys[i], s.keys[j] = s.keys[j], s.keys[i]
	s.vals[i], s.vals[j] = s.vals[j], s.vals[i]
}

func TestIterSurvivors(t *testing.T) {
	cases := []struct {
		name      string
		in        string
		snapshots []base.SeqNum
		bottom    bool
		want      string
	}{
		{"newest version wins", "a.SET.1 a.SET.5 a.SET.3 b.SET.2", nil, false, "a.SET.5 b.SET.2"},
		{"tombstone kept above bottom", "a.DEL.5 a.SET.3", nil, false, "a.DEL.5"},
		{"tombstone and history dropped at bottom", "a.DEL.5 a.SET.3 b.SET.1", nil, true, "b.SET.1"},
		{"set over tombstone at bottom", "a.SET.7 a.DEL.5 a.SET.3", nil, true, "a.SET.7"},
		{"snapshot keeps the version it sees", "a.SET.9 a.SET.6 a.SET.2", []base.SeqNum{7}, false, "a.SET.9 a.SET.6"},
		{"snapshot between tombstone and value keeps both", "a.DEL.9 a.SET.2", []base.SeqNum{5}, true, "a.DEL.9 a.SET.2"},
		{"snapshot above tombstone lets it go at bottom", "a.DEL.4 a.SET.2", []base.SeqNum{5}, true, ""},
		{"two snapshots three stripes", "a.SET.10 a.SET.8 a.SET.6 a.SET.4 a.SET.2", []base.SeqNum{5, 9}, false, "a.SET.10 a.SET.8 a.SET.4"},
		{"snapshot at exactly the seq", "a.SET.5 a.SET.4", []base.SeqNum{5}, false, "a.SET.5 a.SET.4"},
		{"empty user key", ".SET.3 .SET.1 b.DEL.2", nil, true, ".SET.3"},
	}
	for _, c := range cases {
		it := NewIter(parse(c.in), c.snapshots, func([]byte) bool { return c.bottom })
		var got []string
		for ok := it.First(); ok; ok = it.Next() {
			got = append(got, string(it.Value()))
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("%s: got %q want %q", c.name, strings.Join(got, " "), c.want)
		}
	}
}

func meta(num uint64, smallest, largest string, seq base.SeqNum, size uint64) *manifest.FileMetadata {
	return &manifest.FileMetadata{FileNum: num, Size: size,
		Smallest:    base.AppendInternalKey(nil, []byte(smallest), seq, base.KindSet),
		Largest:     base.AppendInternalKey(nil, []byte(largest), seq, base.KindSet),
		SmallestSeq: seq, LargestSeq: seq}
}

func version(t *testing.T, files map[int][]*manifest.FileMetadata) *manifest.Version {
	e := &manifest.VersionEdit{}
	for l, fs := range files {
		for _, f := range fs {
			e.Added = append(e.Added, manifest.NewFile{Level: l, Meta: f})
		}
	}
	v, err := manifest.NewVersion(nil).Apply(e)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var opts = Options{L0Trigger: 4, L0FileThreshold: 100, BaseLevelBytes: 1000, LevelMultiplier: 10}

func nums(fs []*manifest.FileMetadata) (out []uint64) {
	for _, f := range fs {
		out = append(out, f.FileNum)
	}
	return
}

func TestPick(t *testing.T) {
	var cursors [manifest.NumLevels][]byte
	// Below every trigger, and the L0 file cannot move (L1 overlaps it):
	// nothing to do.
	v := version(t, map[int][]*manifest.FileMetadata{0: {meta(1, "a", "b", 2, 10)}, 1: {meta(2, "a", "c", 1, 10)}})
	if c := Pick(v, opts, &cursors, nil); c != nil {
		t.Fatalf("picked %+v below the trigger", c)
	}
	// Time-ordered flushes: four disjoint L0 files over an empty tree move
	// to the bottom in one edit.
	v = version(t, map[int][]*manifest.FileMetadata{0: {
		meta(1, "e/001", "e/100", 1, 10), meta(2, "e/101", "e/200", 2, 10),
		meta(3, "e/201", "e/300", 3, 10), meta(4, "e/301", "e/400", 4, 10)}})
	c := Pick(v, opts, &cursors, nil)
	if c == nil || c.StartLevel != 0 || !c.TrivialMove || len(c.Inputs[0]) != 4 || c.OutputLevel != manifest.NumLevels-1 {
		t.Fatalf("time-ordered L0: %+v", c)
	}
	// One such file moves at once, below the trigger.
	v = version(t, map[int][]*manifest.FileMetadata{0: {meta(1, "e/401", "e/500", 5, 10)}, 6: {meta(2, "e/001", "e/400", 1, 40)}})
	if c := Pick(v, opts, &cursors, nil); c == nil || !c.TrivialMove || c.OutputLevel != 6 || len(c.Inputs[0]) != 1 {
		t.Fatalf("one time-ordered L0 file: %+v", c)
	}
	// Overlapping L0 files, four deep at "c": a real compaction pulling in
	// the L1 overlap.
	v = version(t, map[int][]*manifest.FileMetadata{
		0: {meta(1, "a", "m", 1, 10), meta(2, "c", "d", 2, 10), meta(3, "c", "z", 3, 10), meta(4, "b", "c", 4, 10)},
		1: {meta(5, "a", "b", 0, 10), meta(6, "n", "o", 0, 10), meta(7, "y", "y", 0, 10)}})
	if v.L0Depth != 4 {
		t.Fatalf("L0 depth %d, want 4", v.L0Depth)
	}
	c = Pick(v, opts, &cursors, nil)
	if c == nil || c.TrivialMove || len(c.Inputs[0]) != 4 || fmt.Sprint(nums(c.Inputs[1])) != "[5 6 7]" {
		t.Fatalf("overlapping L0: %+v", c)
	}
	// An L0 file already compacting blocks another L0 compaction.
	v.Levels[0][0].Compacting = true
	if c := Pick(v, opts, &cursors, nil); c != nil {
		t.Fatalf("picked %+v while L0 is busy", c)
	}
	// L1 over its 1000-byte target: one file, round-robin, with L2 overlap.
	v = version(t, map[int][]*manifest.FileMetadata{
		1: {meta(1, "a", "c", 1, 600), meta(2, "d", "f", 1, 600)},
		2: {meta(3, "b", "b", 0, 10)}})
	cursors = [manifest.NumLevels][]byte{}
	c = Pick(v, opts, &cursors, nil)
	if c == nil || c.StartLevel != 1 || fmt.Sprint(nums(c.Inputs[0])) != "[1]" || fmt.Sprint(nums(c.Inputs[1])) != "[3]" || c.TrivialMove {
		t.Fatalf("L1 first pick: %+v", c)
	}
	c = Pick(v, opts, &cursors, nil)
	if c == nil || fmt.Sprint(nums(c.Inputs[0])) != "[2]" || !c.TrivialMove || c.OutputLevel != 6 {
		t.Fatalf("L1 second pick (cursor should advance; nothing below overlaps → move to the bottom): %+v", c)
	}
	// The most urgent level goes first.
	v = version(t, map[int][]*manifest.FileMetadata{
		0: {meta(1, "a", "b", 1, 1), meta(2, "a", "b", 2, 1), meta(3, "a", "b", 3, 1), meta(4, "a", "b", 4, 1)},
		2: {meta(5, "a", "z", 0, 50000)}})
	if c := Pick(v, opts, &cursors, nil); c == nil || c.StartLevel != 2 {
		t.Fatalf("L2 at score 5 should beat L0 at 1: %+v", c)
	}
}

// TestPickPartitionedFlushes: flushes cut at partition boundaries leave one
// table per partition in L0. The event-log tables of each topic lie after
// everything stored and go to the bottom; the state tables overlap each
// other and stay until their depth reaches the trigger, then compact
// without touching the event log.
func TestPickPartitionedFlushes(t *testing.T) {
	var cursors [manifest.NumLevels][]byte
	v := version(t, map[int][]*manifest.FileMetadata{
		0: {
			meta(10, "e/1/101", "e/1/200", 2, 100), meta(11, "e/2/051", "e/2/090", 2, 100), meta(12, "s/a", "s/y", 2, 10),
			meta(13, "e/1/201", "e/1/300", 3, 100), meta(14, "s/b", "s/z", 3, 10),
		},
		1: {meta(5, "s/a", "s/m", 1, 10)},
		6: {meta(1, "e/1/001", "e/1/100", 1, 1000), meta(2, "e/2/001", "e/2/050", 1, 1000)},
	})
	if v.L0Depth != 2 {
		t.Fatalf("L0 depth %d, want 2 (the two state tables)", v.L0Depth)
	}
	c := Pick(v, opts, &cursors, nil)
	if c == nil || !c.TrivialMove || c.OutputLevel != 6 || fmt.Sprint(nums(c.Inputs[0])) != "[10 11 13]" {
		t.Fatalf("event-log tables should move to L6 together: %+v", c)
	}
	// After the move only the state tables are left: depth 2 of 4, so
	// nothing more until two more flushes.
	e := &manifest.VersionEdit{}
	for _, f := range c.Inputs[0] {
		e.Deleted = append(e.Deleted, manifest.DeletedFile{Level: 0, FileNum: f.FileNum})
		e.Added = append(e.Added, manifest.NewFile{Level: 6, Meta: f})
	}
	v2, err := v.Apply(e)
	if err != nil {
		t.Fatal(err)
	}
	if c := Pick(v2, opts, &cursors, nil); c != nil {
		t.Fatalf("picked %+v with two state tables in L0", c)
	}
	// A rewriting compaction in progress whose range covers an event-log
	// table keeps it in L0 (its outputs may land anywhere in that range).
	running := &Compaction{StartLevel: 0, OutputLevel: 1, Inputs: [2][]*manifest.FileMetadata{{meta(20, "e/1/150", "e/1/160", 9, 1)}}}
	c = Pick(v, opts, &cursors, []*Compaction{running})
	if c == nil || fmt.Sprint(nums(c.Inputs[0])) != "[11 13]" {
		t.Fatalf("the table under a running compaction should stay: %+v", c)
	}
}

func TestMoveTarget(t *testing.T) {
	v := version(t, map[int][]*manifest.FileMetadata{
		0: {meta(1, "a", "c", 5, 1), meta(2, "b", "d", 6, 1), meta(3, "m", "n", 7, 1), meta(4, "x", "y", 8, 1), meta(5, "p", "q", 9, 1)},
		1: {meta(10, "x", "x", 2, 1)},
		3: {meta(11, "p", "p", 1, 1)},
		4: {meta(12, "r", "s", 1, 1)},
	})
	l0 := func(num uint64) *manifest.FileMetadata {
		for _, f := range v.Levels[0] {
			if f.FileNum == num {
				return f
			}
		}
		t.Fatalf("no L0 file %d", num)
		return nil
	}
	cases := []struct {
		name string
		from int
		f    *manifest.FileMetadata
		want int
	}{
		{"L0 file overlapping another L0 file stays", 0, l0(1), -1},
		{"L0 file clear of everything goes to the bottom", 0, l0(3), 6},
		{"L0 file overlapping L1 stays", 0, l0(4), -1},
		{"L0 file clear of L1 but over L3 goes one level", 0, l0(5), 1},
		{"L3 file clear below goes to the bottom", 3, meta(20, "c", "d", 1, 1), 6},
		{"L2 file over L4 goes one level", 2, meta(21, "r", "r", 1, 1), 3},
		{"L2 file over L3 stays", 2, meta(22, "p", "p", 1, 1), -1},
		{"bottom file stays", 6, meta(23, "a", "a", 1, 1), -1},
	}
	for _, c := range cases {
		if got := MoveTarget(v, c.from, c.f, nil); got != c.want {
			t.Errorf("%s: MoveTarget = %d, want %d", c.name, got, c.want)
		}
	}
	busy := []*Compaction{{StartLevel: 1, OutputLevel: 2, Inputs: [2][]*manifest.FileMetadata{{meta(30, "l", "o", 1, 1)}}}}
	if got := MoveTarget(v, 0, l0(3), busy); got != -1 {
		t.Errorf("L0 file inside a running compaction's range: MoveTarget = %d, want -1", got)
	}
	if got := MoveTarget(v, 3, meta(24, "m", "m", 1, 1), busy); got != 4 {
		t.Errorf("L3 file inside a running compaction's range: MoveTarget = %d, want 4 (one level, not the bottom)", got)
	}
}

// TestL0FileThreshold: disjoint L0 files that cannot move (L1 overlaps
// each) are one deep, so only the file-count threshold compacts them.
func TestL0FileThreshold(t *testing.T) {
	var cursors [manifest.NumLevels][]byte
	files := map[int][]*manifest.FileMetadata{}
	for i := range 6 {
		k := fmt.Sprintf("k%d", i)
		files[0] = append(files[0], meta(uint64(10+i), k, k, base.SeqNum(10+i), 1))
		files[1] = append(files[1], meta(uint64(20+i), k, k, 1, 1))
	}
	v := version(t, files)
	if v.L0Depth != 1 {
		t.Fatalf("depth %d, want 1", v.L0Depth)
	}
	if c := Pick(v, opts, &cursors, nil); c != nil {
		t.Fatalf("picked %+v: depth 1 and 6 files are below both triggers", c)
	}
	o := opts
	o.L0FileThreshold = 6
	if c := Pick(v, o, &cursors, nil); c == nil || c.StartLevel != 0 || c.TrivialMove || len(c.Inputs[0]) != 6 {
		t.Fatalf("6 files at a threshold of 6: %+v", c)
	}
}

func TestPickManual(t *testing.T) {
	v := version(t, map[int][]*manifest.FileMetadata{
		0: {meta(1, "k", "l", 5, 10)},
		1: {meta(2, "a", "c", 1, 10), meta(3, "d", "f", 1, 10), meta(4, "x", "z", 1, 10)},
		2: {meta(5, "e", "y", 0, 10)}})
	c, busy := PickManual(v, 1, []byte("b"), []byte("e"))
	if busy || c == nil || fmt.Sprint(nums(c.Inputs[0])) != "[2 3]" || fmt.Sprint(nums(c.Inputs[1])) != "[5]" || c.TrivialMove {
		t.Fatalf("manual L1 [b,e]: %+v busy=%v", c, busy)
	}
	if c, _ := PickManual(v, 3, nil, nil); c != nil {
		t.Fatalf("manual on empty L3: %+v", c)
	}
	if c, _ := PickManual(v, 0, []byte("a"), []byte("b")); c != nil {
		t.Fatalf("manual L0 outside its range: %+v", c)
	}
	if c, _ := PickManual(v, 0, nil, nil); c == nil || len(c.Inputs[0]) != 1 {
		t.Fatalf("manual L0 unbounded: %+v", c)
	}
	v.Levels[2][0].Compacting = true
	if c, busy := PickManual(v, 1, []byte("d"), []byte("d")); c != nil || !busy {
		t.Fatalf("manual over a busy file: %+v busy=%v", c, busy)
	}
}
