package lsm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"github.com/tapewire/tapewire/lsm/internal/arenabt"
	"github.com/tapewire/tapewire/lsm/internal/base"
	"github.com/tapewire/tapewire/wal"
)

// WriteOptions control one write.
type WriteOptions struct {
	// Sync makes Apply return only once the batch is durable in the log
	// (Standalone mode). Without it the batch is logged asynchronously and
	// a crash may lose the most recent writes — never a batch partially.
	Sync bool
}

// Sync and NoSync are the two common write options.
var (
	Sync   = &WriteOptions{Sync: true}
	NoSync = &WriteOptions{Sync: false}
)

// commitEntry tracks one batch between sequence assignment and visibility.
type commitEntry struct {
	end     base.SeqNum // one past the batch's last seqnum
	applied bool        // guarded by DB.pubMu
}

// batchState is the per-write working memory a Batch carries so that a
// commit allocates nothing.
type batchState struct {
	commit  commitEntry
	ikeyBuf []byte
	rec     [1]wal.Record
	// ins is the memtable finger of the batch's last insert: a Batch
	// reused for time-ordered keys inserts without searching. With
	// Options.Partition, lanes (allocated on the first such commit) holds
	// one per partition instead.
	ins   arenabt.Inserter
	lanes *insertLanes
}

// insertLanes holds memtable fingers, one per lane: a batch inserts each
// key through the lane of its partition (Options.Partition), so keys that
// increase within their partition — each topic's event log — go into the
// leaf of the previous insert of the same partition without a descent, even
// when a batch interleaves partitions (an event key, then a state key).
// Partitions whose ids hash to the same lane share it; that costs a descent
// when they alternate, never a wrong insert (an Inserter checks its finger
// before using it).
type insertLanes [insertLaneCount]arenabt.Inserter

// insertLaneCount is the number of fingers per batch (a power of
// two): partitions written in the same batches should rarely share one.
const insertLaneCount = 16

// inserterFor returns the finger for ukey's partition. Hot path.
func (st *batchState) inserterFor(partition func([]byte) uint64, ukey []byte) *arenabt.Inserter {
	if partition == nil {
		return &st.ins
	}
	if st.lanes == nil {
		st.lanes = new(insertLanes)
	}
	// Fibonacci hashing: the top bits of the product spread sequential
	// partition ids (topic 1, 2, 3, ...) over different lanes.
	return &st.lanes[(partition(ukey)*0x9e3779b97f4a7c15)>>(64-insertLaneBits)]
}

const insertLaneBits = 4 // log2(insertLaneCount)

var batchPool = sync.Pool{New: func() any { return new(Batch) }}

// Set writes key → value as a batch of one.
func (d *DB) Set(key, value []byte, opts *WriteOptions) error {
	b := batchPool.Get().(*Batch)
	b.Set(key, value)
	err := d.Apply(b, opts)
	b.Reset()
	batchPool.Put(b)
	return err
}

// Delete deletes key as a batch of one.
func (d *DB) Delete(key []byte, opts *WriteOptions) error {
	b := batchPool.Get().(*Batch)
	b.Delete(key)
	err := d.Apply(b, opts)
	b.Reset()
	batchPool.Put(b)
	return err
}

// Apply commits b atomically (Standalone mode): it is logged, given
// consecutive sequence numbers, inserted into the memtable, and made visible
// to readers all at once, after every batch committed before it. Hot path:
// no allocation.
func (d *DB) Apply(b *Batch, opts *WriteOptions) error {
	if d.opts.Durability != Standalone {
		return fmt.Errorf("lsm: Apply needs Standalone durability; in ExternalLog mode use ApplyAt with the batch's LSN")
	}
	return d.commit(b, opts != nil && opts.Sync, 0)
}

// ApplyAt commits b (ExternalLog mode) as the write the caller logged at
// lsn. LSNs must increase from one call to the next; a batch at or below
// CoveredLSN is already in tables and is skipped, so the caller can replay
// its log from any point at or before CoveredLSN()+1.
func (d *DB) ApplyAt(b *Batch, lsn uint64) error {
	if d.opts.Durability != ExternalLog {
		return fmt.Errorf("lsm: ApplyAt needs ExternalLog durability; in Standalone mode use Apply")
	}
	if lsn == 0 {
		return fmt.Errorf("lsm: ApplyAt: LSN 0 is not a log position")
	}
	return d.commit(b, false, lsn)
}

