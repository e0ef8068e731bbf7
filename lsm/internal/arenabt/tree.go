package arenabt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/tapewire/tapewire/lsm/internal/base"
)

// ErrRecordExists is returned by Add when the internal key is already present.
var ErrRecordExists = errors.New("arenabt: record with this internal key already exists")

// Node layout (see doc.go). Leaves and internal nodes share the header, the
// prefix array and the entry array; internal nodes add the child array.
const (
	maxSlots = 14 // slots per node; the permutation word holds up to 15

	offPerm    = 0                      // uint64, atomic: count and sorted slot order
	offVersion = 8                      // uint32, writer only: bumped when the node is retired or its range shrinks
	offFlags   = 12                     // uint32, writer only
	offPrefix  = 16                     // [maxSlots]uint32: big-endian first 4 bytes of the user key
	offEntry   = offPrefix + 4*maxSlots // leaf: [maxSlots]uint32 entry offsets
	offChild   = offPrefix + 4*maxSlots // internal: [maxSlots]uint32 child offsets, atomic
	offSep     = offChild + 4*maxSlots  // internal: [maxSlots]uint32 separator entry offsets

	// An internal node keeps its children beside the prefixes, in the
	// first two cache lines with the permutation: a search that the
	// prefixes decide touches nothing else. Separator entries (prefix
	// ties) come last.
	leafNodeSize     = (offEntry + 4*maxSlots + nodeAlign - 1) &^ (nodeAlign - 1)
	internalNodeSize = (offSep + 4*maxSlots + nodeAlign - 1) &^ (nodeAlign - 1)

	flagMay100  = 1 // a full leaf may split 100/0 when a key lands above all of its keys
	flagRetired = 2 // replaced by a copy-on-write split; garbage

	entryHeader = 8 // keyLen u32, valLen u32

	// maxLevels bounds the internal levels. Every internal node but the
	// root holds at least half its fanout (≥ 7) children and entries are
	// at least 16 bytes, so a 4 GiB arena needs at most 11 levels; tests
	// with a fanout of 2 need no more than 32 either.
	maxLevels = 32
)

// splitMinGrowth is the least number of insertions a node made by a
// general split receives before it is full again: it starts with
// ⌈(maxSlots+1)/2⌉ slots.
const splitMinGrowth = maxSlots - (maxSlots+2)/2

// nodeAllowance is the amortized index-node bytes per entry (proof in
// doc.go): a leaf split costs at most two leaves per splitMinGrowth leaf
// insertions, and internal levels get a geometric share of that.
const nodeAllowance = (2*leafNodeSize*(splitMinGrowth-1) + 2*internalNodeSize + splitMinGrowth*(splitMinGrowth-1) - 1) /
	(splitMinGrowth * (splitMinGrowth - 1))

// FixedOverhead is the arena space, beyond Arena.Size after New and
// MaxNodeSize per entry, that the index may need: one new root per level.
// A caller that reserves both never sees ErrArenaFull (doc.go proves it).
const FixedOverhead = maxLevels * internalNodeSize

// MaxNodeSize is the arena bytes to reserve for an entry with the given key
// and value lengths: the entry itself plus its amortized share of index
// nodes. The sum over a tree's entries plus FixedOverhead bounds the
// arena space the tree uses beyond its empty size.
func MaxNodeSize(keyLen, valLen int) uint64 {
	return entrySize(keyLen, valLen) + nodeAllowance
}

func entrySize(keyLen, valLen int) uint64 {
	return uint64(entryHeader+keyLen+valLen+entryAlign-1) &^ (entryAlign - 1)
}

// Tree is an ordered set of internal keys with values, stored in an Arena.
type Tree struct {
	arena *Arena
	// root is the root node's offset in the low 32 bits and the number of
	// internal levels above the leaves in the high 32 (0: the root is a
	// leaf), so readers load both with one atomic load.
	root atomic.Uint64
	// id tells Inserters which tree their finger belongs to without a
	// pointer that would keep a discarded tree's arena reachable.
	id uint64
	// fanout is the slots a node may use (maxSlots; tests use fewer to
	// force deep trees).
	fanout int

	// mu serializes writers. Readers never take it.
	mu   sync.Mutex
	path [maxLevels]pathStep // the writer's descent, guarded by mu
}

