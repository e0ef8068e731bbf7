package lsm

import (
	"bytes"
	"errors"
	"sync"

	"github.com/tapewire/tapewire/lsm/internal/base"
	"github.com/tapewire/tapewire/lsm/internal/manifest"
)

// IterOptions bound an iterator: it yields keys k with LowerBound <= k <
// UpperBound (nil: unbounded). The bounds are copied.
type IterOptions struct {
	LowerBound []byte
	UpperBound []byte
}

type iterPos uint8

const (
	posInvalid       iterPos = iota
	posValid                 // at an entry
	posExhaustedNext         // moved past the end: Prev goes to Last
	posExhaustedPrev         // moved before the start: Next goes to First
)

// Iterator walks the user keys of a consistent view in order, either way,
// within optional bounds. It holds the read state it was created from, so
// flushes and compactions after its creation change nothing it sees. Key and
// Value are valid until the next positioning call. An Iterator belongs to
// one goroutine; Close it to release its tables.
type Iterator struct {
	rs       *readState
	seqLimit base.SeqNum
	iter     *mergingIter
	lower    []byte
	upper    []byte

	pos      iterPos
	forward  bool
	key      []byte // current user key (owned copy)
	value    []byte // current value: a view going forward, valueBuf going backward
	valueBuf []byte
	err      error
	closed   bool
	alloc    *iterAlloc // returned to the pool by Close
}

// NewIter returns an iterator over the latest state.
func (d *DB) NewIter(o *IterOptions) *Iterator { return d.newIterAt(o, 0) }

func (d *DB) newIterAt(o *IterOptions, seqLimit base.SeqNum) *Iterator {
	if seqLimit == 0 {
		seqLimit = base.SeqNum(d.visibleSeq.Load())
	}
	rs := d.acquireReadState()
	if rs == nil {
		return &Iterator{iter: newMergingIter(nil), err: ErrClosed}
	}
	a := iterAllocPool.Get().(*iterAlloc)
	l0 := rs.version.Levels[0]
	nLevels := len(l0)
	for level := 1; level < manifest.NumLevels; level++ {
		if len(rs.version.Levels[level]) > 0 {
			nLevels++
		}
	}
	a.mems = resize(a.mems, 1+len(rs.imm))
	a.levels = resize(a.levels, nLevels)
	children := a.children[:0]
	a.mems[0].it.Init(rs.mem.index)
	children = append(children, &a.mems[0])
	for i := len(rs.imm) - 1; i >= 0; i-- {
		m := &a.mems[len(rs.imm)-i]
		m.it.Init(rs.imm[i].index)
		children = append(children, m)
	}
	li := 0
	for i := len(l0) - 1; i >= 0; i-- {
		a.levels[li].init(l0[i : i+1])
		children = append(children, &a.levels[li])
		li++
	}
	for level := 1; level < manifest.NumLevels; level++ {
		if files := rs.version.Levels[level]; len(files) > 0 {
			a.levels[li].init(files)
			children = append(children, &a.levels[li])
			li++
		}
	}
	a.children = children
	a.merging.reset(children)
	it := &a.it
	*it = Iterator{rs: rs, seqLimit: seqLimit, iter: &a.merging, alloc: a, key: it.key[:0], valueBuf: it.valueBuf[:0]}
	if o != nil {
		it.lower = copyBound(&a.lower, o.LowerBound)
		it.upper = copyBound(&a.upper, o.UpperBound)
	}
	return it
}

// iterAlloc holds everything an Iterator needs, recycled through a pool so
// that opening an iterator allocates nothing in steady state.
type iterAlloc struct {
	it       Iterator
	merging  mergingIter
	mems     []memIter
	levels   []levelIter
	children []base.InternalIterator
	// lower and upper hold copies of the bounds, kept across uses.
	lower, upper []byte
}

var iterAllocPool = sync.Pool{New: func() any { return new(iterAlloc) }}

// resize returns s with length n, reusing its array when large enough.
func resize[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}

// release drops every reference the allocation holds and returns it to the
// pool.
func (a *iterAlloc) release() {
	for i := range a.mems {
		a.mems[i] = memIter{}
	}
	for i := range a.levels {
		a.levels[i].init(nil)
	}
	for i := range a.children {
		a.children[i] = nil
	}
	a.merging.reset(nil)
	it := &a.it
	*it = Iterator{key: it.key[:0], valueBuf: it.valueBuf[:0]}
	iterAllocPool.Put(a)
}

// Valid reports whether the iterator is at an entry.
func (it *Iterator) Valid() bool { return it.pos == posValid }

// Key is the current user key.
func (it *Iterator) Key() []byte { return it.key }

// Value is the current value.
func (it *Iterator) Value() []byte { return it.value }

// Error is the first error met (corruption errors name file and offset).
func (it *Iterator) Error() error { return it.err }

func (it *Iterator) visible(key []byte) bool { return base.TrailerSeq(base.Trailer(key)) < it.seqLimit }

// findNextEntry moves forward from the internal iterator's position to the
// newest visible live version of the next user key.
func (it *Iterator) findNextEntry(ok bool) bool {
	it.forward = true
	for ok {
		k := it.iter.Key()
		ukey := base.UserKey(k)
		if it.upper != nil && bytes.Compare(ukey, it.upper) >= 0 {
			break
		}
		if !it.visible(k) {
			ok = it.iter.Next()
			continue
		}
		it.key = append(it.key[:0], ukey...)
		if base.TrailerKind(base.Trailer(k)) == base.KindSet {
			it.value = it.iter.Value()
			it.pos = posValid
			return true
		}
		ok = it.skipUserKey()
	}
	return it.finish(posExhaustedNext)
}

