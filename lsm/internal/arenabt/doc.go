// Package arenabt is the memtable's index: a B+tree whose nodes, keys and
// values all live in one fixed-size byte arena and link to each other by
// uint32 offsets, so inserting an entry allocates nothing on the Go heap and
// the garbage collector sees one large []byte instead of millions of
// pointers. Readers never lock; writers serialize on one mutex.
//
// # Why a B+tree and not a skiplist
//
// The skiplist it replaced visited ~28 nodes per random insert into a
// 400 K-entry memtable, each a cache miss in a different place of a 64 MiB
// arena (1.4 µs per insert). Here a search touches two cache lines of each
// node on its path (a 128-byte leaf, 192-byte internal nodes, five or six
// levels for 400 K entries) and compares 4-byte key prefixes stored in the
// nodes: the entry itself (key and value) is read only when two prefixes
// tie. Time-ordered keys still skip the search through a finger
// (Inserter).
//
// The prefixes are taken at each node's depth, not at the key's start:
// the keys of a node's range [lo, hi) all share the common prefix of lo and
// hi, so a node stores bytes [depth, depth+4) of its keys, with depth that
// common prefix length rounded down to a multiple of 4. Real keys share
// long prefixes (e/<topic>/<seq>, s/order/<id>, and lsmbench's big-endian
// counters, whose first four bytes are zero): prefixes from byte 0 would
// tie everywhere and every comparison would read an entry (~800 ns per
// random insert of lsmbench keys instead of ~300).
//
// # Arena layout
//
// Entries grow up from the front of the arena, nodes grow down from the
// back (cache-line aligned); the arena is full where they meet. Offset 0 is
// nil.
//
//	entry (4-byte aligned):  | keyLen u32 | valLen u32 | key | value |
//
//	node (64-byte aligned):
//	   0  perm     u64  atomic: bits 0-3 count, bits 4+4i.. the slot at sorted position i
//	   8  version  u16  writer only: bumped when the node is retired or its range shrinks
//	  10  flags    u16  writer only: may-split-100/0, retired
//	  12  depth    u32  where the prefixes start in the user keys; fixed at creation
//	  16  prefix   [14]u32  big-endian user-key bytes [depth, depth+4) of each slot (zero-padded)
//	  72  leaf:     entry  [14]u32  the slot's entry
//	      internal: child  [14]u32  atomic: child node offsets
//	 128  internal: sep    [14]u32  the separator key's entry (read on prefix ties only)
//	leaf: 128 bytes (2 cache lines); internal: 192 bytes (3)
//
// Keys are encoded internal keys (lsm/internal/base) ordered by
// base.CompareInternal; between keys that share their first depth bytes,
// prefixes order like the user keys, so only equal prefixes need the entry.
// A search key is compared by prefix only in nodes whose range it lies in
// (it shares their first depth bytes); an Inserter's bounds, which meet
// arbitrary keys, keep prefixes at depth 0. An internal node's child at
// sorted position j holds the keys in [separator j, separator j+1);
// position 0 has no separator (it takes everything below position 1).
//
// # Invariants
//
//   - Slots are append-only: a node's slot i is written once, before the
//     permutation that first names it is stored, and never again (no slot
//     is reused). A permutation is a consistent sorted snapshot of the node.
//   - A node is fully written before an atomic store makes it reachable
//     (a parent's child pointer, a parent permutation naming a new slot,
//     or the root word). Entries are written before the leaf permutation
//     naming them. Key and value views therefore stay valid and unchanged
//     for the arena's life.
//   - Every child holds only keys >= its separator. A node's key set only
//     grows until it is retired; a retired node is never written again.
//   - A node's range only shrinks, so the depth it was made with stays a
//     prefix every key it will hold shares. A split gives the halves
//     deeper prefixes (re-reading their keys) only when four more bytes
//     tie across a half's whole range, which the old prefixes of its first
//     and last key reveal without reading any key.
//   - The same internal key is never inserted twice (ErrRecordExists);
//     sequence numbers make every key unique in practice.
//
// # Insertion
//
// Into a leaf with a free slot: write the entry, write the slot, store one
// new permutation. A full leaf splits:
//
//   - 100/0 when the key is above every key of a leaf that may (the first
//     leaf and leaves made this way): the old leaf stays full and unchanged,
//     a new leaf holds the key, and the old leaf loses the right to split
//     100/0 again. Time-ordered keys therefore fill leaves completely.
//   - Otherwise 50/50, copy-on-write: two new leaves (8 and 7 slots) are
//     built, then linked in the parent with a fresh slot for the right one
//     and a permutation store, then one atomic store swaps the parent's
//     pointer from the old leaf to the left one. The old leaf becomes
//     garbage; a reader inside it still sees its consistent old key set,
//     and between the two stores the old leaf and the new right leaf both
//     hold the right half's old keys, which is why readers clip a leaf to
//     the range its parent gives it.
//
// A full parent splits the same way (always 50/50) and the change moves up;
// a full root is replaced by a new root with one atomic store. Every node a
// split needs is allocated before anything is published, so when the arena
// runs out the allocation is rolled back and Add returns ErrArenaFull with
// the tree and arena as they were: never a half-inserted entry
// (TestArenaFullLeavesNoTrace).
//
// # Space bound
//
// The memtable reserves MaxNodeSize(keyLen, valLen) per entry plus
// FixedOverhead once, and must never see ErrArenaFull. MaxNodeSize is the
// entry's own size plus an amortized node allowance A (56 bytes):
//
// Claim: after N insertions the nodes allocated (beyond the first root
// leaf and at most one new root per level, which FixedOverhead covers)
// take at most N·A bytes, with A = 2L/m + 2I/(m(m−1)), L = 128 and
// I = 192 the node sizes, m = 6.
//
// Proof. Call a node's insertions the slots written into it after it was
// created. A node created by a 50/50 split starts with at most 8 of its 14
// slots, so it receives m = 14−8 = 6 insertions before it can split again;
// a leaf created 100/0 starts with 1 slot and receives 13; the first root
// leaf receives 14 and a new root 12. A node splits 50/50 at most once (it
// is retired) and 100/0 at most once (it loses the flag), so charge each
// split's new nodes to the insertions the splitting node received: a 50/50
// split costs 2 nodes for ≥ 6 insertions, a 100/0 split followed by the
// 50/50 split of the same leaf 3 nodes for ≥ 13. Either way nodes ≤ 1/3 of
// the insertions at that level, and splits (each one insertion into the
// level above) ≤ 1/6 of them. Leaf insertions are N, so internal
// insertions at level h are ≤ N/6^h, internal nodes ≤ (2/6)·N·Σ_{h≥1} 6^−h
// = 2N/(m(m−1)), leaves ≤ 2N/m. The first root leaf exists before any
// reservation (Arena.Size after New), and a root split's extra node (the
// new root) happens once per level, at most maxLevels = 32 times:
// FixedOverhead = 32·I.
//
// Add checks free space before each allocation rather than up front, so the
// bound above is all a caller needs: reserved ≥ used at every step. The
// property test TestSpaceBound checks it after every insertion of random,
// sequential, interleaved and adversarial sequences.
//
// # Concurrency
//
// Add and AddWith may be called from any number of goroutines; they
// serialize on the tree's mutex. Readers (Get, Iterator) take no lock:
// they load the root word, child pointers and permutations atomically and
// read only slots a loaded permutation names, which happened before its
// store. A split stores the parent's new permutation before it swaps the
// old child's pointer, so a reader takes a child pointer only if the
// parent's permutation is the same after loading it as before (else it
// chooses again): a left half is never mistaken for the whole old range.
// A reader sees every entry whose Add returned before it loaded the root;
// an iterator leaving a leaf descends again from the root to the leaf's
// bound, so it never needs sibling links and never repeats or skips a key
// it could see. There is no deletion: the memtable is discarded
// whole after it is flushed.
//
// An Inserter (one per writing goroutine or batch lane) is a finger: the
// leaf its last insertion went to, that leaf's version and its key range.
// Under the mutex, a key in the range of an unchanged leaf goes straight
// into it (about 60 ns instead of a descent); Inserter.Searches counts the
// insertions that descended.
package arenabt
