package lsm

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/tapewire/tapewire/lsm/internal/base"
	"github.com/tapewire/tapewire/lsm/internal/compact"
	"github.com/tapewire/tapewire/lsm/internal/manifest"
)

// ErrIngestOverlap is returned by Ingest when a memtable holds a key inside
// the ingested key range: the batch must then be applied (or the memtables
// flushed first).
var ErrIngestOverlap = errors.New("lsm: ingested key range overlaps a memtable")

// SortedRun is a run of key/value pairs with strictly increasing keys,
// built for Ingest: keys and values are copied into one buffer as they are
// added. The zero value is empty and ready; Reset keeps the buffers. One
// goroutine at a time.
type SortedRun struct {
	buf     []byte
	entries []runEntry
}

// runEntry locates one pair in SortedRun.buf: the key at off, its value
// right after it.
type runEntry struct {
	off        int
	klen, vlen int
}

// Add appends key → value and reports true, or reports false and adds
// nothing if key does not sort after the run's last key. No allocation
// once the buffers have grown.
func (r *SortedRun) Add(key, value []byte) bool {
	if n := len(r.entries); n > 0 {
		e := r.entries[n-1]
		if bytes.Compare(key, r.buf[e.off:e.off+e.klen]) <= 0 {
			return false
		}
	}
	r.entries = append(r.entries, runEntry{off: len(r.buf), klen: len(key), vlen: len(value)})
	r.buf = append(r.buf, key...)
	r.buf = append(r.buf, value...)
	return true
}

// Grow makes room for bytes more bytes of keys and values in pairs more
// pairs without reallocating, so a run refilled to a known size grows its
// buffers once.
func (r *SortedRun) Grow(bytes, pairs int) {
	r.buf = slices.Grow(r.buf, bytes)
	r.entries = slices.Grow(r.entries, pairs)
}

// Len is the number of pairs.
func (r *SortedRun) Len() int { return len(r.entries) }

// Bytes is the bytes of keys and values held.
func (r *SortedRun) Bytes() int { return len(r.buf) }

// At returns pair i (views into the run, valid until Reset).
func (r *SortedRun) At(i int) (key, value []byte) {
	e := r.entries[i]
	return r.buf[e.off : e.off+e.klen], r.buf[e.off+e.klen : e.off+e.klen+e.vlen]
}

// Reset empties the run, keeping its buffers.
func (r *SortedRun) Reset() {
	r.buf = r.buf[:0]
	r.entries = r.entries[:0]
}

// Ingest writes run straight into new tables and adds them to L0 in one
// manifest edit, bypassing the memtable: for data that arrives sorted, such
// as an event log replayed from the caller's log, it saves the memtable
// insert and the flush that would copy the same bytes into tables later.
//
// The run's pairs become Sets with one new sequence number, above every
// write before the call, and become visible all at once, like an applied
// batch; the tables are synced and the manifest edit is durable before
// Ingest returns. Tables are cut where Options.Partition changes (and at
// TargetFileSizeBytes), as a flush cuts them, and an L0 table that
// overlaps nothing else moves down like a flushed one.
//
// Ingest is ExternalLog-only and records no log position: CoveredLSN does
// not move, so the caller's log still replays the ingested writes after a
// crash (an ingested key written again is shadowed by the newer copy; the
// values a replay writes are the same). A caller that ingests the writes of
// log positions up to L must do so before it applies (ApplyAt) any write
// at L or later whose flush could make CoveredLSN reach L.
//
// If a memtable holds a key in [first key, last key] of the run, Ingest
// writes nothing and returns ErrIngestOverlap (a memtable entry older than
// the ingested one would otherwise be read first).
func (d *DB) Ingest(run *SortedRun) error {
	if d.opts.Durability != ExternalLog {
		return fmt.Errorf("lsm: Ingest needs ExternalLog durability")
	}
	if run.Len() == 0 {
		return nil
	}
	d.commitMu.Lock()
	if d.shut.Load() {
		d.commitMu.Unlock()
		return ErrClosed
	}
	seq := d.nextSeq
	d.nextSeq++
	entry := &commitEntry{end: seq + 1}
	d.pubMu.Lock()
	d.pending = append(d.pending, entry)
	d.pubMu.Unlock()
	d.commitMu.Unlock()

	err := d.ingest(&ingestIter{run: run, seq: seq, pos: -1})
	d.publish(entry)
	return err
}

