package lsm

import (
	"io"
	"sort"

	"github.com/tapewire/tapewire/lsm/internal/base"
)

// Snapshot is a consistent read view as of the moment it was taken: reads
// through it see every write acknowledged before and none after, however
// flushes and compactions reshape the tree meanwhile (compaction keeps the
// versions open snapshots can see). Close it when done: an open snapshot
// pins old versions of overwritten keys.
type Snapshot struct {
	db     *DB
	seq    base.SeqNum // reads see entries with seq < this
	closed bool
}

// snapshotList is the multiset of open snapshot seqnums, sorted. Guarded by
// DB.mu.
type snapshotList struct {
	seqs []base.SeqNum
}

func (l *snapshotList) add(s base.SeqNum) {
	i := sort.Search(len(l.seqs), func(i int) bool { return l.seqs[i] > s })
	l.seqs = append(l.seqs, 0)
	copy(l.seqs[i+1:], l.seqs[i:])
	l.seqs[i] = s
}

func (l *snapshotList) remove(s base.SeqNum) {
	i := sort.Search(len(l.seqs), func(i int) bool { return l.seqs[i] >= s })
	if i < len(l.seqs) && l.seqs[i] == s {
		l.seqs = append(l.seqs[:i], l.seqs[i+1:]...)
	}
}

func (l *snapshotList) copySeqs() []base.SeqNum { return append([]base.SeqNum(nil), l.seqs...) }

// NewSnapshot takes a snapshot of the current state.
func (d *DB) NewSnapshot() *Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := &Snapshot{db: d, seq: base.SeqNum(d.visibleSeq.Load())}
	d.snapshots.add(s.seq)
	return s
}

// Get reads key as of the snapshot (see DB.Get).
func (s *Snapshot) Get(key []byte) ([]byte, io.Closer, error) {
	return s.db.getAt(key, s.seq)
}

// NewIter returns an iterator over the snapshot's view (see DB.NewIter).
func (s *Snapshot) NewIter(o *IterOptions) *Iterator { return s.db.newIterAt(o, s.seq) }

// Close releases the snapshot. Closing twice is harmless.
func (s *Snapshot) Close() error {
	s.db.mu.Lock()
	defer s.db.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.db.snapshots.remove(s.seq)
	}
	return nil
}