// skipUserKey advances past every remaining version of it.key.
func (it *Iterator) skipUserKey() bool {
	for {
		if !it.iter.Next() {
			return false
		}
		if !bytes.Equal(base.UserKey(it.iter.Key()), it.key) {
			return true
		}
	}
}

func (it *Iterator) finish(pos iterPos) bool {
	if err := it.iter.Error(); err != nil {
		it.err = err
		it.pos = posInvalid
		return false
	}
	it.pos = pos
	return false
}

// findPrevEntry moves backward from the internal iterator's position to the
// previous user key with a live visible value. Versions of a key arrive
// oldest first, so the candidate is replaced until the key changes.
func (it *Iterator) findPrevEntry(ok bool) bool {
	it.forward = false
	have := false
	var haveKind base.Kind
	for ok {
		k := it.iter.Key()
		ukey := base.UserKey(k)
		if it.lower != nil && bytes.Compare(ukey, it.lower) < 0 {
			break
		}
		if have && !bytes.Equal(ukey, it.key) {
			if haveKind == base.KindSet {
				it.pos = posValid
				return true
			}
			have = false
		}
		if it.visible(k) {
			it.key = append(it.key[:0], ukey...)
			haveKind = base.TrailerKind(base.Trailer(k))
			if haveKind == base.KindSet {
				it.valueBuf = append(it.valueBuf[:0], it.iter.Value()...)
				it.value = it.valueBuf
			}
			have = true
		}
		ok = it.iter.Prev()
	}
	if it.iter.Error() != nil {
		return it.finish(posInvalid)
	}
	if have && haveKind == base.KindSet {
		it.pos = posValid
		return true
	}
	return it.finish(posExhaustedPrev)
}

// First moves to the first key (at or above LowerBound).
func (it *Iterator) First() bool {
	if it.checkClosed() {
		return false
	}
	if it.lower != nil {
		return it.findNextEntry(it.iter.SeekGE(it.lower, base.SearchTrailerAll))
	}
	return it.findNextEntry(it.iter.First())
}

// Last moves to the last key (below UpperBound).
func (it *Iterator) Last() bool {
	if it.checkClosed() {
		return false
	}
	if it.upper != nil {
		return it.findPrevEntry(it.iter.SeekLT(it.upper, base.SearchTrailerAll))
	}
	return it.findPrevEntry(it.iter.Last())
}

// SeekGE moves to the first key >= key (clamped to the bounds).
func (it *Iterator) SeekGE(key []byte) bool {
	if it.checkClosed() {
		return false
	}
	if it.lower != nil && bytes.Compare(key, it.lower) < 0 {
		key = it.lower
	}
	return it.findNextEntry(it.iter.SeekGE(key, base.SearchTrailerAll))
}

// SeekLT moves to the last key < key (clamped to the bounds).
func (it *Iterator) SeekLT(key []byte) bool {
	if it.checkClosed() {
		return false
	}
	if it.upper != nil && bytes.Compare(key, it.upper) > 0 {
		key = it.upper
	}
	return it.findPrevEntry(it.iter.SeekLT(key, base.SearchTrailerAll))
}

// Next moves to the following key. After the iterator ran off the start,
// Next moves to the first key.
func (it *Iterator) Next() bool {
	if it.checkClosed() {
		return false
	}
	switch it.pos {
	case posExhaustedPrev:
		return it.First()
	case posValid:
	default:
		return false
	}
	if !it.forward {
		// The internal iterator is before the current key's versions.
		ok := it.iter.SeekGE(it.key, base.SearchTrailerAll)
		for ok && bytes.Equal(base.UserKey(it.iter.Key()), it.key) {
			ok = it.iter.Next()
		}
		return it.findNextEntry(ok)
	}
	return it.findNextEntry(it.skipUserKey())
}

// Prev moves to the preceding key. After the iterator ran off the end, Prev
// moves to the last key.
func (it *Iterator) Prev() bool {
	if it.checkClosed() {
		return false
	}
	switch it.pos {
	case posExhaustedNext:
		return it.Last()
	case posValid:
	default:
		return false
	}
	if it.forward {
		return it.findPrevEntry(it.iter.SeekLT(it.key, base.SearchTrailerAll))
	}
	// Already positioned on the entry before the current key.
	if it.iter.Error() != nil {
		return it.finish(posInvalid)
	}
	return it.findPrevEntry(len(it.iter.heap) > 0)
}

var errIterClosed = errors.New("lsm: iterator is closed")

func (it *Iterator) checkClosed() bool {
	switch {
	case it.rs == nil: // created after the database closed
		it.err = ErrClosed
	case it.closed:
		it.err = errIterClosed
	default:
		return false
	}
	it.pos = posInvalid
	return true
}

// SetBounds changes the bounds and unpositions the iterator.
func (it *Iterator) SetBounds(lower, upper []byte) {
	var lowerBuf, upperBuf []byte
	it.lower = copyBound(&lowerBuf, lower)
	it.upper = copyBound(&upperBuf, upper)
	it.pos = posInvalid
}

// copyBound copies bound into *buf and returns the copy: nil for no bound,
// and a non-nil slice for an empty one (an empty upper bound admits no key).
func copyBound(buf *[]byte, bound []byte) []byte {
	if bound == nil {
		return nil
	}
	*buf = append((*buf)[:0], bound...)
	if *buf == nil {
		*buf = []byte{}
	}
	return *buf
}

// Close releases the iterator's read state. The iterator must not be used
// (or closed again) afterwards: its memory is recycled for later iterators.
func (it *Iterator) Close() error {
	if it.closed {
		return errIterClosed
	}
	if it.rs == nil {
		return ErrClosed
	}
	it.closed = true
	err := it.iter.Close()
	it.rs.unref()
	if err == nil {
		err = it.err
	}
	if it.alloc != nil {
		it.alloc.release()
	}
	return err
}
