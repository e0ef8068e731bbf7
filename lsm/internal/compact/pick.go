package compact

import (
	"bytes"
	"sort"

	"github.com/tapewire/tapewire/lsm/internal/manifest"
)

// Options are the shape of the tree.
type Options struct {
	// L0Trigger is the L0 depth (Version.L0Depth: files holding one key)
	// that triggers an L0 compaction (4).
	L0Trigger int
	// L0FileThreshold is the L0 file count that triggers one whatever the
	// depth (100): disjoint L0 files that cannot move down (L1 overlaps
	// them) still cost every iterator a table each.
	L0FileThreshold int
	// BaseLevelBytes is L1's target size (64 MiB).
	BaseLevelBytes uint64
	// LevelMultiplier is the growth factor between levels (10).
	LevelMultiplier uint64
}

// MaxBytes is the target size of level (>= 1).
func (o Options) MaxBytes(level int) uint64 {
	n := o.BaseLevelBytes
	for l := 1; l < level; l++ {
		n *= o.LevelMultiplier
	}
	return n
}

// Compaction is one unit of work: Inputs[0] from StartLevel and Inputs[1]
// from StartLevel+1, merged into OutputLevel. A trivial move only re-links
// Inputs[0] to OutputLevel.
type Compaction struct {
	StartLevel  int
	OutputLevel int
	Inputs      [2][]*manifest.FileMetadata
	TrivialMove bool
	Score       float64
	// Manual is set for compactions asked for by Compact(range).
	Manual bool
}

// Files returns every input file.
func (c *Compaction) Files() []*manifest.FileMetadata {
	return append(append([]*manifest.FileMetadata(nil), c.Inputs[0]...), c.Inputs[1]...)
}

// Bounds is the user-key range the inputs cover.
func (c *Compaction) Bounds() (smallest, largest []byte) {
	for _, fs := range c.Inputs {
		for _, f := range fs {
			if smallest == nil || bytes.Compare(f.SmallestUser(), smallest) < 0 {
				smallest = f.SmallestUser()
			}
			if largest == nil || bytes.Compare(f.LargestUser(), largest) > 0 {
				largest = f.LargestUser()
			}
		}
	}
	return smallest, largest
}

func anyCompacting(fs []*manifest.FileMetadata) bool {
	for _, f := range fs {
		if f.Compacting {
			return true
		}
	}
	return false
}

// Scores returns the score of every level (0 for the last level). L0's is
// the larger of its depth over L0Trigger and its file count over
// L0FileThreshold.
func Scores(v *manifest.Version, o Options) [manifest.NumLevels]float64 {
	var s [manifest.NumLevels]float64
	s[0] = float64(v.L0Depth) / float64(o.L0Trigger)
	if o.L0FileThreshold > 0 {
		s[0] = max(s[0], float64(len(v.Levels[0]))/float64(o.L0FileThreshold))
	}
	for l := 1; l < manifest.NumLevels-1; l++ {
		s[l] = float64(v.LevelBytes(l)) / float64(o.MaxBytes(l))
	}
	return s
}

// Pick chooses the most urgent compaction, or nil if no level is over its
// target or every candidate touches a file already being compacted. cursors
// holds, per level, the largest user key of the last file compacted from it;
// Pick advances it. inProgress are the compactions running (their inputs
// are marked Compacting; a move never stays in progress).
//
// L0 files that can move down without a rewrite (see MoveTarget) are moved
// first, whatever L0's score: a move costs one manifest edit, and a
// time-ordered (or partitioned) flush then leaves L0 at once.
func Pick(v *manifest.Version, o Options, cursors *[manifest.NumLevels][]byte, inProgress []*Compaction) *Compaction {
	if c := pickL0Moves(v, inProgress); c != nil {
		return c
	}
	scores := Scores(v, o)
	levels := make([]int, 0, manifest.NumLevels-1)
	for l := 0; l < manifest.NumLevels-1; l++ {
		if scores[l] >= 1 {
			levels = append(levels, l)
		}
	}
	sort.SliceStable(levels, func(i, j int) bool { return scores[levels[i]] > scores[levels[j]] })
	for _, l := range levels {
		var c *Compaction
		if l == 0 {
			c = pickL0(v)
		} else {
			c = pickLevel(v, l, cursors, inProgress)
		}
		if c != nil {
			c.Score = scores[l]
			return c
		}
	}
	return nil
}

func pickL0(v *manifest.Version) *Compaction {
	in0 := v.Levels[0]
	if len(in0) == 0 || anyCompacting(in0) {
		return nil
	}
	c := &Compaction{StartLevel: 0, OutputLevel: 1, Inputs: [2][]*manifest.FileMetadata{append([]*manifest.FileMetadata(nil), in0...)}}
	smallest, largest := c.Bounds()
	c.Inputs[1] = v.Overlaps(1, smallest, largest)
	if anyCompacting(c.Inputs[1]) {
		return nil
	}
	if len(c.Inputs[1]) == 0 && disjoint(c.Inputs[0]) {
		c.TrivialMove = true
	}
	return c
}