type pathStep struct {
	node uint32
	pos  int // sorted position of the child taken
}

var nextTreeID atomic.Uint64

// New builds an empty tree in arena. The arena's buffer need not be zeroed.
func New(arena *Arena) (*Tree, error) { return newTree(arena, maxSlots) }

func newTree(arena *Arena, fanout int) (*Tree, error) {
	if fanout < 2 || fanout > maxSlots {
		return nil, fmt.Errorf("arenabt: fanout %d outside [2, %d]", fanout, maxSlots)
	}
	leaf, ok := arena.allocNode(leafNodeSize)
	if !ok {
		return nil, fmt.Errorf("%w: a %d-byte arena cannot hold the %d-byte root leaf", ErrArenaFull, arena.Capacity(), leafNodeSize)
	}
	t := &Tree{arena: arena, id: nextTreeID.Add(1), fanout: fanout}
	t.initNode(leaf, flagMay100)
	atomic.StoreUint64(arena.u64(leaf+offPerm), 0)
	t.root.Store(uint64(leaf))
	return t, nil
}

// Arena returns the tree's arena.
func (t *Tree) Arena() *Arena { return t.arena }

// Empty reports whether no entry was ever added.
func (t *Tree) Empty() bool {
	r := t.root.Load()
	return r>>32 == 0 && permCount(t.perm(uint32(r))) == 0
}

// ---- node and entry access ----

func (t *Tree) perm(n uint32) uint64 { return atomic.LoadUint64(t.arena.u64(n + offPerm)) }

func (t *Tree) setPerm(n uint32, p uint64) { atomic.StoreUint64(t.arena.u64(n+offPerm), p) }

func (t *Tree) prefixAt(n, slot uint32) uint32 { return *t.arena.u32(n + offPrefix + 4*slot) }

func (t *Tree) entryAt(n, slot uint32) uint32 { return *t.arena.u32(n + offEntry + 4*slot) }

func (t *Tree) sepAt(n, slot uint32) uint32 { return *t.arena.u32(n + offSep + 4*slot) }

func (t *Tree) childAt(n, slot uint32) uint32 {
	return atomic.LoadUint32(t.arena.u32(n + offChild + 4*slot))
}

func (t *Tree) setChild(n, slot, child uint32) {
	atomic.StoreUint32(t.arena.u32(n+offChild+4*slot), child)
}

// setSlot writes a leaf slot.
func (t *Tree) setSlot(n, slot uint32, prefix uint32, entry uint32) {
	*t.arena.u32(n + offPrefix + 4*slot) = prefix
	*t.arena.u32(n + offEntry + 4*slot) = entry
}

// setSep writes an internal slot's separator (its child is set apart).
func (t *Tree) setSep(n, slot uint32, prefix uint32, entry uint32) {
	*t.arena.u32(n + offPrefix + 4*slot) = prefix
	*t.arena.u32(n + offSep + 4*slot) = entry
}

func (t *Tree) initNode(n uint32, flags uint32) {
	*t.arena.u32(n + offVersion) = 0
	*t.arena.u32(n + offFlags) = flags
}

func (t *Tree) version(n uint32) *uint32 { return t.arena.u32(n + offVersion) }
func (t *Tree) flags(n uint32) *uint32   { return t.arena.u32(n + offFlags) }

// retire marks n as replaced (writer only): fingers into it go stale.
func (t *Tree) retire(n uint32) {
	*t.version(n)++
	*t.flags(n) |= flagRetired
}

func (t *Tree) entryKey(e uint32) []byte {
	return t.arena.bytes(e+entryHeader, *t.arena.u32(e))
}

func (t *Tree) entryValue(e uint32) []byte {
	kl := *t.arena.u32(e)
	return t.arena.bytes(e+entryHeader+kl, *t.arena.u32(e + 4))
}

// ---- permutation word: count in bits 0-3, the slot at sorted position i
// in bits 4+4i .. 7+4i ----

func permCount(p uint64) int { return int(p & 15) }

func permSlot(p uint64, i int) uint32 { return uint32(p>>(4+4*uint(i))) & 15 }

// permInsert returns p with slot inserted at sorted position pos.
func permInsert(p uint64, pos int, slot uint32) uint64 {
	shift := 4 + 4*uint(pos)
	low := p & (1<<shift - 1) &^ 15
	high := p >> shift << (shift + 4)
	return high | uint64(slot)<<shift | low | uint64(permCount(p)+1)
}

