package manifest

import (
	"bytes"
	"fmt"
	"sort"
	"sync/atomic"

	"github.com/tapewire/tapewire/lsm/internal/base"
)

// FileMetadata describes one table. It is immutable once in a version,
// except for refs and Compacting.
type FileMetadata struct {
	FileNum     uint64
	Size        uint64
	Smallest    []byte // encoded internal key
	Largest     []byte // encoded internal key
	SmallestSeq base.SeqNum
	LargestSeq  base.SeqNum

	// refs counts the versions that contain this file.
	refs atomic.Int32
	// Compacting is set while a compaction reads the file; guarded by the
	// database mutex.
	Compacting bool
	// TableHandle is the owner's open table (in the engine: the mapped
	// reader). It is set before the file enters a version and read by any
	// goroutine holding a version reference.
	TableHandle any
}

// SmallestUser is the user key of Smallest.
func (m *FileMetadata) SmallestUser() []byte { return base.UserKey(m.Smallest) }

// LargestUser is the user key of Largest.
func (m *FileMetadata) LargestUser() []byte { return base.UserKey(m.Largest) }

func (m *FileMetadata) String() string {
	return fmt.Sprintf("%06d[%s-%s]", m.FileNum, base.FormatKey(m.Smallest), base.FormatKey(m.Largest))
}

// Version is an immutable set of live tables per level. Readers and
// iterators hold a reference so the files they use are not deleted.
//
// L0 files may overlap; they are ordered by LargestSeq ascending (newest
// last) and a read visits them newest first. Files of L1..L6 are ordered by
// Smallest and do not overlap by user key.
type Version struct {
	Levels [NumLevels][]*FileMetadata

	// L0Depth is the most L0 files that hold any one user key (their
	// ranges overlap there): the number of L0 tables a point read may have
	// to search, which L0 compaction and the write stall bound. L0 files
	// of disjoint ranges — flushes of a time-ordered key space, or of
	// different partitions — count once.
	L0Depth int

	refs atomic.Int32
	// obsolete is called with the files whose last version reference went
	// away when the version's refcount drops to zero.
	obsolete func([]*FileMetadata)
}

// NewVersion returns an empty version with one reference. obsolete receives
// files no longer in any version (called from whichever goroutine drops the
// last reference).
func NewVersion(obsolete func([]*FileMetadata)) *Version {
	v := &Version{obsolete: obsolete}
	v.refs.Store(1)
	return v
}

// Ref adds a reference.
func (v *Version) Ref() { v.refs.Add(1) }

// Unref drops a reference; the last one releases the version's files.
func (v *Version) Unref() {
	switch n := v.refs.Add(-1); {
	case n == 0:
		var dead []*FileMetadata
		for _, files := range v.Levels {
			for _, f := range files {
				if f.refs.Add(-1) == 0 {
					dead = append(dead, f)
				}
			}
		}
		if len(dead) > 0 && v.obsolete != nil {
			v.obsolete(dead)
		}
	case n < 0:
		panic("manifest: version reference count below zero")
	}
}

// Refs is the current reference count (for tests and invariant checks).
func (v *Version) Refs() int32 { return v.refs.Load() }

// NumFiles is the number of files in level.
func (v *Version) NumFiles(level int) int { return len(v.Levels[level]) }

// LevelBytes is the total size of level's files.
func (v *Version) LevelBytes(level int) uint64 {
	var n uint64
	for _, f := range v.Levels[level] {
		n += f.Size
	}
	return n
}

