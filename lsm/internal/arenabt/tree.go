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

// Node layout (see doc.go). Leaves and internal nodes share the header and
// the prefix array.
const (
	maxSlots = 14 // slots per node; the permutation word holds up to 15

	offPerm    = 0                      // uint64, atomic: count and sorted slot order
	offVersion = 8                      // uint16, writer only: bumped when the node is retired or its range shrinks
	offFlags   = 10                     // uint16, writer only
	offDepth   = 12                     // uint32: the user-key byte offset of this node's prefixes, fixed at creation
	offPrefix  = 16                     // [maxSlots]uint32: big-endian user-key bytes [depth, depth+4), zero-padded
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
	node   uint32
	pos    int   // sorted position of the child taken
	lo, hi bound // the node's range
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
	t.initNode(leaf, flagMay100, 0)
	t.setPerm(leaf, 0)
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

func (t *Tree) depth(n uint32) uint32 { return *t.arena.u32(n + offDepth) }

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

func (t *Tree) initNode(n uint32, flags uint16, depth uint32) {
	*t.arena.u16(n + offVersion) = 0
	*t.arena.u16(n + offFlags) = flags
	*t.arena.u32(n + offDepth) = depth
}

func (t *Tree) version(n uint32) *uint16 { return t.arena.u16(n + offVersion) }
func (t *Tree) flags(n uint32) *uint16   { return t.arena.u16(n + offFlags) }

// retire marks n as replaced (writer only): fingers into it go stale.
func (t *Tree) retire(n uint32) {
	*t.version(n)++
	*t.flags(n) |= flagRetired
}

func (t *Tree) entryKey(e uint32) []byte {
	return t.arena.bytes(e+entryHeader, *t.arena.u32(e))
}

func (t *Tree) entryUserKey(e uint32) []byte {
	n := *t.arena.u32(e) - base.TrailerLen
	return t.arena.bytes(e+entryHeader, n)
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
// keyPrefix(ukey, 0).
type searchKey struct {
	ukey    []byte
	trailer uint64
	prefix0 uint32
}

// keyPrefix is ukey's bytes [depth, depth+4), big-endian, zero-padded.
// Between keys that share their first depth bytes, prefixes order like the
// keys (a shorter key padded with zeros never sorts above a longer one it
// is a prefix of), so only equal prefixes need the full keys.
func keyPrefix(ukey []byte, depth uint32) uint32 {
	if uint64(len(ukey)) >= uint64(depth)+4 {
		return binary.BigEndian.Uint32(ukey[depth:])
	}
	var p uint32
	for i := uint64(depth); i < uint64(len(ukey)); i++ {
		p |= uint32(ukey[i]) << (24 - 8*(i-uint64(depth)))
	}
	return p
}

// commonPrefixLen is the length of the longest common prefix of a and b.
func commonPrefixLen(a, b []byte) uint32 {
	n := min(len(a), len(b))
	i := 0
	for i+8 <= n && binary.BigEndian.Uint64(a[i:]) == binary.BigEndian.Uint64(b[i:]) {
		i += 8
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return uint32(i)
}

func makeSearchKey(ukey []byte, trailer uint64) searchKey {
	return searchKey{ukey: ukey, trailer: trailer, prefix0: keyPrefix(ukey, 0)}
}

// bound is a key stored in the arena, a separator or a leaf's first key:
// its prefix at byte offset d and ref, the arena offset of the node field
// that holds the key's entry offset (node fields of a slot never change).
// Holding the field's offset instead of its value keeps a descent from
// reading the separator array, which it needs only on prefix ties. A
// prefix at d > 0 compares only with keys that share the bound's first d
// bytes (keys in the range of the node it came from). ref 0 means no bound
// (−∞ or +∞ by context).
type bound struct {
	prefix uint32
	d      uint32
	ref    uint32
}

func (t *Tree) boundEntry(b bound) uint32 { return *t.arena.u32(b.ref) }

// cmpBound orders b against k, which must share b's first b.d bytes.
func (t *Tree) cmpBound(b bound, k *searchKey) int {
	kp := k.prefix0
	if b.d != 0 {
		kp = keyPrefix(k.ukey, b.d)
	}
	if b.prefix != kp {
		if b.prefix < kp {
			return -1
		}
		return 1
	}
	return base.CompareSearch(t.entryKey(t.boundEntry(b)), k.ukey, k.trailer)
}

func (t *Tree) boundKey(b bound) searchKey {
	k := t.entryKey(t.boundEntry(b))
	n := len(k) - base.TrailerLen
	return makeSearchKey(k[:n:n], binary.LittleEndian.Uint64(k[n:]))
}

// fingerBound turns a bound from a descent for k (which lies in the range
// of the node the bound came from, so shares its first b.d bytes) into one
// with its prefix at offset 0, which compares with any key, without reading
// the bound's key: its first b.d bytes are k's.
func fingerBound(b bound, k *searchKey) bound {
	switch {
	case b.ref == 0 || b.d == 0:
		return b
	case b.d >= 4:
		return bound{prefix: k.prefix0, ref: b.ref}
	}
	keep := ^uint32(0) << (32 - 8*b.d)
	return bound{prefix: k.prefix0&keep | b.prefix>>(8*b.d), ref: b.ref}
}

// cmp orders the stored key (prefix, entry) against k, whose prefix at the
// node's depth is kp, like base.CompareInternal, reading the entry only
// when the prefixes tie.
func (t *Tree) cmp(prefix, entry, kp uint32, k *searchKey) int {
	if prefix != kp {
		if prefix < kp {
			return -1
		}
		return 1
	}
	return base.CompareSearch(t.entryKey(entry), k.ukey, k.trailer)
}

// cmpPos orders the key at sorted position i of leaf n (permutation p)
// against k (prefix kp at n's depth).
func (t *Tree) cmpPos(n uint32, p uint64, i int, kp uint32, k *searchKey) int {
	s := permSlot(p, i)
	return t.cmp(t.prefixAt(n, s), t.entryAt(n, s), kp, k)
}

// lowerBound is the first sorted position of leaf n whose key is >= k (k
// in n's range or at its high end).
func (t *Tree) lowerBound(n uint32, p uint64, k *searchKey) int {
	kp := keyPrefix(k.ukey, t.depth(n))
	lo, hi := 0, permCount(p)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if t.cmpPos(n, p, mid, kp, k) < 0 {
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
// (writer, under mu) it records the nodes, their ranges and the positions
// taken.
func (t *Tree) descend(k *searchKey, mode descendMode, path *[maxLevels]pathStep) (leaf uint32, lo, hi bound, levels int) {
	r := t.root.Load()
	n, levels := uint32(r), int(r>>32)
	for d := 0; d < levels; d++ {
		depth := t.depth(n)
		var kp uint32
		if k != nil {
			kp = keyPrefix(k.ukey, depth)
		}
		for {
			p := t.perm(n)
			j := t.childPos(n, p, kp, k, mode)
			child := t.childAt(n, permSlot(p, j))
			// A split publishes the parent's new permutation before it
			// swaps the old child's pointer for the new left half, so a
			// pointer read after a swap is only consistent with the
			// permutation after it: if that changed, choose again.
			if t.perm(n) != p {
				continue
			}
			if path != nil {
				path[d] = pathStep{node: n, pos: j, lo: lo, hi: hi}
			}
			if cnt := permCount(p); j+1 < cnt {
				s := permSlot(p, j+1)
				hi = bound{t.prefixAt(n, s), depth, n + offSep + 4*s}
			}
			if j > 0 {
				s := permSlot(p, j)
				lo = bound{t.prefixAt(n, s), depth, n + offSep + 4*s}
			}
			n = child
			break
		}
	}
	return n, lo, hi, levels
}

// childPos is the sorted position of the child of internal node n
// (permutation p) that descend takes in mode; kp is k's prefix at n's
// depth.
func (t *Tree) childPos(n uint32, p uint64, kp uint32, k *searchKey, mode descendMode) int {
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
		s := permSlot(p, mid)
		c := t.cmp(t.prefixAt(n, s), t.sepAt(n, s), kp, k)
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
	version uint16 // the leaf's version when cached
	lo, hi  bound  // prefixes at offset 0 (see fingerBound)
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
	k := makeSearchKey(ikey[:n:n], binary.LittleEndian.Uint64(ikey[n:]))
	t.mu.Lock()
	err := t.add(ins, &k, ikey, value)
	t.mu.Unlock()
	return err
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
	levels := -1 // the path is not known
	holds, above := t.fingerHolds(ins, k)
	if holds {
		leaf, lo, hi = ins.leaf, ins.lo, ins.hi
	} else {
		ins.Searches++
		leaf, lo, hi, levels = t.descend(k, modeGE, &t.path)
		lo, hi = fingerBound(lo, k), fingerBound(hi, k)
	}
	p := t.perm(leaf)
	cnt := permCount(p)
	kp := keyPrefix(k.ukey, t.depth(leaf))
	var pos int
	if above || (cnt > 0 && t.cmpPos(leaf, p, cnt-1, kp, k) < 0) {
		pos = cnt // above every key: the append case
	} else {
		pos = t.lowerBound(leaf, p, k)
		if pos < cnt && t.cmpPos(leaf, p, pos, kp, k) == 0 {
			a.rollback(mark)
			return ErrRecordExists
		}
	}
	if cnt < t.fanout {
		// A fresh slot, then one atomic store publishes it.
		s := uint32(cnt)
		t.setSlot(leaf, s, kp, e)
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
	if err := t.splitLeaf(ins, leaf, p, pos, k, kp, e, lo, hi, levels); err != nil {
		a.rollback(mark)
		return t.fullError(mark, ikey, value)
	}
	return nil
}

// fingerHolds reports whether k belongs in the leaf ins points at: the
// leaf is this tree's and was neither replaced nor cut short since, and k
// lies in its range. above reports that k is also above every key of the
// leaf (the append case). When k and the low bound share their first four
// bytes (time-ordered keys of one stream do), comparing k with the leaf's
// last key first settles both questions with one comparison: above it
// means above the low bound too.
func (t *Tree) fingerHolds(ins *Inserter, k *searchKey) (holds, above bool) {
	if ins.tree != t.id || *t.version(ins.leaf) != ins.version ||
		(ins.hi.ref != 0 && t.cmpBound(ins.hi, k) <= 0) {
		return false, false
	}
	if ins.lo.ref == 0 || ins.lo.prefix < k.prefix0 {
		return true, false
	}
	if ins.lo.prefix > k.prefix0 {
		return false, false
	}
	p := t.perm(ins.leaf)
	if cnt := permCount(p); cnt > 0 {
		last := t.entryAt(ins.leaf, permSlot(p, cnt-1))
		if base.CompareSearch(t.entryKey(last), k.ukey, k.trailer) < 0 {
			return true, true
		}
	}
	return t.cmpBound(ins.lo, k) <= 0, false
}

// fullError is ErrArenaFull with the sizes. Not a hot path.
func (t *Tree) fullError(mark arenaMark, ikey, value []byte) error {
	levels := int(t.root.Load() >> 32)
	return fmt.Errorf("%w: entry of %d bytes (key %d, value %d) plus up to %d bytes of index nodes do not fit in the %d bytes free (%d of %d used)",
		ErrArenaFull, entrySize(len(ikey), len(value)), len(ikey), len(value),
		uint64(levels+1)*2*internalNodeSize+internalNodeSize, mark.back-mark.front, t.arena.exactSize(), t.arena.Capacity())
}

// keyRef names a stored key: its entry offset, or the offset of a node
// field holding it (a bound's ref); both 0: unbounded.
type keyRef struct{ entry, ref uint32 }

func (r keyRef) none() bool { return r.entry == 0 && r.ref == 0 }

func (t *Tree) refKey(r keyRef) []byte {
	e := r.entry
	if e == 0 {
		e = *t.arena.u32(r.ref)
	}
	return t.entryUserKey(e)
}

// newDepth is the prefix depth of a node made for the range [lo, hi) out
// of a node of depth old: the common prefix length of the bounds' user
// keys (which every key in the range shares) rounded down to a multiple of
// 4, so a node's prefixes move deeper only when four more bytes tie across
// its whole range; 0 when a side is unbounded (old is 0 then). lp and hp
// are the prefixes at old of the lowest and highest keys the node starts
// with: the bounds can share four more bytes only if those two do, so the
// bound keys are read only then.
func (t *Tree) newDepth(old, lp, hp uint32, lo, hi keyRef) uint32 {
	if lo.none() || hi.none() || lp != hp {
		return old
	}
	return max(old, commonPrefixLen(t.refKey(lo), t.refKey(hi))&^3)
}

// rePrefix recomputes prefixes for a node of depth d whose slots came from
// a node of depth old (entries 0, the root's separator-less first slot,
// get 0).
func (t *Tree) rePrefix(prefixes, entries []uint32, old, d uint32) {
	if d == old {
		return
	}
	for i, e := range entries {
		if e == 0 {
			prefixes[i] = 0
			continue
		}
		prefixes[i] = keyPrefix(t.entryUserKey(e), d)
	}
}

// splitLeaf inserts the entry e (key k, prefix kp at the leaf's depth,
// sorted position pos) into the full leaf by splitting it. Every node is
// built before one atomic store publishes the change (see
// insertIntoParent); on errNoRoom nothing was published and the caller
// rolls the arena back.
func (t *Tree) splitLeaf(ins *Inserter, leaf uint32, p uint64, pos int, k *searchKey, kp, e uint32, lo, hi bound, levels int) error {
	a := t.arena
	cnt := permCount(p)
	old := t.depth(leaf)
	loRef, hiRef := keyRef{ref: lo.ref}, keyRef{ref: hi.ref}
	if *t.flags(leaf)&flagMay100 != 0 && pos == cnt {
		// 100/0: the full leaf stays as it is, the key starts a new leaf.
		r, ok := a.allocNode(leafNodeSize)
		if !ok {
			return errNoRoom
		}
		// hi's prefix is at offset 0 (a finger bound): usable when old is.
		hp := kp
		if old == 0 && hi.ref != 0 {
			hp = hi.prefix
		}
		d := t.newDepth(old, kp, hp, keyRef{entry: e}, hiRef)
		t.initNode(r, flagMay100, d)
		t.setSlot(r, 0, keyPrefix(k.ukey, d), e)
		t.setPerm(r, identityPerm(1))
		if err := t.insertIntoParent(levels-1, leaf, leaf, r, e, kp, old, levels); err != nil {
			return err
		}
		// Its range now ends at the key, and it may not split 100/0 again
		// (the space bound in doc.go needs that).
		*t.flags(leaf) &^= flagMay100
		*t.version(leaf)++
		*ins = Inserter{tree: t.id, leaf: r, lo: bound{prefix: k.prefix0, ref: r + offEntry}, hi: hi, Searches: ins.Searches}
		return nil
	}
	var prefixes [maxSlots + 1]uint32
	var entries [maxSlots + 1]uint32
	j := 0
	for i := 0; i <= cnt; i++ {
		if i == pos {
			prefixes[j], entries[j] = kp, e
			j++
		}
		if i < cnt {
			s := permSlot(p, i)
			prefixes[j], entries[j] = t.prefixAt(leaf, s), t.entryAt(leaf, s)
			j++
		}
	}
	leftN := (cnt + 2) / 2
	sepRef := keyRef{entry: entries[leftN]}
	sepPrefix := prefixes[leftN] // at old
	dl := t.newDepth(old, prefixes[0], sepPrefix, loRef, sepRef)
	dr := t.newDepth(old, sepPrefix, prefixes[j-1], sepRef, hiRef)
	left, ok := a.allocNode(leafNodeSize)
	if !ok {
		return errNoRoom
	}
	right, ok := a.allocNode(leafNodeSize)
	if !ok {
		return errNoRoom
	}
	var rp [maxSlots + 1]uint32
	copy(rp[:], prefixes[:j])
	t.rePrefix(prefixes[:leftN], entries[:leftN], old, dl)
	t.rePrefix(rp[leftN:j], entries[leftN:j], old, dr)
	t.fillNode(left, dl, prefixes[:leftN], entries[:leftN], nil)
	t.fillNode(right, dr, rp[leftN:j], entries[leftN:j], nil)
	if err := t.insertIntoParent(levels-1, leaf, left, right, entries[leftN], sepPrefix, old, levels); err != nil {
		return err
	}
	t.retire(leaf)
	// sep and k both lie in the old leaf's range: fingerBound applies.
	sep := fingerBound(bound{prefix: sepPrefix, d: old, ref: right + offEntry}, k) // slot 0 of right
	if pos < leftN {
		*ins = Inserter{tree: t.id, leaf: left, lo: lo, hi: sep, Searches: ins.Searches}
	} else {
		*ins = Inserter{tree: t.id, leaf: right, lo: sep, hi: hi, Searches: ins.Searches}
	}
	return nil
}

// fillNode writes a new, unpublished node's slots in sorted order: a leaf's
// when children is nil, else an internal node's.
func (t *Tree) fillNode(n, depth uint32, prefixes []uint32, entries []uint32, children []uint32) {
	t.initNode(n, 0, depth)
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
// be old itself) and right (keys >= the key of entry sep). With room in the
// parent it writes a fresh slot for right and publishes it with one
// permutation store, then swaps the parent's pointer from old to left with
// one atomic store; a full parent is split copy-on-write and the change
// moves up a level. At the root (d < 0) a new root takes left and right and
// one atomic store of t.root publishes it. Nothing is published before
// every allocation has succeeded: a failure returns errNoRoom with the tree
// unchanged.
func (t *Tree) insertIntoParent(d int, old, left, right, sep, sepPrefix, sepDepth uint32, levels int) error {
	a := t.arena
	// sep's prefix at depth: known when depth is sepDepth, else read.
	prefixOfSep := func(depth uint32) uint32 {
		if depth == sepDepth {
			return sepPrefix
		}
		return keyPrefix(t.entryUserKey(sep), depth)
	}
	if d < 0 {
		if levels+1 > maxLevels {
			panic(fmt.Sprintf("arenabt: tree deeper than %d levels", maxLevels))
		}
		r, ok := a.allocNode(internalNodeSize)
		if !ok {
			return errNoRoom
		}
		t.fillNode(r, 0, []uint32{0, prefixOfSep(0)}, []uint32{0, sep}, []uint32{left, right})
		t.root.Store(uint64(r) | uint64(levels+1)<<32)
		return nil
	}
	step := t.path[d]
	parent, j := step.node, step.pos
	p := t.perm(parent)
	cnt := permCount(p)
	depth := t.depth(parent)
	if cnt < t.fanout {
		s := uint32(cnt)
		t.setSep(parent, s, prefixOfSep(depth), sep)
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
			prefixes[n], entries[n], children[n] = prefixOfSep(depth), sep, right
		}
		n++
	}
	leftN := (cnt + 2) / 2
	upRef := keyRef{entry: entries[leftN]}
	upPrefix := prefixes[leftN] // at depth
	// Position 0 has no separator: the left half's lowest key is at 1.
	lowest := upPrefix
	if leftN > 1 {
		lowest = prefixes[1]
	}
	dl := t.newDepth(depth, lowest, upPrefix, keyRef{ref: step.lo.ref}, upRef)
	dr := t.newDepth(depth, upPrefix, prefixes[n-1], upRef, keyRef{ref: step.hi.ref})
	pl, ok := a.allocNode(internalNodeSize)
	if !ok {
		return errNoRoom
	}
	pr, ok := a.allocNode(internalNodeSize)
	if !ok {
		return errNoRoom
	}
	var rp [maxSlots + 1]uint32
	copy(rp[:], prefixes[:n])
	t.rePrefix(prefixes[:leftN], entries[:leftN], depth, dl)
	t.rePrefix(rp[leftN:n], entries[leftN:n], depth, dr)
	t.fillNode(pl, dl, prefixes[:leftN], entries[:leftN], children[:leftN])
	t.fillNode(pr, dr, rp[leftN:n], entries[leftN:n], children[leftN:n])
	if err := t.insertIntoParent(d-1, parent, pl, pr, entries[leftN], upPrefix, depth, levels); err != nil {
		return err
	}
	t.retire(parent)
	return nil
}