// identityPerm is the permutation of n slots stored in sorted order.
func identityPerm(n int) uint64 {
	p := uint64(n)
	for i := 0; i < n; i++ {
		p |= uint64(i) << (4 + 4*uint(i))
	}
	return p
}

// ---- keys ----

// searchKey is an internal key split for comparison: user key, trailer and
// the user key's 8-byte prefix.
type searchKey struct {
	ukey    []byte
	trailer uint64
	prefix  uint32
}

// userPrefix is the first 4 bytes of ukey, big-endian, zero-padded. Prefixes
// order like the keys (a shorter key padded with zeros never sorts above a
// longer one it is a prefix of), so only equal prefixes need the full key.
func userPrefix(ukey []byte) uint32 {
	if len(ukey) >= 4 {
		return binary.BigEndian.Uint32(ukey)
	}
	var p uint32
	for i, b := range ukey {
		p |= uint32(b) << (24 - 8*uint(i))
	}
	return p
}

func makeSearchKey(ukey []byte, trailer uint64) searchKey {
	return searchKey{ukey: ukey, trailer: trailer, prefix: userPrefix(ukey)}
}

// bound is a key stored in the arena, a separator or a leaf's first key:
// its prefix and ref, the arena offset of the node field that holds the
// key's entry offset (node fields of a slot never change). Holding the
// field's offset instead of its value keeps a descent from reading the
// separator array, which it needs only on prefix ties. ref 0 means no
// bound (−∞ or +∞ by context).
type bound struct {
	prefix uint32
	ref    uint32
}

func (t *Tree) boundEntry(b bound) uint32 { return *t.arena.u32(b.ref) }

// cmpBound is cmp for a bound.
func (t *Tree) cmpBound(b bound, k *searchKey) int {
	if b.prefix != k.prefix {
		if b.prefix < k.prefix {
			return -1
		}
		return 1
	}
	return base.CompareSearch(t.entryKey(t.boundEntry(b)), k.ukey, k.trailer)
}

func (t *Tree) boundKey(b bound) searchKey {
	k := t.entryKey(t.boundEntry(b))
	n := len(k) - base.TrailerLen
	return searchKey{ukey: k[:n:n], trailer: binary.LittleEndian.Uint64(k[n:]), prefix: b.prefix}
}

// cmp orders the stored key (prefix, entry) against k like
// base.CompareInternal, reading the entry only when the prefixes tie.
func (t *Tree) cmp(prefix uint32, entry uint32, k *searchKey) int {
	if prefix != k.prefix {
		if prefix < k.prefix {
			return -1
		}
		return 1
	}
	return base.CompareSearch(t.entryKey(entry), k.ukey, k.trailer)
}

// cmpPos orders the key at sorted position i of leaf n (permutation p)
// against k.
func (t *Tree) cmpPos(n uint32, p uint64, i int, k *searchKey) int {
	s := permSlot(p, i)
	return t.cmp(t.prefixAt(n, s), t.entryAt(n, s), k)
}

// cmpSepPos is cmpPos for the separator of internal node n.
func (t *Tree) cmpSepPos(n uint32, p uint64, i int, k *searchKey) int {
	s := permSlot(p, i)
	return t.cmp(t.prefixAt(n, s), t.sepAt(n, s), k)
}

