package lsm

import (
	"context"
	"fmt"
	"time"

	"github.com/tapewire/tapewire/lsm/internal/base"
	"github.com/tapewire/tapewire/lsm/internal/compact"
	"github.com/tapewire/tapewire/lsm/internal/manifest"
	"github.com/tapewire/tapewire/lsm/sstable"
	"github.com/tapewire/tapewire/vfs"
	"github.com/tapewire/tapewire/wal"
)

// flushLoop writes immutable memtables to L0, oldest first, one at a time.
func (d *DB) flushLoop() {
	defer d.wg.Done()
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		for len(d.imm) == 0 && !d.closing && d.bgErr == nil {
			d.bgCond.Wait()
		}
		if d.closing || d.bgErr != nil {
			return
		}
		d.flushing = true
		err := d.flushOldestLocked()
		d.flushing = false
		if err != nil {
			d.failLocked(err)
		}
		d.bgCond.Broadcast()
	}
}

// flushOldestLocked writes d.imm[0] to an L0 table and installs it. d.mu is
// held on entry and exit and released during I/O.
func (d *DB) flushOldestLocked() error {
	m := d.imm[0]
	snapshots := d.snapshots.copySeqs()
	d.mu.Unlock()
	start := time.Now()
	m.waitWriters()
	var err error
	if d.log != nil && m.maxLSN != 0 {
		// Tables must never cover a log position the log could lose: the
		// covered LSN becomes the log's replay start.
		if werr := d.log.WaitDurable(context.Background(), wal.LSN(m.maxLSN)); werr != nil {
			err = fmt.Errorf("lsm: flush waits for log durability of LSN %d: %w", m.maxLSN, werr)
		}
	}
	var metas []*manifest.FileMetadata
	if err == nil && !m.empty() {
		it := compact.NewIter(m.newIter(), snapshots, func([]byte) bool { return false })
		metas, err = d.writeTables(it, 0, nil)
	}
	d.mu.Lock()
	if err != nil {
		return err
	}
	edit := &manifest.VersionEdit{}
	var bytes uint64
	for _, meta := range metas {
		edit.Added = append(edit.Added, manifest.NewFile{Level: 0, Meta: meta})
		d.flushedSeq = max(d.flushedSeq, meta.LargestSeq)
		bytes += meta.Size
	}
	if m.maxLSN != 0 {
		d.coveredLSN = max(d.coveredLSN, m.maxLSN)
	}
	d.imm = d.imm[1:]
	if err := d.logAndApply(edit); err != nil {
		return err
	}
	// The new read state no longer holds m; drop the database's reference
	// (readers still holding older read states keep it alive).
	m.unref()
	d.metrics.flushes.Add(1)
	d.metrics.flushBytes.Add(bytes)
	d.metrics.flushNanos.Add(int64(time.Since(start)))
	if d.log != nil {
		covered := wal.LSN(d.coveredLSN)
		d.mu.Unlock()
		err := d.log.TruncateBefore(min(covered+1, d.log.DurableLSN()+1))
		d.mu.Lock()
		if err != nil {
			return fmt.Errorf("lsm: truncate log before LSN %d: %w", covered+1, err)
		}
	}
	return nil
}

// allocFileNum returns a fresh file number.
func (d *DB) allocFileNum() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.nextFileNum
	d.nextFileNum++
	return n
}

