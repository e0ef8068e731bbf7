package lsm

import (
	"fmt"

	"github.com/tapewire/tapewire/lsm/internal/arenabt"
	"github.com/tapewire/tapewire/vfs"
	"github.com/tapewire/tapewire/wal"
)

// Durability selects how acknowledged writes survive a crash.
type Durability uint8

const (
	// Standalone: the database owns a wal.Log in <dir>/wal and logs every
	// batch there before applying it; recovery replays the log from the
	// highest LSN the tables cover.
	Standalone Durability = iota
	// ExternalLog: the caller owns the log. Every batch is applied with
	// ApplyAt and the LSN the caller logged it at; the manifest records the
	// highest LSN covered by tables (CoveredLSN), the caller replays its log
	// from there after Open and may truncate its log before it.
	ExternalLog
)

// Options configure a database. Zero fields take the documented default.
type Options struct {
	// FS is the file system every file operation goes through (default
	// vfs.Default, the OS).
	FS vfs.FS
	// Durability chooses between Standalone (default) and ExternalLog.
	Durability Durability
	// WAL configures the standalone log (its FS is forced to FS).
	WAL wal.Options

	// MemTableSizeBytes is the arena size of one memtable (default 64 MiB,
	// at most 4 GiB - 1).
	MemTableSizeBytes int
	// MaxImmutableMemTables is how many full memtables may wait for their
	// flush before writes stall (default 2).
	MaxImmutableMemTables int

	// L0CompactionTrigger is the L0 depth — the most L0 files holding one
	// user key — that starts a compaction (default 4). L0 files of disjoint
	// ranges (time-ordered flushes, different partitions) count once.
	L0CompactionTrigger int
	// L0CompactionFileThreshold is the L0 file count that starts a
	// compaction whatever the depth (default 100).
	L0CompactionFileThreshold int
	// L0StopWritesThreshold is the L0 depth at which writes stall until
	// compaction catches up (default 12).
	L0StopWritesThreshold int
	// BaseLevelBytes is L1's target size (default 64 MiB).
	BaseLevelBytes uint64
	// LevelMultiplier is the size ratio between adjacent levels (default 10).
	LevelMultiplier uint64
	// TargetFileSizeBytes is where compaction output into L1 is split into
	// files (default 4 MiB); each deeper level doubles it, so a compaction
	// from Ln picks a small file and overlaps few files below. A user key's
	// versions are never split.
	TargetFileSizeBytes uint64
	// CompactionConcurrency is the number of background compaction
	// goroutines (default 1; flushes run on their own goroutine).
	CompactionConcurrency int
	// CompactionRateBytesPerSec limits how fast compactions write (default
	// 0: unlimited). Flushes are never limited: they are what unblocks
	// stalled writers.
	CompactionRateBytesPerSec int64
	// DeletionRateBytesPerSec paces the deletion of obsolete files so that
	// large deletes do not stall the disk (default 256 MiB/s; negative means
	// unpaced).
	DeletionRateBytesPerSec int64
	// DisableAutomaticCompactions leaves compaction to Compact (tests and
	// tools); L0StopWritesThreshold then does not stall writes.
	DisableAutomaticCompactions bool

	// Partition, if set, divides the key space into partitions that no
	// table spans: a flush or compaction starts a new table wherever
	// Partition changes from one user key to the next. It must be a pure
	// function of the key and should be monotonic (a ≤ b implies
	// Partition(a) ≤ Partition(b), so each partition is one key range);
	// correctness does not depend on it, a function that is not only cuts
	// more, smaller tables.
	//
	// What it buys: a partition whose keys arrive in increasing order (one
	// topic's event log) flushes into tables that lie after all of its
	// older data, so they move to the bottom level without being rewritten
	// however the other partitions (point-updated state) churn; and a
	// memtable insert reuses the cached position of the last insert into
	// the same partition (see Batch), which time-ordered keys always hit.
	// Partition is called for every key a batch inserts and a table write
	// adds: keep it to a few comparisons.
	Partition func(userKey []byte) uint64

	// BlockSizeBytes is the target data block size (default 4096).
	BlockSizeBytes int
	// BlockSizeFor, if set, picks the block size from the user key that
	// starts a block (0: BlockSizeBytes) — e.g. 32 KiB for the scanned event
	// log (e/...) and 4 KiB for point-read state (s/...).
	BlockSizeFor func(userKey []byte) int
	// BlockRestartInterval is keys between restart points (default 16).
	BlockRestartInterval int
	// BloomBitsPerKey sizes table filters (default 10; negative: none).
	BloomBitsPerKey int
	// BloomBitsPerKeyFor, if set, sizes the filter of each table from the
	// first user key it holds (0: BloomBitsPerKey; negative: no filter).
	// With Partition every key of a table shares the first key's
	// partition, so a key space that is only scanned — an event log —
	// can skip filters (their hashing at every flush, their 10 bits per key
	// in every mapping) while point-read state keeps them.
	BloomBitsPerKeyFor func(userKey []byte) int

	// Logf receives rare notices (recovery, background errors).
	Logf func(format string, args ...any)
}

// Limits of Options.
const (
	minMemTableSizeBytes = 64 << 10
	maxMemTableSizeBytes = arenabt.MaxArenaSize
)

func (o Options) withDefaults() (Options, error) {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Durability > ExternalLog {
		return o, fmt.Errorf("lsm: unknown durability mode %d", o.Durability)
	}
	if o.MemTableSizeBytes == 0 {
		o.MemTableSizeBytes = 64 << 20
	}
	if o.MemTableSizeBytes < minMemTableSizeBytes || uint64(o.MemTableSizeBytes) > maxMemTableSizeBytes {
		return o, fmt.Errorf("lsm: MemTableSizeBytes %d outside %d..%d", o.MemTableSizeBytes, minMemTableSizeBytes, uint64(maxMemTableSizeBytes))
	}
	if o.MaxImmutableMemTables <= 0 {
		o.MaxImmutableMemTables = 2
	}
	if o.L0CompactionTrigger <= 0 {
		o.L0CompactionTrigger = 4
	}
	if o.L0CompactionFileThreshold <= 0 {
		o.L0CompactionFileThreshold = 100
	}
	if o.L0StopWritesThreshold <= 0 {
		o.L0StopWritesThreshold = 12
	}
	if o.L0StopWritesThreshold < o.L0CompactionTrigger {
		return o, fmt.Errorf("lsm: L0StopWritesThreshold %d below L0CompactionTrigger %d", o.L0StopWritesThreshold, o.L0CompactionTrigger)
	}
	if o.BaseLevelBytes == 0 {
		o.BaseLevelBytes = 64 << 20
	}
	if o.LevelMultiplier == 0 {
		o.LevelMultiplier = 10
	}
	if o.LevelMultiplier < 2 {
		return o, fmt.Errorf("lsm: LevelMultiplier %d below 2", o.LevelMultiplier)
	}
	if o.TargetFileSizeBytes == 0 {
		o.TargetFileSizeBytes = 4 << 20
	}
	if o.CompactionConcurrency <= 0 {
		o.CompactionConcurrency = 1
	}
	if o.DeletionRateBytesPerSec == 0 {
		o.DeletionRateBytesPerSec = 256 << 20
	}
	if o.BlockSizeBytes <= 0 {
		o.BlockSizeBytes = 4096
	}
	if o.BlockRestartInterval <= 0 {
		o.BlockRestartInterval = 16
	}
	if o.BloomBitsPerKey == 0 {
		o.BloomBitsPerKey = 10
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o, nil
}
