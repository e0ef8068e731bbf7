package lsm

import (
	"bytes"
	"errors"

	"github.com/tapewire/tapewire/lsm/internal/base"
	"github.com/tapewire/tapewire/lsm/internal/manifest"
	"github.com/tapewire/tapewire/lsm/sstable"
)

// levelIter walks the files of one sorted run (an L1+ level, or a single L0
// file) as one iterator, moving between files as the key order requires.
// The files do not overlap and are in key order.
type levelIter struct {
	files []*manifest.FileMetadata
	index int // current file; -1 or len(files) when off either end
	iter  sstable.Iter
	err   error
}

func newLevelIter(files []*manifest.FileMetadata) *levelIter {
	return &levelIter{files: files, index: -1}
}

// init re-points l at files, keeping its buffers.
func (l *levelIter) init(files []*manifest.FileMetadata) {
	l.files, l.index, l.err = files, -1, nil
	l.iter.Release()
}

func (l *levelIter) open(i int) bool {
	l.index = i
	if i < 0 || i >= len(l.files) {
		return false
	}
	l.iter.Init(tableOf(l.files[i]).r)
	return true
}

func (l *levelIter) check(ok bool) bool {
	if !ok && l.iter.Error() != nil {
		l.err = l.iter.Error()
	}
	return ok
}

func (l *levelIter) First() bool {
	l.err = nil
	for i := 0; l.open(i); i++ {
		if l.check(l.iter.First()) {
			return true
		}
		if l.err != nil {
			return false
		}
	}
	return false
}

func (l *levelIter) Last() bool {
	l.err = nil
	for i := len(l.files) - 1; l.open(i); i-- {
		if l.check(l.iter.Last()) {
			return true
		}
		if l.err != nil {
			return false
		}
	}
	return false
}

func (l *levelIter) Next() bool {
	if l.err != nil || l.index < 0 || l.index >= len(l.files) {
		return false
	}
	if l.check(l.iter.Next()) {
		return true
	}
	for i := l.index + 1; l.err == nil && l.open(i); i++ {
		if l.check(l.iter.First()) {
			return true
		}
	}
	return false
}

func (l *levelIter) Prev() bool {
	if l.err != nil || l.index < 0 || l.index >= len(l.files) {
		return false
	}
	if l.check(l.iter.Prev()) {
		return true
	}
	for i := l.index - 1; l.err == nil && l.open(i); i-- {
		if l.check(l.iter.Last()) {
			return true
		}
	}
	return false
}

// SeekGE starts at the first file whose largest key is >= the search key.
func (l *levelIter) SeekGE(ukey []byte, trailer uint64) bool {
	l.err = nil
	lo, hi := 0, len(l.files)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if base.CompareSearch(l.files[m].Largest, ukey, trailer) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for i := lo; l.open(i); i++ {
		if l.check(l.iter.SeekGE(ukey, trailer)) {
			return true
		}
		if l.err != nil {
			return false
		}
	}
	return false
}

// SeekLT starts at the last file whose smallest key is < the search key.
func (l *levelIter) SeekLT(ukey []byte, trailer uint64) bool {
	l.err = nil
	lo, hi := 0, len(l.files)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if base.CompareSearch(l.files[m].Smallest, ukey, trailer) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for i := lo - 1; l.open(i); i-- {
		if l.check(l.iter.SeekLT(ukey, trailer)) {
			return true
		}
		if l.err != nil {
			return false
		}
	}
	return false
}

func (l *levelIter) Key() []byte   { return l.iter.Key() }
func (l *levelIter) Value() []byte { return l.iter.Value() }
func (l *levelIter) Error() error  { return l.err }
func (l *levelIter) Close() error  { return nil }

// mergingIter merges child iterators over disjoint sets of internal keys
// into one ordered stream, with a heap of the children that are positioned
// (a min-heap going forward, a max-heap going backward). Changing direction
// re-positions every child relative to the current key.
type mergingIter struct {
	children []base.InternalIterator
	heap     []int // child indexes
	forward  bool
	err      error
}

func newMergingIter(children []base.InternalIterator) *mergingIter {
	m := &mergingIter{}
	m.reset(children)
	return m
}

