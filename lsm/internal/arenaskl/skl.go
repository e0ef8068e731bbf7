package arenaskl

import (
	"errors"
	"math/rand/v2"
	"sync/atomic"

	"github.com/tapewire/tapewire/lsm/internal/base"
)

// MaxHeight bounds a node's tower. With branching 1/4 it indexes 4^20 nodes
// before search degrades.
const MaxHeight = 20

// pBranch is 1/4 scaled to a uint32 threshold.
const pBranchThreshold = uint32(1 << 30)

// ErrRecordExists is returned by Add when the internal key is already present.
var ErrRecordExists = errors.New("arenaskl: record with this internal key already exists")

const (
	offKeyLen  = 0
	offValLen  = 4
	offHeight  = 8
	offTower   = 12
	linkSize   = 4
	headerSize = offTower
)

// MaxNodeSize is the most arena bytes an entry with the given key and value
// lengths can take (tallest tower, alignment padding).
func MaxNodeSize(keyLen, valLen int) uint64 {
	return uint64(headerSize+MaxHeight*linkSize+keyLen+valLen) + nodeAlign
}

// Skiplist is an ordered set of internal keys with values, stored in an Arena.
type Skiplist struct {
	arena  *Arena
	head   uint32
	height atomic.Uint32
	// id tells Inserters which list their splice belongs to without a
	// pointer that would keep a discarded list's arena reachable.
	id uint64
}

var nextListID atomic.Uint64

// New builds an empty skiplist in arena. The arena's buffer need not be
// zeroed: a buffer recycled from a discarded skiplist is fine.
func New(arena *Arena) (*Skiplist, error) {
	head, err := arena.alloc(headerSize + MaxHeight*linkSize)
	if err != nil {
		return nil, err
	}
	// The arena may be recycled: clear the head's header and tower (every
	// other node is written whole before it is linked).
	clear(arena.buf[head : head+headerSize+MaxHeight*linkSize])
	*arena.u32(head + offHeight) = MaxHeight
	s := &Skiplist{arena: arena, head: head, id: nextListID.Add(1)}
	s.height.Store(1)
	return s, nil
}

// Arena returns the skiplist's arena.
func (s *Skiplist) Arena() *Arena { return s.arena }

// Empty reports whether no entry was ever added.
func (s *Skiplist) Empty() bool { return s.next(s.head, 0) == 0 }

func (s *Skiplist) next(nd uint32, level int) uint32 {
	return atomic.LoadUint32(s.arena.u32(nd + offTower + uint32(level)*linkSize))
}

func (s *Skiplist) casNext(nd uint32, level int, old, new uint32) bool {
	return atomic.CompareAndSwapUint32(s.arena.u32(nd+offTower+uint32(level)*linkSize), old, new)
}

func (s *Skiplist) key(nd uint32) []byte {
	a := s.arena
	kl := *a.u32(nd + offKeyLen)
	h := *a.u32(nd + offHeight)
	return a.bytes(nd+offTower+h*linkSize, kl)
}

func (s *Skiplist) value(nd uint32) []byte {
	a := s.arena
	kl := *a.u32(nd + offKeyLen)
	vl := *a.u32(nd + offValLen)
	h := *a.u32(nd + offHeight)
	return a.bytes(nd+offTower+h*linkSize+kl, vl)
}

func randomHeight() int {
	h := 1
	for h < MaxHeight && rand.Uint32() < pBranchThreshold {
		h++
	}
	return h
}

// Inserter remembers where its last insertion went (the node before and
// after it on every level), so that the next insertion, when it lands in the
// same gap — the common case for time-ordered keys, each above the last —
// links without searching. One Inserter belongs to one goroutine; the zero
// value is ready to use.
type Inserter struct {
	list       uint64 // Skiplist.id of the splice; 0: none
	height     int    // levels of prev and next that hold a splice
	prev, next [MaxHeight]uint32
	// Searches counts the insertions whose cached splice did not bracket
	// the key and that searched from the head instead.
	Searches uint64
}

