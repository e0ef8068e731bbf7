// Package lsm is Tapewire's log-structured merge tree: the storage engine for
// the event log (keys e/<topic u32>/<seq u64>, time-ordered) and the latest
// business state (keys s/<kind>/<id>, point-updated).
//
// # Shape
//
//	writes ──► commit pipeline ──► memtable (arena B+tree, 64 MiB)
//	             │ seqnums, log                │ full: rotate
//	             ▼                             ▼
//	        wal.Log (Standalone)      immutable queue (≤ 2) ──flush──► L0
//	        or caller's log (ExternalLog)                              │
//	                                          leveled compaction  L1 … L6
//
// Packages: lsm/internal/base (internal keys), lsm/internal/arenabt
// (memtable index), lsm/bloom (filters), lsm/sstable (table format),
// lsm/internal/record and lsm/internal/manifest (manifest log, versions),
// lsm/internal/compact (picking and survivor rules). Each documents its own
// format; this package assembles them.
//
// # Files in the database directory
//
//	NNNNNN.sst      tables (lsm/sstable), numbered from one counter
//	MANIFEST-NNNNNN version-edit log (lsm/internal/manifest)
//	CURRENT         the name of the live manifest, replaced atomically
//	LOCK            advisory lock: one process opens the database
//	wal/            the standalone log's segments (wal package)
//
// Every file operation goes through Options.FS (vfs.FS), so tests run the
// engine on the crash and error file systems. Tables are read through an
// mmap of the file (vfs.OS; a file system without descriptors, like the
// in-memory crash FS, is read into memory instead).
//
// # Writes
//
// A Batch is applied atomically. Under the commit mutex a batch gets its
// sequence numbers, its log position (Standalone: wal.Log.AppendAsync; the
// log's LSN order therefore equals sequence order) and a reservation of
// worst-case arena space in the mutable memtable, so it can never fail half
// applied. Outside the mutex it waits for durability if asked (Sync), inserts
// into the memtable's B+tree (writers serialize on the tree's own mutex for
// the ~100-300 ns of each insert; readers never lock), and is published: the visible sequence number
// advances over batches in order, so a reader never sees a batch without every
// batch before it, and a writer returns only once its batch is visible.
//
// A full memtable is rotated to the immutable queue. Arenas live outside the
// Go heap (anonymous mappings, transparent huge pages requested; heap slices
// under the race detector) and are refcounted by the read states that hold
// their memtable, so a value view never outlives its arena. The next
// memtable's arena is ready before it is needed: a dead memtable's buffer is
// kept as the spare, and when there is none and no flushed memtable's
// buffer is on its way back, one is mapped and faulted in (zeroed by the
// kernel) in the background once the current memtable is half full, so the
// inserts never take page faults. A writer stalls (and
// Metrics counts the stall and its duration) while MaxImmutableMemTables are
// waiting to flush or L0 holds L0StopWritesThreshold files.
//
// # Ingest
//
// Ingest (ExternalLog only) writes a SortedRun — keys strictly increasing,
// copied into one buffer as they are added — straight into tables, cut
// like a flush's, and adds them to L0 in one manifest edit: data that
// arrives sorted (the appliance's event log replayed from its WAL) skips the
// memtable insert and the flush. The run's entries get one new sequence
// number, above every earlier write, and become visible at once like a
// batch. The tables are written and synced before the overlap check, so
// ingests from several goroutines overlap their I/O; the check and the
// install then wait until every write with a lower sequence number is
// applied. A run whose key range holds a memtable key is refused
// (ErrIngestOverlap; its tables are removed): that older entry would
// otherwise be read first. Ingest records no log position, so CoveredLSN
// moves only with flushes and the caller's log replays ingested writes
// again after a crash.
//
// # Durability
//
//   - Standalone: the database owns a wal.Log in wal/. A flush waits until the
//     log has made the flushed memtable's last LSN durable, records that LSN
//     as covered in the manifest, then truncates the log before it. Open
//     replays the log from the covered LSN + 1 with the sequence numbers the
//     records carry. A synced Apply returns after its log frame is durable;
//     an unsynced one may be lost in a crash, never partly.
//   - ExternalLog: the caller logs each batch and passes its LSN to ApplyAt;
//     LSNs must increase. CoveredLSN is the highest LSN all of whose batches
//     are in tables (recorded in the manifest with each flush); after Open
//     the caller replays its log from CoveredLSN()+1 — batches at or below it
//     are skipped — and may truncate its log up to it.
//
// # Tables, versions and files
//
// Tables are written uncompressed so that reads return views into the
// mapping. Data blocks are BlockSizeBytes (4 KiB) by default; BlockSizeFor
// chooses per block from its first key, e.g. 32 KiB for the scanned event
// log and 4 KiB for point-read state in the same table.
//
// A flush writes one L0 table per partition, syncs them and the directory, then appends a
// version edit to the manifest and syncs it; only then is the new version
// installed. Compactions do the same for their outputs. A table file is
// deleted only when no version references it — the current one, or an older
// one held by an iterator or by a Get's closer — and deletions are paced to
// DeletionRateBytesPerSec. Open removes files no manifest edit names (left by
// a crash between writing a table and logging its edit) and starts a new
// manifest holding a snapshot of the state (tmp + sync + rename of CURRENT +
// directory sync); a manifest above 4 MiB is rolled over the same way.
//
// # Reads
//
// Get loads the visible sequence number, then takes a reference on the read
// state (memtables + version) with a CAS loop, and searches the mutable
// memtable, the immutable ones newest first, the L0 tables whose range holds
// the key newest first and one table per deeper level, checking each table's bloom filter before its index
// and data blocks. The returned value is a view into the arena or the mapping;
// the closer releases the reference. No allocation (TestGetDoesNotAllocate).
//
// An Iterator merges every memtable and level under a heap, hides entries
// newer than its sequence number and keys whose newest visible version is a
// tombstone, and honours bounds in both directions. It holds its read state,
// so flushes and compactions after its creation change nothing it sees.
// A Snapshot fixes a sequence number; compaction keeps, for each key, the
// newest version in each stripe between open snapshots, and drops a tombstone
// only when every reader sees it and no deeper level holds its key.
//
// # Partitions
//
// Options.Partition maps a user key to a partition id; no table spans two
// partitions (a flush or compaction starts a new table where the id changes
// between consecutive keys). The appliance gives each topic's event log
// e/<topic>/ a partition of its own and the state s/ another: one memtable
// flush then writes one table per partition it holds, and a topic's new
// event table lies after all of that topic's older data instead of spanning
// the state keys that every other table spans too.
//
//	memtable  e/1/100..199  e/2/40..79  s/account/.. s/order/..
//	   flush ─► L0: [e/1/100-199] [e/2/40-79] [s/a..s/o]
//	                    │ move        │ move       │ merges with older s/ tables
//	   L6: [e/1/0-99][e/1/100-199] [e/2/0-39][e/2/40-79]     (never rewritten)
//
// Inserts use the same ids: a Batch keeps a memtable finger (the leaf of its
// last insert) per partition lane (16 lanes, by a hash of the id), so a
// batch that interleaves topics and state keys still appends each topic's
// keys without descending the tree. Correctness never depends on Partition;
// a function that is not monotonic only cuts more tables. Since a table
// holds one partition, BloomBitsPerKeyFor can size filters per partition
// from a table's first key: none for an event log that is only scanned.
//
// # Compaction
//
// Leveled (lsm/internal/compact). L0's measure is its depth, the most L0
// files holding one key (disjoint files — time-ordered flushes, different
// partitions — count once): L0 compacts into L1 when its depth reaches
// L0CompactionTrigger or its file count L0CompactionFileThreshold, and
// writers stall at a depth of L0StopWritesThreshold. Ln compacts into Ln+1
// when its size exceeds BaseLevelBytes × LevelMultiplier^(n-1).
//
// Files that can go down without a rewrite are moved (a manifest edit):
// an L0 file that no other L0 file overlaps as soon as it is flushed,
// whatever L0's score; a file that nothing below it overlaps straight to
// the bottom level (time-ordered keys, each partition of an event log), else
// one level down if that level does not overlap it. A move never crosses
// the key range of a rewriting compaction in progress. Compactions run on
// CompactionConcurrency goroutines, writing at most CompactionRateBytesPerSec;
// Compact(start, end) compacts a range down to the deepest level holding it.
//
// # Errors
//
// Damaged data is reported as an error wrapping ErrCorruption that names the
// file and offset (a *base.CorruptionError), never as a wrong answer. A write
// or sync failure of the log, a table or the manifest stops the database:
// later writes return that error (a failed fsync is never retried).
//
// # Concurrency
//
// All DB methods may be called from any goroutine. An Iterator, a Batch and a
// Snapshot's methods belong to one goroutine at a time; values returned by
// Get may be read from any goroutine until their closer is closed.
package lsm