// Apply returns a new version: v with edit applied, holding one reference
// and a reference on each of its files. It checks the level invariants and
// refuses an edit that would break them.
func (v *Version) Apply(e *VersionEdit) (*Version, error) {
	nv := NewVersion(v.obsolete)
	deleted := make(map[DeletedFile]bool, len(e.Deleted))
	for _, d := range e.Deleted {
		deleted[d] = true
	}
	for level := range v.Levels {
		for _, f := range v.Levels[level] {
			if deleted[DeletedFile{level, f.FileNum}] {
				delete(deleted, DeletedFile{level, f.FileNum})
				continue
			}
			nv.Levels[level] = append(nv.Levels[level], f)
		}
	}
	for d := range deleted {
		return nil, fmt.Errorf("manifest: edit deletes file %06d from L%d, which does not hold it", d.FileNum, d.Level)
	}
	for _, a := range e.Added {
		nv.Levels[a.Level] = append(nv.Levels[a.Level], a.Meta)
	}
	for level := range nv.Levels {
		files := nv.Levels[level]
		if level == 0 {
			sort.Slice(files, func(i, j int) bool {
				if files[i].LargestSeq != files[j].LargestSeq {
					return files[i].LargestSeq < files[j].LargestSeq
				}
				return files[i].FileNum < files[j].FileNum
			})
			continue
		}
		sort.Slice(files, func(i, j int) bool { return base.CompareInternal(files[i].Smallest, files[j].Smallest) < 0 })
		for i := 1; i < len(files); i++ {
			if bytes.Compare(files[i-1].LargestUser(), files[i].SmallestUser()) >= 0 {
				return nil, fmt.Errorf("manifest: L%d files %s and %s overlap", level, files[i-1], files[i])
			}
		}
	}
	nv.L0Depth = maxOverlapDepth(nv.Levels[0])
	for _, files := range nv.Levels {
		for _, f := range files {
			f.refs.Add(1)
		}
	}
	return nv, nil
}

// maxOverlapDepth returns the largest number of files whose inclusive
// user-key ranges share one key: a sweep over the range ends, where a range
// starting at a key counts before one ending there.
func maxOverlapDepth(files []*FileMetadata) int {
	if len(files) < 2 {
		return len(files)
	}
	type end struct {
		key   []byte
		start bool
	}
	ends := make([]end, 0, 2*len(files))
	for _, f := range files {
		ends = append(ends, end{f.SmallestUser(), true}, end{f.LargestUser(), false})
	}
	sort.Slice(ends, func(i, j int) bool {
		if c := bytes.Compare(ends[i].key, ends[j].key); c != 0 {
			return c < 0
		}
		return ends[i].start && !ends[j].start
	})
	depth, deepest := 0, 0
	for _, e := range ends {
		if e.start {
			depth++
			deepest = max(deepest, depth)
		} else {
			depth--
		}
	}
	return deepest
}

// Overlaps returns the files of level whose user-key range intersects
// [smallest, largest] (user keys, inclusive). For L0 the result is expanded
// until closed: a file overlapping any selected file is selected too.
func (v *Version) Overlaps(level int, smallest, largest []byte) []*FileMetadata {
	files := v.Levels[level]
	if level > 0 {
		i := sort.Search(len(files), func(i int) bool { return bytes.Compare(files[i].LargestUser(), smallest) >= 0 })
		j := i
		for j < len(files) && bytes.Compare(files[j].SmallestUser(), largest) <= 0 {
			j++
		}
		return files[i:j:j]
	}
	var out []*FileMetadata
	selected := make([]bool, len(files))
	for changed := true; changed; {
		changed = false
		for i, f := range files {
			if selected[i] || bytes.Compare(f.LargestUser(), smallest) < 0 || bytes.Compare(f.SmallestUser(), largest) > 0 {
				continue
			}
			selected[i] = true
			changed = true
			if bytes.Compare(f.SmallestUser(), smallest) < 0 {
				smallest = f.SmallestUser()
			}
			if bytes.Compare(f.LargestUser(), largest) > 0 {
				largest = f.LargestUser()
			}
		}
	}
	for i, f := range files {
		if selected[i] {
			out = append(out, f)
		}
	}
	return out
}

// FindFile returns the file of level (>= 1) whose range may hold ukey, or
// nil. Hot path: binary search, no allocation.
func (v *Version) FindFile(level int, ukey []byte) *FileMetadata {
	files := v.Levels[level]
	lo, hi := 0, len(files)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if bytes.Compare(files[m].LargestUser(), ukey) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(files) && bytes.Compare(files[lo].SmallestUser(), ukey) <= 0 {
		return files[lo]
	}
	return nil
}

// Edit returns an edit that recreates v from an empty version (used to
// start a new manifest file with a snapshot of the current state).
func (v *Version) Edit() *VersionEdit {
	e := &VersionEdit{}
	for level, files := range v.Levels {
		for _, f := range files {
			e.Added = append(e.Added, NewFile{Level: level, Meta: f})
		}
	}
	return e
}
