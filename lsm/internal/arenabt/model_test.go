package arenabt

import (
	"bytes"
	"errors"
	"fmt"
	"sort"

	"github.com/tapewire/tapewire/lsm/internal/base"
)

// model is the sorted-slice oracle the property and fuzz tests compare the
// tree with.
type model struct {
	tree  *Tree
	ins   [2]Inserter
	keys  [][]byte // internal keys, sorted after sort()
	vals  map[string]string
	dirty bool
}

func newModel(tr *Tree) *model { return &model{tree: tr, vals: map[string]string{}} }

// value derives an entry's value from its key, so a reader can tell a
// torn or misplaced entry.
func valueFor(ikey []byte) []byte { return append([]byte("v:"), ikey...) }

// add inserts ikey through finger f (-1: Add) and checks the outcome
// against the model.
func (m *model) add(ikey []byte, f int) error {
	var err error
	if f < 0 {
		err = m.tree.Add(ikey, valueFor(ikey))
	} else {
		err = m.tree.AddWith(&m.ins[f], ikey, valueFor(ikey))
	}
	_, dup := m.vals[string(ikey)]
	switch {
	case dup && !errors.Is(err, ErrRecordExists):
		return fmt.Errorf("duplicate %s: %v", base.FormatKey(ikey), err)
	case !dup && err != nil:
		return fmt.Errorf("add %s: %v", base.FormatKey(ikey), err)
	case !dup:
		m.vals[string(ikey)] = string(valueFor(ikey))
		m.keys = append(m.keys, append([]byte(nil), ikey...))
		m.dirty = true
	}
	return nil
}

func (m *model) sort() {
	if m.dirty {
		sort.Slice(m.keys, func(i, j int) bool { return base.CompareInternal(m.keys[i], m.keys[j]) < 0 })
		m.dirty = false
	}
}

// seekGE is the model's index of the first key >= (ukey, trailer).
func (m *model) seekGE(ukey []byte, trailer uint64) int {
	return sort.Search(len(m.keys), func(i int) bool { return base.CompareSearch(m.keys[i], ukey, trailer) >= 0 })
}

// checkIter compares the iterator's position with model index i (-1 or
// len: invalid).
func (m *model) checkIter(it *Iterator, i int, op string) error {
	if i < 0 || i >= len(m.keys) {
		if it.Valid() {
			return fmt.Errorf("%s: at %s, want invalid", op, base.FormatKey(it.Key()))
		}
		return nil
	}
	if !it.Valid() {
		return fmt.Errorf("%s: invalid, want %s (index %d of %d)", op, base.FormatKey(m.keys[i]), i, len(m.keys))
	}
	if !bytes.Equal(it.Key(), m.keys[i]) {
		return fmt.Errorf("%s: at %s, want %s", op, base.FormatKey(it.Key()), base.FormatKey(m.keys[i]))
	}
	if !bytes.Equal(it.Value(), valueFor(m.keys[i])) {
		return fmt.Errorf("%s: value %q at %s", op, it.Value(), base.FormatKey(it.Key()))
	}
	return nil
}

// checkFull walks the whole tree both ways.
func (m *model) checkFull() error {
	m.sort()
	var it Iterator
	it.Init(m.tree)
	i := 0
	for it.First(); i <= len(m.keys); i++ {
		if err := m.checkIter(&it, i, fmt.Sprintf("forward step %d", i)); err != nil {
			return err
		}
		if !it.Valid() {
			break
		}
		it.Next()
	}
	i = len(m.keys) - 1
	for it.Last(); i >= -1; i-- {
		if err := m.checkIter(&it, i, fmt.Sprintf("backward step %d", i)); err != nil {
			return err
		}
		if !it.Valid() {
			break
		}
		it.Prev()
	}
	if m.tree.Empty() != (len(m.keys) == 0) {
		return fmt.Errorf("Empty() = %v with %d keys", m.tree.Empty(), len(m.keys))
	}
	return nil
}

// checkGet compares Get(ukey, below seqLimit) with the model.
func (m *model) checkGet(ukey []byte, seqLimit base.SeqNum) error {
	m.sort()
	i := m.seekGE(ukey, base.MakeTrailer(seqLimit-1, base.KindMax))
	wantFound := i < len(m.keys) && bytes.Equal(base.UserKey(m.keys[i]), ukey)
	v, kind, found := m.tree.Get(ukey, seqLimit)
	if found != wantFound {
		return fmt.Errorf("Get(%q, below %d) found=%v, want %v", ukey, seqLimit, found, wantFound)
	}
	if found && (!bytes.Equal(v, valueFor(m.keys[i])) || kind != base.TrailerKind(base.Trailer(m.keys[i]))) {
		return fmt.Errorf("Get(%q, below %d) = %q kind %v, want %s", ukey, seqLimit, v, kind, base.FormatKey(m.keys[i]))
	}
	return nil
}

// checkSeekWalk seeks (GE or LT) and then moves by steps (true: Next),
// comparing every position with the model.
func (m *model) checkSeekWalk(ukey []byte, trailer uint64, lt bool, steps []bool) error {
	m.sort()
	var it Iterator
	it.Init(m.tree)
	i := m.seekGE(ukey, trailer)
	op := fmt.Sprintf("SeekGE(%q, %#x)", ukey, trailer)
	if lt {
		i--
		op = fmt.Sprintf("SeekLT(%q, %#x)", ukey, trailer)
		it.SeekLT(ukey, trailer)
	} else {
		it.SeekGE(ukey, trailer)
	}
	if err := m.checkIter(&it, i, op); err != nil {
		return err
	}
	for n, next := range steps {
		if i < 0 || i >= len(m.keys) {
			return nil // an exhausted iterator is not repositioned by Next/Prev
		}
		if next {
			i++
			it.Next()
		} else {
			i--
			it.Prev()
		}
		if err := m.checkIter(&it, i, fmt.Sprintf("%s then step %d (next=%v)", op, n, next)); err != nil {
			return err
		}
	}
	return nil
}
