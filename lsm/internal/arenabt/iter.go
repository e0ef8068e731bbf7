package arenabt

import "github.com/tapewire/tapewire/lsm/internal/base"

// position is a reader's place in a leaf: the permutation it loaded (a
// consistent snapshot: the slots it names were written before it was
// stored and never change), the sorted index, and the leaf's range from
// the descent that found it.
type position struct {
	leaf   uint32
	perm   uint64
	pos    int
	lo, hi bound
}

func (ps *position) entry(t *Tree) uint32 {
	return t.entryAt(ps.leaf, permSlot(ps.perm, ps.pos))
}

// seekGE positions ps at the first key >= k. A leaf may still hold keys
// at or above its hi bound (an old leaf while its split is being linked);
// those are skipped for the next leaf's, which hold them too.
func (t *Tree) seekGE(ps *position, k searchKey) bool {
	for {
		leaf, lo, hi, _ := t.descend(&k, modeGE, nil)
		p := t.perm(leaf)
		i := t.lowerBound(leaf, p, &k)
		*ps = position{leaf: leaf, perm: p, pos: i, lo: lo, hi: hi}
		if i < permCount(p) && (hi.ref == 0 || t.below(ps, i, hi)) {
			return true
		}
		if hi.ref == 0 {
			return false
		}
		// The keys >= k in this leaf's range are exhausted: the answer is
		// the first key of the next range. hi only grows, so this ends.
		k = t.boundKey(hi)
	}
}

// seekLT positions ps at the last key < k.
func (t *Tree) seekLT(ps *position, k searchKey) bool {
	for {
		leaf, lo, hi, _ := t.descend(&k, modeLT, nil)
		p := t.perm(leaf)
		i := t.lowerBound(leaf, p, &k) - 1
		*ps = position{leaf: leaf, perm: p, pos: i, lo: lo, hi: hi}
		if i >= 0 {
			return true
		}
		if lo.ref == 0 {
			return false
		}
		// Nothing below k in [lo, k): the answer lies below lo, which
		// only falls, so this ends.
		k = t.boundKey(lo)
	}
}

// below reports whether the key at sorted position i of ps's leaf is below
// the bound b (from the descent that found the leaf, so the key shares b's
// first b.d bytes). Prefixes decide unless they tie; the leaf's own
// prefixes serve when its depth is b's, else the key is read (the caller
// is about to read it anyway).
func (t *Tree) below(ps *position, i int, b bound) bool {
	s := permSlot(ps.perm, i)
	var kp uint32
	if t.depth(ps.leaf) == b.d {
		kp = t.prefixAt(ps.leaf, s)
	} else {
		kp = keyPrefix(t.entryUserKey(t.entryAt(ps.leaf, s)), b.d)
	}
	if kp != b.prefix {
		return kp < b.prefix
	}
	return base.CompareInternal(t.entryKey(t.entryAt(ps.leaf, s)), t.entryKey(t.boundEntry(b))) < 0
}

func (t *Tree) first(ps *position) bool {
	leaf, lo, hi, _ := t.descend(nil, modeFirst, nil)
	p := t.perm(leaf)
	*ps = position{leaf: leaf, perm: p, lo: lo, hi: hi}
	if permCount(p) > 0 && (hi.ref == 0 || t.below(ps, 0, hi)) {
		return true
	}
	return hi.ref != 0 && t.seekGE(ps, t.boundKey(hi))
}

func (t *Tree) last(ps *position) bool {
	leaf, lo, hi, _ := t.descend(nil, modeLast, nil)
	p := t.perm(leaf)
	*ps = position{leaf: leaf, perm: p, pos: permCount(p) - 1, lo: lo, hi: hi}
	if ps.pos >= 0 {
		return true
	}
	return lo.ref != 0 && t.seekLT(ps, t.boundKey(lo))
}

// Get returns the newest entry for ukey whose sequence number is below
// seqLimit (entries at or above it are invisible). found is false when there
// is none. The value is a view into the arena. Lock-free. Hot path: no
// allocation.
func (t *Tree) Get(ukey []byte, seqLimit base.SeqNum) (value []byte, kind base.Kind, found bool) {
	var ps position
	if !t.seekGE(&ps, makeSearchKey(ukey, base.MakeTrailer(seqLimit-1, base.KindMax))) {
		return nil, 0, false
	}
	e := ps.entry(t)
	k := t.entryKey(e)
	if string(base.UserKey(k)) != string(ukey) {
		return nil, 0, false
	}
	return t.entryValue(e), base.TrailerKind(base.Trailer(k)), true
}

// Iterator walks a Tree. The zero value is unusable; call Init. It is not
// safe for concurrent use, but many iterators may run at once beside
// writers, without locks. Key and Value are views into the arena, valid for
// the arena's life.
//
// An iterator sees every entry added before it was positioned (First,
// Last, SeekGE, SeekLT); entries added later may or may not appear. Within
// a leaf it walks the permutation it loaded on arrival; leaving the leaf it
// descends again from the root to the leaf's bound.
type Iterator struct {
	tree  *Tree
	ps    position
	valid bool
}

// Init points it at tree, unpositioned.
func (it *Iterator) Init(tree *Tree) { *it = Iterator{tree: tree} }

// Valid reports whether the iterator is at an entry.
func (it *Iterator) Valid() bool { return it.valid }

// Key is the current encoded internal key (a view into the arena).
func (it *Iterator) Key() []byte { return it.tree.entryKey(it.ps.entry(it.tree)) }

// Value is the current value (a view into the arena).
func (it *Iterator) Value() []byte { return it.tree.entryValue(it.ps.entry(it.tree)) }

// First moves to the smallest key.
func (it *Iterator) First() { it.valid = it.tree.first(&it.ps) }

// Last moves to the largest key.
func (it *Iterator) Last() { it.valid = it.tree.last(&it.ps) }

// SeekGE moves to the first key >= (ukey, trailer).
func (it *Iterator) SeekGE(ukey []byte, trailer uint64) {
	it.valid = it.tree.seekGE(&it.ps, makeSearchKey(ukey, trailer))
}

// SeekLT moves to the last key < (ukey, trailer).
func (it *Iterator) SeekLT(ukey []byte, trailer uint64) {
	it.valid = it.tree.seekLT(&it.ps, makeSearchKey(ukey, trailer))
}

// Next moves to the following key. Within the leaf it stops below the
// leaf's high bound: an old leaf whose split is being linked still holds
// the keys above it, which the next leaf holds too.
func (it *Iterator) Next() {
	t, ps := it.tree, &it.ps
	if ps.pos+1 < permCount(ps.perm) && (ps.hi.ref == 0 || t.below(ps, ps.pos+1, ps.hi)) {
		ps.pos++
		return
	}
	if ps.hi.ref == 0 {
		it.valid = false
		return
	}
	it.valid = t.seekGE(ps, t.boundKey(ps.hi))
}

// Prev moves to the preceding key.
func (it *Iterator) Prev() {
	if it.ps.pos > 0 {
		it.ps.pos--
		return
	}
	if it.ps.lo.ref == 0 {
		it.valid = false
		return
	}
	it.valid = it.tree.seekLT(&it.ps, it.tree.boundKey(it.ps.lo))
}