func (d *DB) commit(b *Batch, sync bool, extLSN uint64) error {
	if b.Empty() {
		return nil
	}
	if len(b.data) > MaxBatchBytes {
		return fmt.Errorf("lsm: batch of %d bytes exceeds the %d-byte limit", len(b.data), MaxBatchBytes)
	}
	count := base.SeqNum(b.Count())
	d.commitMu.Lock()
	if d.shut.Load() {
		d.commitMu.Unlock()
		return ErrClosed
	}
	if extLSN != 0 && extLSN <= d.lastLSN {
		covered := d.lastLSN
		d.commitMu.Unlock()
		if extLSN <= d.CoveredLSN() {
			return nil // replay of a write already in tables
		}
		return fmt.Errorf("lsm: ApplyAt LSN %d is not above the last applied LSN %d", extLSN, covered)
	}
	mem, err := d.makeRoom(b.memBytes)
	if err != nil {
		d.commitMu.Unlock()
		return err
	}
	seq := d.nextSeq
	b.setSeq(seq)
	var lsn uint64
	if d.log != nil {
		b.st.rec[0] = wal.Record{Payload: b.data}
		l, err := d.log.AppendAsync(b.st.rec[:])
		b.st.rec[0] = wal.Record{}
		if err != nil {
			mem.writerDone()
			d.commitMu.Unlock()
			return fmt.Errorf("lsm: log batch: %w", err)
		}
		lsn = uint64(l)
	} else {
		lsn = extLSN
		d.lastLSN = extLSN
	}
	if lsn != 0 {
		mem.maxLSN = lsn
	}
	d.nextSeq += count
	b.st.commit = commitEntry{end: seq + count}
	d.pubMu.Lock()
	d.pending = append(d.pending, &b.st.commit)
	d.pubMu.Unlock()
	d.commitMu.Unlock()

	var syncErr error
	if sync {
		if err := d.log.WaitDurable(context.Background(), wal.LSN(lsn)); err != nil {
			syncErr = fmt.Errorf("lsm: batch at LSN %d not durable: %w", lsn, err)
		}
	}
	applyErr := mem.apply(b.data, seq, &b.st, d.opts.Partition)
	mem.writerDone()
	d.publish(&b.st.commit)
	if applyErr != nil {
		d.mu.Lock()
		d.failLocked(applyErr)
		d.mu.Unlock()
		return applyErr
	}
	if syncErr != nil {
		d.mu.Lock()
		d.failLocked(syncErr)
		d.mu.Unlock()
	}
	return syncErr
}

// publish marks c applied and advances visibleSeq over every applied batch
// at the head of the queue, then waits until c itself is visible, so that a
// writer reads its own write and readers never see a later batch without an
// earlier one.
func (d *DB) publish(c *commitEntry) {
	d.pubMu.Lock()
	c.applied = true
	advanced := false
	for d.pendingHead < len(d.pending) && d.pending[d.pendingHead].applied {
		d.visibleSeq.Store(uint64(d.pending[d.pendingHead].end))
		d.pending[d.pendingHead] = nil
		d.pendingHead++
		advanced = true
	}
	if d.pendingHead == len(d.pending) {
		d.pending, d.pendingHead = d.pending[:0], 0
	}
	if advanced {
		d.pubCond.Broadcast()
	}
	for d.visibleSeq.Load() < uint64(c.end) {
		d.pubCond.Wait()
	}
	d.pubMu.Unlock()
}

