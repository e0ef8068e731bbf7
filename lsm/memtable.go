package lsm

import (
	"fmt"
	"runtime"
	"sync/atomic"

	"github.com/tapewire/tapewire/lsm/internal/arenabt"
	"github.com/tapewire/tapewire/lsm/internal/base"
)

// memTable is one arena B+tree plus the bookkeeping of its life: writers
// reserve arena space under the commit mutex (so a batch never fails half
// applied), apply through the index (each insert under its writer mutex),
// and the flush waits until every writer that reserved space has finished.
type memTable struct {
	index *arenabt.Tree
	arena *arenabt.Arena

	// Guarded by DB.commitMu.
	reserved uint64
	maxLSN   uint64 // highest log position of a batch assigned here (0: none; LSNs start at 1)

	// writers counts batches that reserved space and have not finished
	// applying.
	writers atomic.Int32

	// refs counts the read states holding the memtable plus one for the
	// database while it is mutable or queued for flushing. At zero nothing
	// can reach the arena any more and its buffer is recycled.
	refs    atomic.Int32
	buf     []byte
	recycle func([]byte)
}

// memTableOverheadBytes is the part of a memtable's arena no batch can
// reserve: the index's fixed slack plus room for the empty tree (its root
// leaf and alignment).
const memTableOverheadBytes = arenabt.FixedOverhead + 1024

// newMemTable builds a memtable over buf (possibly recycled, see
// memTable.refs); recycle receives buf back when the memtable dies.
func newMemTable(buf []byte, recycle func([]byte)) (*memTable, error) {
	arena, err := arenabt.NewArena(buf)
	if err != nil {
		return nil, err
	}
	index, err := arenabt.New(arena)
	if err != nil {
		return nil, err
	}
	// Reservations start above the empty tree and the index's fixed slack,
	// so entries reserved at arenabt.MaxNodeSize each always fit (the bound
	// is proved in arenabt's doc.go).
	m := &memTable{index: index, arena: arena, reserved: arena.Size() + arenabt.FixedOverhead, buf: buf, recycle: recycle}
	m.refs.Store(1)
	return m, nil
}

func (m *memTable) ref() { m.refs.Add(1) }

func (m *memTable) unref() {
	switch n := m.refs.Add(-1); {
	case n == 0:
		if m.recycle != nil {
			m.recycle(m.buf)
		}
	case n < 0:
		panic("lsm: memtable reference count below zero")
	}
}

// tryReserve claims room for a batch needing n bytes. Called under commitMu.
func (m *memTable) tryReserve(n uint64) bool {
	if m.reserved+n > m.arena.Capacity() {
		return false
	}
	m.reserved += n
	m.writers.Add(1)
	return true
}

// apply inserts the batch's entries with consecutive sequence numbers from
// seq, each through the finger of its partition (st.inserterFor).
// Hot path: no allocation (st is the caller's working memory).
func (m *memTable) apply(data []byte, seq base.SeqNum, st *batchState, partition func([]byte) uint64) error {
	r, err := newBatchReader(data)
	if err != nil {
		return err
	}
	for {
		kind, key, value, ok, err := r.next()
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		st.ikeyBuf = base.AppendInternalKey(st.ikeyBuf[:0], key, seq, kind)
		if err := m.index.AddWith(st.inserterFor(partition, key), st.ikeyBuf, value); err != nil {
			return fmt.Errorf("lsm: memtable insert of %s: %w", base.FormatKey(st.ikeyBuf), err)
		}
		seq++
	}
}

// writerDone ends a reservation.
func (m *memTable) writerDone() { m.writers.Add(-1) }

// waitWriters blocks until every reserving writer has applied its batch. The
// wait is short (a batch insert), so it spins with yields.
func (m *memTable) waitWriters() {
	for m.writers.Load() != 0 {
		runtime.Gosched()
	}
}

func (m *memTable) empty() bool { return m.index.Empty() }

// memIter adapts an arenabt.Iterator to base.InternalIterator.
type memIter struct {
	it arenabt.Iterator
}

func (m *memTable) newIter() *memIter {
	mi := &memIter{}
	mi.it.Init(m.index)
	return mi
}

func (i *memIter) First() bool                        { i.it.First(); return i.it.Valid() }
func (i *memIter) Last() bool                         { i.it.Last(); return i.it.Valid() }
func (i *memIter) Next() bool                         { i.it.Next(); return i.it.Valid() }
func (i *memIter) Prev() bool                         { i.it.Prev(); return i.it.Valid() }
func (i *memIter) SeekGE(ukey []byte, tr uint64) bool { i.it.SeekGE(ukey, tr); return i.it.Valid() }
func (i *memIter) SeekLT(ukey []byte, tr uint64) bool { i.it.SeekLT(ukey, tr); return i.it.Valid() }
func (i *memIter) Key() []byte                        { return i.it.Key() }
func (i *memIter) Value() []byte                      { return i.it.Value() }
func (i *memIter) Error() error                       { return nil }
func (i *memIter) Close() error                       { return nil }