// writeTables writes the entries of it into tables of about splitBytes each
// (0: no size limit), never splitting one user key's versions across
// tables and starting a new table where Options.Partition changes, syncs
// them and the directory, and opens them. limiter may be nil.
func (d *DB) writeTables(it *compact.Iter, splitBytes uint64, limiter *rateLimiter) ([]*manifest.FileMetadata, error) {
	var metas []*manifest.FileMetadata
	var w *sstable.Writer
	var f vfs.File
	var num uint64
	var lastUser []byte
	var lastPart uint64
	partition := d.opts.Partition
	fail := func(err error) ([]*manifest.FileMetadata, error) {
		if f != nil {
			_ = f.Close()
		}
		for _, m := range metas {
			if m.TableHandle != nil {
				_ = tableOf(m).close()
			}
		}
		// Written files are orphans: no edit names them, the next Open
		// removes them.
		return nil, err
	}
	finish := func() error {
		props, size, err := w.Finish()
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		f = nil
		if err != nil {
			return fmt.Errorf("lsm: write table %06d: %w", num, err)
		}
		metas = append(metas, &manifest.FileMetadata{
			FileNum: num, Size: size,
			Smallest: props.SmallestKey, Largest: props.LargestKey,
			SmallestSeq: props.SmallestSeq, LargestSeq: props.LargestSeq,
		})
		w = nil
		return nil
	}
	wopts := sstable.WriterOptions{
		BlockSizeBytes:  d.opts.BlockSizeBytes,
		BlockSizeFor:    d.opts.BlockSizeFor,
		RestartInterval: d.opts.BlockRestartInterval,
		BloomBitsPerKey: d.opts.BloomBitsPerKey,
	}
	for ok := it.First(); ok; ok = it.Next() {
		key := it.Key()
		ukey := base.UserKey(key)
		if w != nil && string(ukey) != string(lastUser) {
			cut := splitBytes > 0 && w.EstimatedSize() >= splitBytes
			if partition != nil {
				part := partition(ukey)
				cut = cut || part != lastPart
				lastPart = part
			}
			if cut {
				if err := finish(); err != nil {
					return fail(err)
				}
			}
		} else if w == nil && partition != nil {
			lastPart = partition(ukey)
		}
		if w == nil {
			num = d.allocFileNum()
			var err error
			f, err = d.fs.Open(d.tablePath(num), vfs.FlagWrite|vfs.FlagCreate|vfs.FlagTruncate)
			if err != nil {
				return fail(fmt.Errorf("lsm: create table %06d: %w", num, err))
			}
			topts := wopts
			if bloomFor := d.opts.BloomBitsPerKeyFor; bloomFor != nil {
				if bits := bloomFor(ukey); bits != 0 {
					topts.BloomBitsPerKey = bits
				}
			}
			w = sstable.NewWriter(&fileWriter{f: f}, num, topts)
		}
		if err := w.Add(key, it.Value()); err != nil {
			return fail(err)
		}
		lastUser = append(lastUser[:0], ukey...)
		if limiter != nil {
			limiter.wait(int64(len(key) + len(it.Value())))
		}
	}
	if err := it.Error(); err != nil {
		return fail(err)
	}
	if w != nil {
		if err := finish(); err != nil {
			return fail(err)
		}
	}
	if len(metas) == 0 {
		return nil, nil
	}
	if err := d.fs.SyncDir(d.dir); err != nil {
		return fail(fmt.Errorf("lsm: sync %s after writing tables: %w", d.dir, err))
	}
	for _, m := range metas {
		if err := d.openTable(m); err != nil {
			return fail(err)
		}
	}
	return metas, nil
}

// rateLimiter paces one compaction's writes to a byte rate.
type rateLimiter struct {
	ratePerSec int64
	start      time.Time
	bytes      int64
}

func newRateLimiter(ratePerSec int64) *rateLimiter {
	if ratePerSec <= 0 {
		return nil
	}
	return &rateLimiter{ratePerSec: ratePerSec, start: time.Now()}
}

// wait accounts n bytes and sleeps when the compaction is ahead of its
// rate by more than 10 ms (sleeping per entry would only add timer slack).
func (r *rateLimiter) wait(n int64) {
	r.bytes += n
	due := time.Duration(float64(r.bytes) / float64(r.ratePerSec) * float64(time.Second))
	if ahead := due - time.Since(r.start); ahead > 10*time.Millisecond {
		time.Sleep(ahead)
	}
}

// Flush writes the current memtable to L0 and waits until it is installed.
func (d *DB) Flush() error {
	d.commitMu.Lock()
	d.mu.Lock()
	if d.closing {
		d.mu.Unlock()
		d.commitMu.Unlock()
		return ErrClosed
	}
	var target *memTable
	if !d.mem.empty() {
		target = d.mem
		if err := d.rotateLocked(); err != nil {
			d.mu.Unlock()
			d.commitMu.Unlock()
			return err
		}
	} else if n := len(d.imm); n > 0 {
		target = d.imm[n-1]
	}
	d.commitMu.Unlock()
	defer d.mu.Unlock()
	for target != nil && d.bgErr == nil && !d.closing && containsMem(d.imm, target) {
		d.bgCond.Wait()
	}
	if d.bgErr != nil {
		return d.bgErr
	}
	if d.closing && containsMem(d.imm, target) {
		return ErrClosed
	}
	return nil
}

func containsMem(ms []*memTable, m *memTable) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}
