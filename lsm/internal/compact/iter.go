package compact

import (
	"bytes"
	"sort"

	"github.com/tapewire/tapewire/lsm/internal/base"
)

// Iter filters the merged input of a compaction down to the entries that
// must survive (see the package comment). Key and Value are views valid
// until the next call to Next.
type Iter struct {
	in        base.InternalIterator
	snapshots []base.SeqNum
	// elide reports whether the output level is the bottom of the tree for
	// a user key, so a tombstone every reader sees may be dropped.
	elide func(ukey []byte) bool

	curUser    []byte
	haveUser   bool
	lastStripe int
	skipRest   bool
	valid      bool

	// Dropped counts entries not passed to the output.
	Dropped uint64
}

// NewIter filters in. snapshots are the sequence numbers of the open
// snapshots in ascending order (a snapshot at S sees entries with seq < S).
func NewIter(in base.InternalIterator, snapshots []base.SeqNum, elide func(ukey []byte) bool) *Iter {
	return &Iter{in: in, snapshots: snapshots, elide: elide}
}

// stripe is the number of snapshots that cannot see seq: entries of one key
// in the same stripe are seen by exactly the same readers, so only the
// newest of them matters. Stripe 0 is seen by every reader.
func (i *Iter) stripe(seq base.SeqNum) int {
	return sort.Search(len(i.snapshots), func(j int) bool { return i.snapshots[j] > seq })
}

// First positions at the first surviving entry.
func (i *Iter) First() bool {
	i.haveUser = false
	return i.settle(i.in.First())
}

// Next moves to the next surviving entry.
func (i *Iter) Next() bool {
	if !i.valid {
		return false
	}
	return i.settle(i.in.Next())
}

func (i *Iter) settle(ok bool) bool {
	for ; ok; ok = i.in.Next() {
		k := i.in.Key()
		ukey, trailer := base.UserKey(k), base.Trailer(k)
		if !i.haveUser || !bytes.Equal(ukey, i.curUser) {
			i.haveUser = true
			i.curUser = append(i.curUser[:0], ukey...)
			i.lastStripe = -1
			i.skipRest = false
		}
		if i.skipRest {
			i.Dropped++
			continue
		}
		st := i.stripe(base.TrailerSeq(trailer))
		if st == i.lastStripe {
			i.Dropped++
			continue
		}
		i.lastStripe = st
		if base.TrailerKind(trailer) == base.KindDelete && st == 0 && i.elide(ukey) {
			i.skipRest = true
			i.Dropped++
			continue
		}
		i.valid = true
		return true
	}
	i.valid = false
	return false
}

// Key is the current entry's internal key.
func (i *Iter) Key() []byte { return i.in.Key() }

// Value is the current entry's value.
func (i *Iter) Value() []byte { return i.in.Value() }

// Error is the input's error.
func (i *Iter) Error() error { return i.in.Error() }