// makeRoom returns the memtable with n bytes reserved for a batch, rotating
// a full memtable to the immutable queue and stalling while too many
// memtables wait for flushing or L0 holds too many files. commitMu held.
func (d *DB) makeRoom(n uint64) (*memTable, error) {
	if n+memTableOverheadBytes > uint64(d.opts.MemTableSizeBytes) {
		return nil, fmt.Errorf("lsm: batch needs %d bytes of memtable, more than MemTableSizeBytes %d", n, d.opts.MemTableSizeBytes)
	}
	for {
		// d.mem changes only under commitMu (held), so reading it is safe.
		if m := d.mem; m.tryReserve(n) {
			// Half full, no buffer ready for the next one and none on
			// its way back from a flushed memtable: prepare one in the
			// background, so the rotation does not wait for it and the
			// inserts do not fault its pages in.
			if m.reserved > m.arena.Capacity()/2 && d.recycling.Load() <= 0 && !d.arenas.hasSpare() && d.preparing.CompareAndSwap(false, true) {
				go d.prepareArena()
			}
			return m, nil
		}
		d.mu.Lock()
		var stallStart time.Time
		for d.bgErr == nil && !d.closing && (len(d.imm) >= d.opts.MaxImmutableMemTables || d.l0StallLocked()) {
			if stallStart.IsZero() {
				stallStart = time.Now()
				d.metrics.stalls.Add(1)
			}
			d.bgCond.Wait()
		}
		if !stallStart.IsZero() {
			d.metrics.stallNanos.Add(int64(time.Since(stallStart)))
		}
		if d.bgErr != nil || d.closing {
			err := d.bgErr
			d.mu.Unlock()
			if err == nil {
				err = ErrClosed
			}
			return nil, err
		}
		err := d.rotateLocked()
		d.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
}

// l0StallLocked reports whether L0 is too deep (files holding one key) to
// take another memtable. Without automatic compactions nothing would ever
// shrink it, so the stall does not apply. d.mu held.
func (d *DB) l0StallLocked() bool {
	return !d.opts.DisableAutomaticCompactions && d.current.L0Depth >= d.opts.L0StopWritesThreshold
}

// rotateLocked moves the mutable memtable to the immutable queue and starts
// a new one. commitMu and mu held.
func (d *DB) rotateLocked() error {
	mem, err := d.newMemTable()
	if err != nil {
		return err
	}
	d.imm = append(d.imm, d.mem)
	d.recycling.Add(1)
	d.mem = mem
	d.updateReadStateLocked()
	d.bgCond.Broadcast()
	return nil
}

// replayLog applies the standalone log's records above the covered LSN.
func (d *DB) replayLog() error {
	o := d.opts.WAL
	o.FS = d.fs
	log, err := wal.Open(filepath.Join(d.dir, walDirName), o)
	if err != nil {
		return fmt.Errorf("lsm: open log: %w", err)
	}
	d.log = log
	if durable := uint64(log.DurableLSN()); durable < d.coveredLSN {
		return fmt.Errorf("lsm: the log ends at LSN %d but the tables cover through LSN %d: log and tables do not belong together", durable, d.coveredLSN)
	}
	r, err := log.NewReader(wal.LSN(d.coveredLSN + 1))
	if err != nil {
		return fmt.Errorf("lsm: read log from LSN %d: %w", d.coveredLSN+1, err)
	}
	defer r.Close()
	var st batchState
	replayed := 0
	for {
		rec, err := r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("lsm: replay log: %w", err)
		}
		br, err := newBatchReader(rec.Payload)
		if err != nil {
			return fmt.Errorf("lsm: log record at LSN %d: %w", rec.LSN, err)
		}
		b := Batch{data: rec.Payload}
		seq := b.seq()
		need := uint64(0)
		for {
			_, k, v, ok, err := br.next()
			if err != nil {
				return fmt.Errorf("lsm: log record at LSN %d: %w", rec.LSN, err)
			}
			if !ok {
				break
			}
			need += arenabt.MaxNodeSize(len(k)+base.TrailerLen, len(v))
		}
		if !d.mem.tryReserve(need) {
			if err := d.flushDuringRecovery(); err != nil {
				return err
			}
			if !d.mem.tryReserve(need) {
				return fmt.Errorf("lsm: log record at LSN %d needs %d bytes, more than a memtable", rec.LSN, need)
			}
		}
		if err := d.mem.apply(rec.Payload, seq, &st, d.opts.Partition); err != nil {
			return fmt.Errorf("lsm: log record at LSN %d: %w", rec.LSN, err)
		}
		d.mem.writerDone()
		d.mem.maxLSN = uint64(rec.LSN)
		if end := seq + base.SeqNum(b.Count()); end > d.nextSeq {
			d.nextSeq = end
		}
		replayed++
	}
	d.visibleSeq.Store(uint64(d.nextSeq))
	if replayed > 0 {
		d.opts.Logf("lsm: replayed %d log records from LSN %d", replayed, d.coveredLSN+1)
	}
	return nil
}

// flushDuringRecovery writes the memtable filled by log replay to L0 so
// replay can go on in a fresh one. Single-threaded (inside Open).
func (d *DB) flushDuringRecovery() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.rotateLocked(); err != nil {
		return err
	}
	return d.flushOldestLocked()
}
