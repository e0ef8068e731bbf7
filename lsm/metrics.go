package lsm

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tapewire/tapewire/lsm/internal/compact"
	"github.com/tapewire/tapewire/lsm/internal/manifest"
)

// dbMetrics are the counters the engine bumps as it works.
type dbMetrics struct {
	flushes            atomic.Uint64
	flushBytes         atomic.Uint64
	flushNanos         atomic.Int64
	compactions        atomic.Uint64
	trivialMoves       atomic.Uint64
	compactionBytesIn  atomic.Uint64
	compactionBytesOut atomic.Uint64
	compactionNanos    atomic.Int64
	ingests            atomic.Uint64
	ingestBytes        atomic.Uint64
	ingestNanos        atomic.Int64
	stalls             atomic.Uint64
	stallNanos         atomic.Int64
	filesDeleted       atomic.Uint64
	arenasRecycled     atomic.Uint64
}

// LevelMetrics describe one level.
type LevelMetrics struct {
	Files int
	Bytes uint64
	// Score is the level's size over its target (L0: its depth — the most
	// files holding one key — over L0CompactionTrigger, or its file count
	// over L0CompactionFileThreshold if larger); a score of 1 or more
	// makes it eligible for compaction.
	Score float64
}

// Metrics is a snapshot of the engine's state and counters.
type Metrics struct {
	Levels [manifest.NumLevels]LevelMetrics

	MemTableBytes      uint64 // arena bytes used by the mutable memtable
	ImmutableMemTables int
	// ArenasRecycled counts dead memtables whose buffer was kept for reuse.
	ArenasRecycled uint64

	Flushes            uint64
	FlushBytes         uint64
	FlushDuration      time.Duration
	Compactions        uint64
	TrivialMoves       uint64
	CompactionBytesIn  uint64
	CompactionBytesOut uint64
	CompactionDuration time.Duration
	// Ingests counts Ingest calls that added tables; IngestBytes is the
	// bytes of those tables, IngestDuration the time the calls took.
	Ingests        uint64
	IngestBytes    uint64
	IngestDuration time.Duration
	// Stalls counts writes that waited for a flush or for L0 to shrink;
	// StallDuration is the total time they waited.
	Stalls               uint64
	StallDuration        time.Duration
	ObsoleteFilesDeleted uint64

	// BloomUseful counts table lookups the filter answered "absent";
	// BloomFalsePositives those it let through that found nothing.
	BloomUseful         uint64
	BloomFalsePositives uint64
	// ChecksumFailures counts blocks that failed verification.
	ChecksumFailures uint64
	BlocksVerified   uint64

	// WriteAmplification is bytes written to tables (flushes, ingests and
	// compactions) over bytes flushed from memtables or ingested.
	WriteAmplification float64
	// ReadAmplification is the number of sorted runs a point read may
	// consult: memtables, the L0 depth (L0 files holding one key) and
	// non-empty deeper levels.
	ReadAmplification int
	// CoveredLSN is the highest log position all of whose writes are in
	// tables.
	CoveredLSN uint64
}

// Metrics returns the current metrics.
func (d *DB) Metrics() Metrics {
	var m Metrics
	d.mu.Lock()
	v := d.current
	scores := compact.Scores(v, d.compactOptions())
	for l := range v.Levels {
		m.Levels[l] = LevelMetrics{Files: len(v.Levels[l]), Bytes: v.LevelBytes(l), Score: scores[l]}
	}
	if d.mem != nil { // nil once closed
		m.MemTableBytes = d.mem.arena.Size()
	}
	m.ImmutableMemTables = len(d.imm)
	m.ReadAmplification = 1 + len(d.imm) + v.L0Depth
	for l := 1; l < manifest.NumLevels; l++ {
		if len(v.Levels[l]) > 0 {
			m.ReadAmplification++
		}
	}
	m.CoveredLSN = d.coveredLSN
	d.mu.Unlock()
	c := &d.metrics
	m.Flushes = c.flushes.Load()
	m.FlushBytes = c.flushBytes.Load()
	m.FlushDuration = time.Duration(c.flushNanos.Load())
	m.Compactions = c.compactions.Load()
	m.TrivialMoves = c.trivialMoves.Load()
	m.CompactionBytesIn = c.compactionBytesIn.Load()
	m.CompactionBytesOut = c.compactionBytesOut.Load()
	m.CompactionDuration = time.Duration(c.compactionNanos.Load())
	m.Ingests = c.ingests.Load()
	m.IngestBytes = c.ingestBytes.Load()
	m.IngestDuration = time.Duration(c.ingestNanos.Load())
	m.Stalls = c.stalls.Load()
	m.StallDuration = time.Duration(c.stallNanos.Load())
	m.ObsoleteFilesDeleted = c.filesDeleted.Load()
	m.ArenasRecycled = c.arenasRecycled.Load()
	m.BloomUseful = d.tableStats.BloomUseful.Load()
	m.BloomFalsePositives = d.tableStats.BloomFalsePositive.Load()
	m.ChecksumFailures = d.tableStats.ChecksumFailures.Load()
	m.BlocksVerified = d.tableStats.BlocksVerified.Load()
	if in := m.FlushBytes + m.IngestBytes; in > 0 {
		m.WriteAmplification = float64(in+m.CompactionBytesOut) / float64(in)
	}
	return m
}

// String renders the metrics as a small table for operators.
func (m Metrics) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "level  files      bytes  score\n")
	for l, lm := range m.Levels {
		fmt.Fprintf(&b, "L%d    %6d %10d  %5.2f\n", l, lm.Files, lm.Bytes, lm.Score)
	}
	fmt.Fprintf(&b, "memtable %d B, %d immutable; flushes %d (%d B, %s); compactions %d + %d moves (in %d B, out %d B, %s)\n",
		m.MemTableBytes, m.ImmutableMemTables, m.Flushes, m.FlushBytes, m.FlushDuration,
		m.Compactions, m.TrivialMoves, m.CompactionBytesIn, m.CompactionBytesOut, m.CompactionDuration)
	fmt.Fprintf(&b, "stalls %d (%s); bloom useful %d, false positive %d; checksum failures %d; w-amp %.2f r-amp %d; covered LSN %d\n",
		m.Stalls, m.StallDuration, m.BloomUseful, m.BloomFalsePositives, m.ChecksumFailures, m.WriteAmplification, m.ReadAmplification, m.CoveredLSN)
	return b.String()
}
