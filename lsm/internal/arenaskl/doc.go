// Package arenaskl is the memtable's index: a lock-free skiplist whose nodes,
// keys and values all live in one fixed-size byte arena and link to each other
// by uint32 offsets, so inserting an entry allocates nothing on the Go heap and
// the garbage collector sees one large []byte instead of millions of pointers.
//
// # Arena layout
//
// Offset 0 is reserved as the nil link. Nodes are 4-byte aligned and carry only
// as many tower links as their height:
//
//	node at offset o:
//	+-----------+-----------+---------+------------------------+---------+-------+
//	| keyLen u32| valLen u32| height  | next[0..height) u32    | key     | value |
//	|           |           | u32     | (arena offsets)        | keyLen  | valLen|
//	+-----------+-----------+---------+------------------------+---------+-------+
//
// Keys are encoded internal keys (see lsm/internal/base) and the list is
// ordered by base.CompareInternal. Values are opaque bytes.
//
// # Invariants
//
//   - Every link points to a node whose key is greater than the node holding it.
//   - A node is linked at level i only after it is linked at every level below
//     i, so a reader that reaches it through level i may follow any lower link.
//   - A node's header, key and value are written before the node is published
//     by the compare-and-swap that links it at level 0; they are never written
//     again. A reader therefore may return views of keys and values that stay
//     valid for as long as the arena is alive.
//   - The same internal key is never inserted twice (Add reports
//     ErrRecordExists); sequence numbers make every key unique in practice.
//
// # Concurrency
//
// Add may be called from any number of goroutines at once; each link is
// published with a compare-and-swap and a failed one recomputes its splice.
// Readers (Get, Iterator) run concurrently with writers without locks and see
// every entry whose level-0 link was published before they reached it. There
// is no deletion: the memtable is discarded whole after it is flushed.
//
// An Inserter (one per writing goroutine) caches the splice of its last
// insertion; when the next key falls in the same gap — every time-ordered
// key does — it links without searching (about 60 ns instead of 220 ns).
// A splice whose gap something was linked into since (another writer, or
// another Inserter of the same writer) is noticed by one load of the
// previous node's level-0 link and searched again; one that goes stale
// while it is used only makes a CAS fail, which recomputes the splice for
// that level. Inserter.Searches counts the inserts that searched.
//
// Backward iteration has no prev links: Prev searches from the head for the
// predecessor, O(log n), which keeps insertion to one CAS per level.
package arenaskl
