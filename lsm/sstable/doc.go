// Package sstable writes and reads the LSM's immutable sorted tables.
//
// # File layout
//
//	+--------------+-----+--------------+--------+-------+------------+--------+
//	| data block 0 | ... | data block n | filter | index | properties | footer |
//	+--------------+-----+--------------+--------+-------+------------+--------+
//
// Every block is followed by a 5-byte trailer: its kind (u8) and a checksum
// (u32 LE) of its contents, computed with xxh3 seeded by the table's file
// number, the block's offset and its kind (see Checksum). A block that was
// copied elsewhere, a handle that points at the wrong block, and flipped bits
// all fail verification. Metadata blocks are verified when the table is
// opened; each data block the first time it is read (an atomic flag per block
// remembers that it was).
//
// Data block (restart interval R, default 16):
//
//	entry*: shared uvarint | unshared uvarint | value length uvarint |
//	        key[shared:] | value
//	restarts: u32 LE offset of every R-th entry (shared = 0 there)
//	restart count: u32 LE
//
// Keys are encoded internal keys (lsm/internal/base), strictly increasing.
// A lookup binary-searches the restart keys (stored whole, so they are views
// into the file) and scans at most R entries.
//
// Index block: same encoding with restart interval 1; one entry per data
// block, key = a separator S with last(block) <= S < first(next block),
// shortened to the shortest user key that fits (with the largest trailer),
// value = the block handle (offset uvarint, length uvarint). The reader
// decodes it once at open into an array of views, plus a fence array: for
// each separator, the 8 bytes after the prefix all separators share, as a
// big-endian integer. A lookup binary-searches the fences (one compact
// array, integer compares) and compares whole keys only among separators
// with equal fences — the index search of a 64 MiB table then touches a few
// cache lines instead of two per probe.
//
// Filter block: a blocked Bloom filter over the user keys (lsm/bloom); a
// zero-length filter block means the table was written without one.
//
// Properties block: entry counts, raw sizes, sequence range, layout options
// and the smallest and largest internal keys (see Properties.encode).
//
// Footer (64 bytes): filter, index and properties handles as u64 pairs,
// format version u32, checksum u32 of the preceding 52 bytes (seeded with
// file number and footer offset), magic u64 "tapewSST".
//
// # Reading
//
// A Reader works over the table's bytes — in the engine an mmap of the file —
// and returns keys and values as views into them: no copy, no allocation on
// Get. The caller keeps the bytes mapped while any view is in use. The filter
// is consulted before the index on every Get. Structural damage (an entry
// overrunning its block, a bad restart) is reported like a checksum failure:
// a *base.CorruptionError naming the file and the block's offset, never a
// wrong answer and never a panic.
//
// # Concurrency
//
// A Writer belongs to one goroutine. A Reader is immutable after Open apart
// from its atomic verified flags and Stats, and may be shared by any number
// of goroutines; each Iter and GetScratch belongs to one goroutine.
package sstable