// disjoint reports whether no two files share a user key.
func disjoint(fs []*manifest.FileMetadata) bool {
	sorted := append([]*manifest.FileMetadata(nil), fs...)
	sort.Slice(sorted, func(i, j int) bool { return bytes.Compare(sorted[i].SmallestUser(), sorted[j].SmallestUser()) < 0 })
	for i := 1; i < len(sorted); i++ {
		if bytes.Compare(sorted[i-1].LargestUser(), sorted[i].SmallestUser()) >= 0 {
			return false
		}
	}
	return true
}

// MoveTarget returns the level a file of level from can be re-linked to
// without rewriting it, or -1. A file whose key range no file below it
// overlaps, and no running compaction's range touches, goes to the bottom
// level: nothing anywhere holds its keys, so no level order is at stake —
// the event log of a topic, whose new tables lie after everything stored,
// reaches the bottom in one move instead of one level at a time. Failing
// that, a file goes one level down if nothing there overlaps it. An L0 file
// moves only if no other L0 file overlaps it (then no newer or older
// version of its keys stays above it) and no running compaction's range
// touches it (an L0 compaction's outputs may span the gaps between its
// inputs).
func MoveTarget(v *manifest.Version, from int, f *manifest.FileMetadata, inProgress []*Compaction) int {
	lo, hi := f.SmallestUser(), f.LargestUser()
	busy := false
	for _, c := range inProgress {
		if s, l := c.Bounds(); bytes.Compare(s, hi) <= 0 && bytes.Compare(l, lo) >= 0 {
			busy = true
			break
		}
	}
	if from == 0 {
		if busy {
			return -1
		}
		for _, g := range v.Levels[0] {
			if g != f && bytes.Compare(g.SmallestUser(), hi) <= 0 && bytes.Compare(g.LargestUser(), lo) >= 0 {
				return -1
			}
		}
	}
	bottom := manifest.NumLevels - 1
	if from >= bottom {
		return -1
	}
	clearBelow := !busy
	for l := from + 1; l <= bottom && clearBelow; l++ {
		clearBelow = len(v.Overlaps(l, lo, hi)) == 0
	}
	switch {
	case clearBelow:
		return bottom
	case len(v.Overlaps(from+1, lo, hi)) == 0:
		return from + 1
	}
	return -1
}

// pickL0Moves returns a move of every L0 file that can be re-linked to the
// same level as the oldest such file (MoveTarget), or nil.
func pickL0Moves(v *manifest.Version, inProgress []*Compaction) *Compaction {
	var c *Compaction
	for _, f := range v.Levels[0] {
		if f.Compacting {
			continue
		}
		t := MoveTarget(v, 0, f, inProgress)
		if t < 0 || c != nil && t != c.OutputLevel {
			continue
		}
		if c == nil {
			c = &Compaction{StartLevel: 0, OutputLevel: t, TrivialMove: true}
		}
		c.Inputs[0] = append(c.Inputs[0], f)
	}
	return c
}

func pickLevel(v *manifest.Version, level int, cursors *[manifest.NumLevels][]byte, inProgress []*Compaction) *Compaction {
	files := v.Levels[level]
	start := sort.Search(len(files), func(i int) bool {
		return cursors[level] == nil || bytes.Compare(files[i].SmallestUser(), cursors[level]) > 0
	})
	for k := 0; k < len(files); k++ {
		f := files[(start+k)%len(files)]
		if f.Compacting {
			continue
		}
		in1 := v.Overlaps(level+1, f.SmallestUser(), f.LargestUser())
		if anyCompacting(in1) {
			continue
		}
		cursors[level] = append(cursors[level][:0], f.LargestUser()...)
		c := &Compaction{
			StartLevel: level, OutputLevel: level + 1,
			Inputs: [2][]*manifest.FileMetadata{{f}, in1},
		}
		if len(in1) == 0 {
			c.TrivialMove = true
			c.OutputLevel = max(level+1, MoveTarget(v, level, f, inProgress))
		}
		return c
	}
	return nil
}

// PickManual returns the compaction of level's files overlapping [start,
// end] (user keys, inclusive; nil means unbounded) into level+1, or nil when
// level holds nothing there or a needed file is busy (busy is then true).
// A manual compaction always rewrites (never a trivial move) so that it
// drops what can be dropped.
func PickManual(v *manifest.Version, level int, start, end []byte) (c *Compaction, busy bool) {
	if level >= manifest.NumLevels-1 {
		return nil, false
	}
	lo, hi := start, end
	if lo == nil {
		lo = []byte{}
	}
	var in0 []*manifest.FileMetadata
	if hi == nil {
		for _, f := range v.Levels[level] {
			if bytes.Compare(f.LargestUser(), lo) >= 0 {
				in0 = append(in0, f)
			}
		}
	} else {
		in0 = v.Overlaps(level, lo, hi)
	}
	if level == 0 && len(in0) > 0 {
		// Every L0 file must move together (see pickL0).
		in0 = append([]*manifest.FileMetadata(nil), v.Levels[0]...)
	}
	if len(in0) == 0 {
		return nil, false
	}
	c = &Compaction{StartLevel: level, OutputLevel: level + 1, Manual: true, Inputs: [2][]*manifest.FileMetadata{in0}}
	smallest, largest := c.Bounds()
	c.Inputs[1] = v.Overlaps(level+1, smallest, largest)
	if anyCompacting(c.Inputs[0]) || anyCompacting(c.Inputs[1]) {
		return nil, true
	}
	return c, false
}