// Add inserts the encoded internal key ikey with value. It copies both into
// the arena. Safe for concurrent use. Hot path: no heap allocation.
func (s *Skiplist) Add(ikey, value []byte) error {
	var ins Inserter
	return s.AddWith(&ins, ikey, value)
}

// AddWith is Add with a cached splice (see Inserter).
func (s *Skiplist) AddWith(ins *Inserter, ikey, value []byte) error {
	h := randomHeight()
	nodeSize := uint32(headerSize + h*linkSize + len(ikey) + len(value))
	nd, err := s.arena.alloc(nodeSize)
	if err != nil {
		return err
	}
	a := s.arena
	*a.u32(nd + offKeyLen) = uint32(len(ikey))
	*a.u32(nd + offValLen) = uint32(len(value))
	*a.u32(nd + offHeight) = uint32(h)
	kOff := nd + offTower + uint32(h)*linkSize
	copy(a.buf[kOff:], ikey)
	copy(a.buf[kOff+uint32(len(ikey)):], value)

	for {
		cur := s.height.Load()
		if uint32(h) <= cur || s.height.CompareAndSwap(cur, uint32(h)) {
			break
		}
	}
	listHeight := int(s.height.Load())

	ukey, trailer := base.UserKey(ikey), base.Trailer(ikey)
	if !s.spliceValid(ins, ukey, trailer, listHeight) {
		ins.Searches++
		x := s.head
		for level := listHeight - 1; level >= 0; level-- {
			p, n, eq := s.findSpliceForLevel(ukey, trailer, level, x)
			if eq {
				ins.list = 0
				return ErrRecordExists
			}
			ins.prev[level], ins.next[level] = p, n
			x = p
		}
		ins.list, ins.height = s.id, listHeight
	}
	for level := 0; level < h; level++ {
		for {
			next := ins.next[level]
			atomic.StoreUint32(a.u32(nd+offTower+uint32(level)*linkSize), next)
			if s.casNext(ins.prev[level], level, next, nd) {
				break
			}
			// Another writer linked a node into the gap: search on from
			// the node before it, which is still below our key.
			p, n, eq := s.findSpliceForLevel(ukey, trailer, level, ins.prev[level])
			if eq {
				// Only level 0 can see an equal key: higher levels are linked
				// after level 0 succeeded.
				ins.list = 0
				return ErrRecordExists
			}
			ins.prev[level], ins.next[level] = p, n
		}
		// The next insertion above this key starts right after it.
		ins.prev[level] = nd
	}
	return nil
}

// spliceValid reports whether ins's cached splice brackets the key on level
// 0 (prev < key < next) and is still a gap there (nothing was linked
// between prev and next since: another writer, or another Batch of the same
// writer, appending after prev would leave a stale splice whose CAS fails
// and whose recovery walks every node linked into the gap). Then it brackets
// the key on every level: an upper level's prev is at or before level 0's
// and its next at or after it, and a splice that went stale meanwhile only
// makes a CAS fail, which recomputes it.
func (s *Skiplist) spliceValid(ins *Inserter, ukey []byte, trailer uint64, listHeight int) bool {
	if ins.list != s.id || ins.height < listHeight {
		return false
	}
	p := ins.prev[0]
	if s.next(p, 0) != ins.next[0] {
		return false
	}
	if p != s.head && base.CompareSearch(s.key(p), ukey, trailer) >= 0 {
		return false
	}
	if n := ins.next[0]; n != 0 && base.CompareSearch(s.key(n), ukey, trailer) <= 0 {
		return false
	}
	return true
}