// lowerBound is the first sorted position of leaf n whose key is >= k.
func (t *Tree) lowerBound(n uint32, p uint64, k *searchKey) int {
	lo, hi := 0, permCount(p)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if t.cmpPos(n, p, mid, k) < 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// ---- descent ----

type descendMode uint8

const (
	modeGE    descendMode = iota // child that holds the keys >= k: last separator <= k
	modeLT                       // child that holds the keys < k: last separator < k
	modeFirst                    // leftmost
	modeLast                     // rightmost
)

// descend walks from the root to a leaf and returns it with the key range
// [lo, hi) its parent assigns it. Position 0 of an internal node has no
// separator (it takes every key below position 1's). When path is not nil
// (writer, under mu) it records the nodes and positions taken.
func (t *Tree) descend(k *searchKey, mode descendMode, path *[maxLevels]pathStep) (leaf uint32, lo, hi bound, levels int) {
	r := t.root.Load()
	n, levels := uint32(r), int(r>>32)
	for d := 0; d < levels; d++ {
		for {
			p := t.perm(n)
			j := t.childPos(n, p, k, mode)
			child := t.childAt(n, permSlot(p, j))
			// A split publishes the parent's new permutation before it
			// swaps the old child's pointer for the new left half, so a
			// pointer read after a swap is only consistent with the
			// permutation after it: if that changed, choose again.
			if t.perm(n) != p {
				continue
			}
			cnt := permCount(p)
			if j+1 < cnt {
				s := permSlot(p, j+1)
				hi = bound{t.prefixAt(n, s), n + offSep + 4*s}
			}
			if j > 0 {
				s := permSlot(p, j)
				lo = bound{t.prefixAt(n, s), n + offSep + 4*s}
			}
			if path != nil {
				path[d] = pathStep{node: n, pos: j}
			}
			n = child
			break
		}
	}
	return n, lo, hi, levels
}

// childPos is the sorted position of the child of internal node n
// (permutation p) that descend takes in mode.
func (t *Tree) childPos(n uint32, p uint64, k *searchKey, mode descendMode) int {
	cnt := permCount(p)
	switch mode {
	case modeFirst:
		return 0
	case modeLast:
		return cnt - 1
	}
	a, b := 1, cnt
	for a < b {
		mid := int(uint(a+b) >> 1)
		c := t.cmpSepPos(n, p, mid, k)
		if c < 0 || (c == 0 && mode == modeGE) {
			a = mid + 1
		} else {
			b = mid
		}
	}
	return a - 1
}

// ---- writes ----

// Inserter is a writer's finger: the leaf its last insertion went to, with
// that leaf's key range. When the next key falls in the same range — every
// time-ordered key of one stream does — it is inserted there without a
// descent from the root. One Inserter belongs to one goroutine; the zero
// value is ready to use.
type Inserter struct {
	tree    uint64 // Tree.id of the finger; 0: none
	leaf    uint32
	version uint32 // the leaf's version when cached
	lo, hi  bound
	// Searches counts the insertions whose finger did not hold the key and
	// that descended from the root instead.
	Searches uint64
}

// Add inserts the encoded internal key ikey (a user key and an 8-byte
// trailer) with value, copying both into the arena. Safe for concurrent
// use (writers serialize on the tree's mutex). Hot path: no heap
// allocation.
func (t *Tree) Add(ikey, value []byte) error {
	var ins Inserter
	return t.AddWith(&ins, ikey, value)
}

// AddWith is Add through a finger (see Inserter).
func (t *Tree) AddWith(ins *Inserter, ikey, value []byte) error {
	n := len(ikey) - base.TrailerLen
	k := searchKey{ukey: ikey[:n:n], trailer: binary.LittleEndian.Uint64(ikey[n:]), prefix: userPrefix(ikey[:n])}
	t.mu.Lock()
	err := t.add(ins, &k, ikey, value)
	t.mu.Unlock()
	return err
}

// fingerHolds reports whether k belongs in the leaf ins points at: the
// leaf is this tree's and was neither replaced nor cut short since, and k
// lies in its range. above reports that k is above every key of the leaf
// (the append case, which also proves k above the leaf's low bound).
func (t *Tree) fingerHolds(ins *Inserter, k *searchKey) (holds, above bool) {
	if ins.tree != t.id || *t.version(ins.leaf) != ins.version {
		return false, false
	}
	if ins.hi.ref != 0 && t.cmpBound(ins.hi, k) <= 0 {
		return false, false
	}
	p := t.perm(ins.leaf)
	if cnt := permCount(p); cnt > 0 && t.cmpPos(ins.leaf, p, cnt-1, k) < 0 {
		return true, true
	}
	return ins.lo.ref == 0 || t.cmpBound(ins.lo, k) <= 0, false
}

// errNoRoom is add's internal signal that a node allocation failed.
var errNoRoom = errors.New("no room")

func (t *Tree) add(ins *Inserter, k *searchKey, ikey, value []byte) error {
	a := t.arena
	mark := a.mark()
	e, ok := a.allocEntry(entrySize(len(ikey), len(value)))
	if !ok {
		return t.fullError(mark, ikey, value)
	}
	*a.u32(e) = uint32(len(ikey))
	*a.u32(e + 4) = uint32(len(value))
	copy(a.bytes(e+entryHeader, uint32(len(ikey))), ikey)
	copy(a.bytes(e+entryHeader+uint32(len(ikey)), uint32(len(value))), value)

	var leaf uint32
	var lo, hi bound
	var p uint64
	var cnt, pos int
	levels := -1 // the path is not known
	holds, above := t.fingerHolds(ins, k)
	if holds {
		leaf, lo, hi = ins.leaf, ins.lo, ins.hi
	} else {
		ins.Searches++
		leaf, lo, hi, levels = t.descend(k, modeGE, &t.path)
	}
	p = t.perm(leaf)
	cnt = permCount(p)
	if above || (!holds && cnt > 0 && t.cmpPos(leaf, p, cnt-1, k) < 0) {
		pos = cnt // above every key: the append case
	} else {
		pos = t.lowerBound(leaf, p, k)
		if pos < cnt && t.cmpPos(leaf, p, pos, k) == 0 {
			a.rollback(mark)
			return ErrRecordExists
		}
	}
	if cnt < t.fanout {
		// A fresh slot, then one atomic store publishes it.
		s := uint32(cnt)
		t.setSlot(leaf, s, k.prefix, e)
		t.setPerm(leaf, permInsert(p, pos, s))
		if !holds {
			*ins = Inserter{tree: t.id, leaf: leaf, version: *t.version(leaf), lo: lo, hi: hi, Searches: ins.Searches}
		}
		return nil
	}
	if levels < 0 {
		leaf2, _, _, l := t.descend(k, modeGE, &t.path)
		if leaf2 != leaf {
			panic("arenabt: a valid finger names a leaf the descent does not reach")
		}
		levels = l
	}
	if err := t.splitLeaf(ins, leaf, p, pos, k, e, lo, hi, levels); err != nil {
		a.rollback(mark)
		return t.fullError(mark, ikey, value)
	}
	return nil
}

// fullError is ErrArenaFull with the sizes. Not a hot path.
func (t *Tree) fullError(mark arenaMark, ikey, value []byte) error {
	levels := int(t.root.Load() >> 32)
	return fmt.Errorf("%w: entry of %d bytes (key %d, value %d) plus up to %d bytes of index nodes do not fit in the %d bytes free (%d of %d used)",
		ErrArenaFull, entrySize(len(ikey), len(value)), len(ikey), len(value),
		uint64(levels+1)*2*internalNodeSize+internalNodeSize, mark.back-mark.front, t.arena.Size(), t.arena.Capacity())
}

// splitLeaf inserts the entry e (key k, sorted position pos) into the full
// leaf by splitting it. Every node is built before one atomic store
// publishes the change (see insertIntoParent); on errNoRoom nothing was
// published and the caller rolls the arena back.
func (t *Tree) splitLeaf(ins *Inserter, leaf uint32, p uint64, pos int, k *searchKey, e uint32, lo, hi bound, levels int) error {
	a := t.arena
	cnt := permCount(p)
	if *t.flags(leaf)&flagMay100 != 0 && pos == cnt {
		// 100/0: the full leaf stays as it is, the key starts a new leaf.
		r, ok := a.allocNode(leafNodeSize)
		if !ok {
			return errNoRoom
		}
		t.initNode(r, flagMay100)
		t.setSlot(r, 0, k.prefix, e)
		t.setPerm(r, identityPerm(1))
		sep := bound{k.prefix, r + offEntry} // slot 0 of r holds e
		if err := t.insertIntoParent(levels-1, leaf, leaf, r, sep, levels); err != nil {
			return err
		}
		// Its range now ends at sep, and it may not split 100/0 again
		// (the space bound in doc.go needs that).
		*t.flags(leaf) &^= flagMay100
		*t.version(leaf)++
		*ins = Inserter{tree: t.id, leaf: r, lo: sep, hi: hi, Searches: ins.Searches}
		return nil
	}
	var prefixes [maxSlots + 1]uint32
	var entries [maxSlots + 1]uint32
	j := 0
	for i := 0; i <= cnt; i++ {
		if i == pos {
			prefixes[j], entries[j] = k.prefix, e
			j++
		}
		if i < cnt {
			s := permSlot(p, i)
			prefixes[j], entries[j] = t.prefixAt(leaf, s), t.entryAt(leaf, s)
			j++
		}
	}
	leftN := (cnt + 2) / 2
	left, ok := a.allocNode(leafNodeSize)
	if !ok {
		return errNoRoom
	}
	right, ok := a.allocNode(leafNodeSize)
	if !ok {
		return errNoRoom
	}
	t.fillNode(left, prefixes[:leftN], entries[:leftN], nil)
	t.fillNode(right, prefixes[leftN:j], entries[leftN:j], nil)
	sep := bound{prefixes[leftN], right + offEntry} // slot 0 of right
	if err := t.insertIntoParent(levels-1, leaf, left, right, sep, levels); err != nil {
		return err
	}
	t.retire(leaf)
	if pos < leftN {
		*ins = Inserter{tree: t.id, leaf: left, lo: lo, hi: sep, Searches: ins.Searches}
	} else {
		*ins = Inserter{tree: t.id, leaf: right, lo: sep, hi: hi, Searches: ins.Searches}
	}
	return nil
}

// fillNode writes a new, unpublished node's slots in sorted order: a leaf's
// when children is nil, else an internal node's.
func (t *Tree) fillNode(n uint32, prefixes []uint32, entries []uint32, children []uint32) {
	t.initNode(n, 0)
	for i := range prefixes {
		if children == nil {
			t.setSlot(n, uint32(i), prefixes[i], entries[i])
		} else {
			t.setSep(n, uint32(i), prefixes[i], entries[i])
			t.setChild(n, uint32(i), children[i])
		}
	}
	t.setPerm(n, identityPerm(len(prefixes)))
}

// insertIntoParent replaces old, the child at t.path[d], by left (which may
// be old itself) and right (keys >= sep). With room in the parent it writes a
// fresh slot for right and publishes it with one permutation store, then
// swaps the parent's pointer from old to left with one atomic store; a full
// parent is split copy-on-write and the change moves up a level. At the
// root (d < 0) a new root takes left and right and one atomic store of
// t.root publishes it. Nothing is published before every allocation has
// succeeded: a failure returns errNoRoom with the tree unchanged.
func (t *Tree) insertIntoParent(d int, old, left, right uint32, sep bound, levels int) error {
	a := t.arena
	if d < 0 {
		if levels+1 > maxLevels {
			panic(fmt.Sprintf("arenabt: tree deeper than %d levels", maxLevels))
		}
		r, ok := a.allocNode(internalNodeSize)
		if !ok {
			return errNoRoom
		}
		t.fillNode(r, []uint32{0, sep.prefix}, []uint32{0, t.boundEntry(sep)}, []uint32{left, right})
		t.root.Store(uint64(r) | uint64(levels+1)<<32)
		return nil
	}
	parent, j := t.path[d].node, t.path[d].pos
	p := t.perm(parent)
	cnt := permCount(p)
	if cnt < t.fanout {
		s := uint32(cnt)
		t.setSep(parent, s, sep.prefix, t.boundEntry(sep))
		t.setChild(parent, s, right)
		t.setPerm(parent, permInsert(p, j+1, s))
		if left != old {
			t.setChild(parent, permSlot(p, j), left)
		}
		return nil
	}
	var prefixes [maxSlots + 1]uint32
	var entries, children [maxSlots + 1]uint32
	n := 0
	for i := 0; i < cnt; i++ {
		s := permSlot(p, i)
		prefixes[n], entries[n], children[n] = t.prefixAt(parent, s), t.sepAt(parent, s), t.childAt(parent, s)
		if i == j {
			children[n] = left
			n++
			prefixes[n], entries[n], children[n] = sep.prefix, t.boundEntry(sep), right
		}
		n++
	}
	leftN := (cnt + 2) / 2
	pl, ok := a.allocNode(internalNodeSize)
	if !ok {
		return errNoRoom
	}
	pr, ok := a.allocNode(internalNodeSize)
	if !ok {
		return errNoRoom
	}
	t.fillNode(pl, prefixes[:leftN], entries[:leftN], children[:leftN])
	t.fillNode(pr, prefixes[leftN:n], entries[leftN:n], children[leftN:n])
	if err := t.insertIntoParent(d-1, parent, pl, pr, bound{prefixes[leftN], pr + offSep}, levels); err != nil {
		return err
	}
	t.retire(parent)
	return nil
}
