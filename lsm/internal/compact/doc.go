// Package compact is the pure core of leveled compaction: deciding what to
// compact (Pick, PickManual) and which entries of the merged inputs survive
// (Iter). It does no I/O; the database feeds it versions and iterators and
// writes what it returns, so every rule here is tested with tables of cases.
//
// # Picking
//
// Each level has a score: L0's is its depth (Version.L0Depth, the most L0
// files holding one key) over the L0 trigger (4 by default), or its file
// count over L0FileThreshold if that is larger; Ln's (n >= 1) is its size
// over its target, which is the base size (64 MiB) times the multiplier (10)
// to the power n-1. The level with the highest score >= 1 is compacted into
// the next one. L0 compacts all of its files at once (they may overlap each
// other, and taking only the newer ones would put newer data below older);
// Ln takes one file, round-robin through the key space by a per-level
// cursor, plus the files of Ln+1 it overlaps.
//
// # Moves
//
// A trivial move re-links files to a deeper level without rewriting them
// (MoveTarget). A file that nothing below it overlaps goes to the bottom
// level at once — the common case for time-ordered keys, and for each
// partition of a partitioned event log, where every flush produces a table
// above everything already stored; a file that only the next level leaves
// clear goes one level down. An L0 file moves only if no other L0 file
// overlaps it, and Pick moves such files before anything else, whatever
// L0's score. No move crosses the key range of a rewriting compaction in
// progress: its outputs may span the gaps between its inputs.
//
// # Which entries survive
//
// Iter walks the merged inputs (newest version of a user key first) and,
// given the open snapshots, keeps for each user key only the newest version
// in each snapshot stripe: versions no reader can see are dropped. A
// tombstone is dropped, with every older version of its key, only when it is
// in the oldest stripe (every reader sees it) and the output level is the
// bottom of the tree for that key (no deeper level holds it).
package compact