// reset re-points m at children, keeping its heap's array.
func (m *mergingIter) reset(children []base.InternalIterator) {
	m.children, m.heap, m.forward, m.err = children, m.heap[:0], true, nil
}

func (m *mergingIter) less(a, b int) bool {
	c := base.CompareInternal(m.children[a].Key(), m.children[b].Key())
	if m.forward {
		return c < 0
	}
	return c > 0
}

func (m *mergingIter) down(i int) {
	n := len(m.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		j := l
		if r := l + 1; r < n && m.less(m.heap[r], m.heap[l]) {
			j = r
		}
		if !m.less(m.heap[j], m.heap[i]) {
			return
		}
		m.heap[i], m.heap[j] = m.heap[j], m.heap[i]
		i = j
	}
}

// init builds the heap from the children that ok reports positioned.
func (m *mergingIter) init(forward bool, position func(base.InternalIterator) bool) bool {
	m.forward = forward
	m.heap = m.heap[:0]
	m.err = nil
	for i, c := range m.children {
		if position(c) {
			m.heap = append(m.heap, i)
		} else if err := c.Error(); err != nil {
			m.err = err
		}
	}
	if m.err != nil {
		m.heap = m.heap[:0]
		return false
	}
	for i := len(m.heap)/2 - 1; i >= 0; i-- {
		m.down(i)
	}
	return len(m.heap) > 0
}

func (m *mergingIter) First() bool {
	return m.init(true, func(c base.InternalIterator) bool { return c.First() })
}

func (m *mergingIter) Last() bool {
	return m.init(false, func(c base.InternalIterator) bool { return c.Last() })
}

func (m *mergingIter) SeekGE(ukey []byte, trailer uint64) bool {
	return m.init(true, func(c base.InternalIterator) bool { return c.SeekGE(ukey, trailer) })
}

func (m *mergingIter) SeekLT(ukey []byte, trailer uint64) bool {
	return m.init(false, func(c base.InternalIterator) bool { return c.SeekLT(ukey, trailer) })
}

// step advances the top child in the current direction and restores the heap.
func (m *mergingIter) step() bool {
	top := m.heap[0]
	c := m.children[top]
	var ok bool
	if m.forward {
		ok = c.Next()
	} else {
		ok = c.Prev()
	}
	if ok {
		m.down(0)
		return true
	}
	if err := c.Error(); err != nil {
		m.err = err
		m.heap = m.heap[:0]
		return false
	}
	n := len(m.heap) - 1
	m.heap[0] = m.heap[n]
	m.heap = m.heap[:n]
	if n > 0 {
		m.down(0)
	}
	return n > 0
}

func (m *mergingIter) Next() bool {
	if len(m.heap) == 0 {
		return false
	}
	if !m.forward {
		// Every other child is at or before the current key: move each to
		// the first key after it.
		key := append([]byte(nil), m.Key()...)
		cur := m.heap[0]
		ukey, trailer := base.UserKey(key), base.Trailer(key)
		return m.init(true, func(c base.InternalIterator) bool {
			if c == m.children[cur] {
				return c.Next()
			}
			ok := c.SeekGE(ukey, trailer)
			for ok && bytes.Equal(c.Key(), key) {
				ok = c.Next()
			}
			return ok
		})
	}
	return m.step()
}

func (m *mergingIter) Prev() bool {
	if len(m.heap) == 0 {
		return false
	}
	if m.forward {
		key := append([]byte(nil), m.Key()...)
		cur := m.heap[0]
		ukey, trailer := base.UserKey(key), base.Trailer(key)
		return m.init(false, func(c base.InternalIterator) bool {
			if c == m.children[cur] {
				return c.Prev()
			}
			return c.SeekLT(ukey, trailer)
		})
	}
	return m.step()
}

func (m *mergingIter) Key() []byte   { return m.children[m.heap[0]].Key() }
func (m *mergingIter) Value() []byte { return m.children[m.heap[0]].Value() }
func (m *mergingIter) Error() error  { return m.err }

func (m *mergingIter) Close() error {
	var err error
	for _, c := range m.children {
		err = errors.Join(err, c.Close())
	}
	return err
}