// ingest writes and installs the tables of it. The caller holds a
// reserved, unpublished sequence number (it.seq). The tables are written
// and synced first, so ingests from several goroutines overlap their I/O;
// the overlap check and the install wait until every write with a lower
// sequence number is in its memtable or installed (the visible sequence
// number reaches ours): only then is the check complete, and later writes
// are newer than the ingested keys anyway.
func (d *DB) ingest(it *ingestIter) error {
	start := time.Now()
	metas, err := d.writeTables(compact.NewIter(it, nil, func([]byte) bool { return false }), uint64(d.opts.TargetFileSizeBytes), nil)
	if err != nil {
		return err
	}
	d.pubMu.Lock()
	for d.visibleSeq.Load() < uint64(it.seq) {
		d.pubCond.Wait()
	}
	d.pubMu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bgErr != nil {
		d.discardTablesLocked(metas)
		return d.bgErr
	}
	smallest, largest := it.smallest(), it.largest()
	overlap := memOverlaps(d.mem, smallest, largest)
	for _, m := range d.imm {
		overlap = overlap || memOverlaps(m, smallest, largest)
	}
	if overlap {
		d.discardTablesLocked(metas)
		return fmt.Errorf("%w: keys %s..%s", ErrIngestOverlap, base.FormatKey(smallest), base.FormatKey(largest))
	}
	edit := &manifest.VersionEdit{}
	var bytes uint64
	for _, meta := range metas {
		edit.Added = append(edit.Added, manifest.NewFile{Level: 0, Meta: meta})
		bytes += meta.Size
	}
	// Sequence numbers must never be reused after a restart: Open starts
	// from the manifest's last sequence number.
	d.flushedSeq = max(d.flushedSeq, it.seq)
	if err := d.logAndApply(edit); err != nil {
		return err
	}
	d.metrics.ingests.Add(1)
	d.metrics.ingestBytes.Add(bytes)
	d.metrics.ingestNanos.Add(int64(time.Since(start)))
	d.bgCond.Broadcast() // the compaction picker may move the new tables down
	return nil
}

// discardTablesLocked closes and removes tables written for an ingest that
// no version will name. d.mu held.
func (d *DB) discardTablesLocked(metas []*manifest.FileMetadata) {
	for _, m := range metas {
		if m.TableHandle != nil {
			_ = tableOf(m).close()
		}
		if err := d.fs.Remove(d.tablePath(m.FileNum)); err != nil {
			d.opts.Logf("lsm: remove table %06d of a refused ingest: %v (the next Open removes it)", m.FileNum, err)
		}
	}
}

// memOverlaps reports whether m holds a key in [smallest, largest] (user
// keys).
func memOverlaps(m *memTable, smallest, largest []byte) bool {
	mi := m.newIter()
	if !mi.SeekGE(smallest, base.SearchTrailerAll) {
		return false
	}
	return bytes.Compare(base.UserKey(mi.Key()), largest) <= 0
}

// ingestIter presents a SortedRun as an internal iterator whose entries
// are Sets that all carry seq.
type ingestIter struct {
	run  *SortedRun
	seq  base.SeqNum
	pos  int
	ikey []byte
}

func (it *ingestIter) smallest() []byte { k, _ := it.run.At(0); return k }
func (it *ingestIter) largest() []byte  { k, _ := it.run.At(it.run.Len() - 1); return k }

func (it *ingestIter) valid() bool {
	if it.pos < 0 || it.pos >= it.run.Len() {
		return false
	}
	k, _ := it.run.At(it.pos)
	it.ikey = base.AppendInternalKey(it.ikey[:0], k, it.seq, base.KindSet)
	return true
}

func (it *ingestIter) First() bool { it.pos = 0; return it.valid() }
func (it *ingestIter) Last() bool  { it.pos = it.run.Len() - 1; return it.valid() }
func (it *ingestIter) Next() bool {
	if it.pos < it.run.Len() {
		it.pos++
	}
	return it.valid()
}
func (it *ingestIter) Prev() bool {
	if it.pos >= 0 {
		it.pos--
	}
	return it.valid()
}

// search returns the index of the first entry >= (ukey, trailer): entries
// order by user key, then by trailer descending, and every entry's
// trailer is the same.
func (it *ingestIter) search(ukey []byte, trailer uint64) int {
	own := base.MakeTrailer(it.seq, base.KindSet)
	return sort.Search(it.run.Len(), func(i int) bool {
		k, _ := it.run.At(i)
		c := bytes.Compare(k, ukey)
		return c > 0 || c == 0 && own <= trailer
	})
}

// SeekGE moves to the first entry >= (ukey, trailer).
func (it *ingestIter) SeekGE(ukey []byte, trailer uint64) bool {
	it.pos = it.search(ukey, trailer)
	return it.valid()
}

// SeekLT moves to the last entry < (ukey, trailer).
func (it *ingestIter) SeekLT(ukey []byte, trailer uint64) bool {
	it.pos = it.search(ukey, trailer) - 1
	return it.valid()
}

func (it *ingestIter) Key() []byte   { return it.ikey }
func (it *ingestIter) Value() []byte { _, v := it.run.At(it.pos); return v }
func (it *ingestIter) Error() error  { return nil }
func (it *ingestIter) Close() error  { return nil }