// findSpliceForLevel walks level from start (whose key is below the search
// key) and returns the last node before the search key and the first node at
// or after it; eq reports an exact match.
func (s *Skiplist) findSpliceForLevel(ukey []byte, trailer uint64, level int, start uint32) (prev, next uint32, eq bool) {
	prev = start
	for {
		next = s.next(prev, level)
		if next == 0 {
			return prev, 0, false
		}
		c := base.CompareSearch(s.key(next), ukey, trailer)
		if c == 0 {
			return prev, next, true
		}
		if c > 0 {
			return prev, next, false
		}
		prev = next
	}
}

// seekGE returns the first node whose key is >= (ukey, trailer), or 0.
func (s *Skiplist) seekGE(ukey []byte, trailer uint64) uint32 {
	x := s.head
	var n uint32
	for level := int(s.height.Load()) - 1; level >= 0; level-- {
		for {
			n = s.next(x, level)
			if n == 0 || base.CompareSearch(s.key(n), ukey, trailer) >= 0 {
				break
			}
			x = n
		}
	}
	return n
}

// seekLT returns the last node whose key is < (ukey, trailer), or 0.
func (s *Skiplist) seekLT(ukey []byte, trailer uint64) uint32 {
	x := s.head
	for level := int(s.height.Load()) - 1; level >= 0; level-- {
		for {
			n := s.next(x, level)
			if n == 0 || base.CompareSearch(s.key(n), ukey, trailer) >= 0 {
				break
			}
			x = n
		}
	}
	if x == s.head {
		return 0
	}
	return x
}

func (s *Skiplist) last() uint32 {
	x := s.head
	for level := int(s.height.Load()) - 1; level >= 0; level-- {
		for {
			n := s.next(x, level)
			if n == 0 {
				break
			}
			x = n
		}
	}
	if x == s.head {
		return 0
	}
	return x
}

// Get returns the newest entry for ukey whose sequence number is below
// seqLimit (entries at or above it are invisible). found is false when there
// is none. The value is a view into the arena. Hot path: no allocation.
func (s *Skiplist) Get(ukey []byte, seqLimit base.SeqNum) (value []byte, kind base.Kind, found bool) {
	nd := s.seekGE(ukey, base.MakeTrailer(seqLimit-1, base.KindMax))
	if nd == 0 {
		return nil, 0, false
	}
	k := s.key(nd)
	if string(base.UserKey(k)) != string(ukey) {
		return nil, 0, false
	}
	return s.value(nd), base.TrailerKind(base.Trailer(k)), true
}

// Iterator walks a Skiplist. The zero value is unusable; get one from
// Skiplist.NewIter or Init. It is not safe for concurrent use, but many
// iterators may run at once beside writers.
type Iterator struct {
	list *Skiplist
	nd   uint32
}

// Init points it at list, unpositioned.
func (it *Iterator) Init(list *Skiplist) { *it = Iterator{list: list} }

// Valid reports whether the iterator is at an entry.
func (it *Iterator) Valid() bool { return it.nd != 0 }

// Key is the current encoded internal key (a view into the arena).
func (it *Iterator) Key() []byte { return it.list.key(it.nd) }

// Value is the current value (a view into the arena).
func (it *Iterator) Value() []byte { return it.list.value(it.nd) }

// First moves to the smallest key.
func (it *Iterator) First() { it.nd = it.list.next(it.list.head, 0) }

// Last moves to the largest key.
func (it *Iterator) Last() { it.nd = it.list.last() }

// Next moves to the following key.
func (it *Iterator) Next() { it.nd = it.list.next(it.nd, 0) }

// Prev moves to the preceding key (an O(log n) search).
func (it *Iterator) Prev() {
	it.nd = it.list.seekLT(base.UserKey(it.Key()), base.Trailer(it.Key()))
}

// SeekGE moves to the first key >= (ukey, trailer).
func (it *Iterator) SeekGE(ukey []byte, trailer uint64) { it.nd = it.list.seekGE(ukey, trailer) }

// SeekLT moves to the last key < (ukey, trailer).
func (it *Iterator) SeekLT(ukey []byte, trailer uint64) { it.nd = it.list.seekLT(ukey, trailer) }
