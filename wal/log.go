package wal

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapewire/tapewire/vfs"
)

// ErrClosed is returned by operations on a closed (or closing) Log.
var ErrClosed = errors.New("wal: log is closed")

// segment is one segment file of the live log.
type segment struct {
	id       uint64
	path     string
	firstLSN LSN   // 0 until its first frame is sealed
	capacity int64 // bytes usable (its preallocated size)
	file     vfs.File
	inflight int  // frames written to it and not yet completed
	retired  bool // no longer the active segment
}

// group is a commit group: the records of one frame, in an aligned buffer
// laid out as [segment header block][frame header][records...].
type group struct {
	buf   []byte
	n     int // frame length so far, header included
	first LSN
	count uint32
	close bool

	// Set when sealed.
	seg        *segment
	fileOff    int64 // where the write starts (0 when it carries the segment header)
	frameOff   int64 // where the frame starts
	writeStart int   // index in buf of the first byte written
	writeLen   int
	promise    LSN
	done       bool
	err        error
	sealedAt   time.Time
}

func (g *group) reset() {
	g.n, g.first, g.count, g.close = FrameHeaderSize, 0, 0, false
	g.seg, g.done, g.err = nil, false, nil
}

type waiterEntry struct {
	lsn LSN
	w   *waiter
}

type waiter struct{ ch chan error }

// getWaiter takes a waiter from the log's free list (a buffered channel: no
// lock, no allocation once warm; sync.Pool would drop items under -race and
// on every GC).
func (l *Log) getWaiter() *waiter {
	select {
	case w := <-l.freeWaiters:
		return w
	default:
		return &waiter{ch: make(chan error, 1)}
	}
}

func (l *Log) putWaiter(w *waiter) {
	select {
	case l.freeWaiters <- w:
	default:
	}
}

// Log is an open write-ahead log. All methods are safe for concurrent use.
type Log struct {
	opts     Options
	fs       vfs.FS
	dir      string
	lock     io.Closer
	uuid     [16]byte
	recovery *Report

	durable atomic.Uint64 // highest LSN acknowledged durable

	mu        sync.Mutex
	flushCond sync.Cond // flushers wait for work
	spaceCond sync.Cond // appenders wait for buffer space; Close waits for drain
	prepCond  sync.Cond // the preparer waits for a need

	fatal        error
	closing      bool
	stopped      bool
	closeSealed  bool
	closeWritten bool

	nextLSN  LSN
	filling  *group
	free     []*group
	inflight []*group // sealed, in LSN (and offset) order

	active   *segment
	writeOff int64
	segments []*segment // the live log's segments, oldest first
	spares   []*segment // prepared, zero header, ids after the active one
	nextID   uint64     // id the preparer creates next
	recycle  []string   // paths of segments kept for reuse

	// Group formation (see readyLocked): how many of the waiters woken by
	// the last two acknowledgements have not appended again yet, and
	// whether the group they are filling may be sealed once they all have.
	returningCur, returningPrev int
	gatherArmed                 bool
	spaceWaiters                int // appenders waiting for room in the filling group

	waiters     []waiterEntry // ring, LSN order
	waiterHead  int
	waiterLen   int
	freeWaiters chan *waiter

	directMode bool // every segment opened with O_DIRECT in effect
	stats      Metrics
	truncMu    sync.Mutex
	wg         sync.WaitGroup
}

// Metrics are counters of a Log (see Log.Metrics).
type Metrics struct {
	Frames         int64  // frames written
	Records        int64  // records written
	FrameBytes     int64  // frame bytes (headers and records)
	WrittenBytes   int64  // bytes written, with alignment padding and segment headers
	Segments       int64  // segments activated
	Recycled       int64  // segments reused from the recycle pool
	WriteMode      string // "direct+dsync" or "buffered+dsync" (O_DIRECT refused)
	DurableLSN     LSN
	InFlightFrames int
	// PeakInFlightFrames is the most frames ever in flight at once: how
	// deep the pipeline went (at most MaxInFlightFrames).
	PeakInFlightFrames int
	// InFlightAtSealSum is the sum over frames of the frames in flight
	// once each was sealed (itself included): divided by Frames, the mean
	// depth each frame was written at.
	InFlightAtSealSum int64
	// FrameWriteNanos is the sum over completed frames of the time from
	// sealing to the end of the write (CRC, the O_DSYNC write, getting the
	// lock back): divided by Frames, the mean write latency the commit
	// path sees, to set beside the device's at that depth.
	FrameWriteNanos int64
	SparesReady     int // prepared segments waiting to become active
}

// Open opens (creating if needed) the log in dir, recovers it and returns it
// ready to append. A corrupt log is refused with a *CorruptionError; a torn
// tail is repaired (see doc.go).
func Open(dir string, opts Options) (*Log, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	fs := o.FS
	if err := fs.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("wal: create %s: %w", dir, err)
	}
	lock, err := fs.Lock(filepath.Join(dir, "LOCK"))
	if err != nil {
		return nil, fmt.Errorf("wal: lock %s: %w", dir, err)
	}
	l := &Log{opts: o, fs: fs, dir: dir, lock: lock, directMode: true}
	l.flushCond.L, l.spaceCond.L, l.prepCond.L = &l.mu, &l.mu, &l.mu
	if err := l.recover(); err != nil {
		l.closeFiles()
		lock.Close()
		return nil, err
	}
	groupBytes := SegmentHeaderSize + int(alignBlock(int64(o.MaxGroupBytes)))
	for range o.MaxInFlightFrames + 1 {
		g := &group{buf: vfs.AlignedBuffer(groupBytes)}
		g.reset()
		l.free = append(l.free, g)
	}
	l.filling = l.popFree()
	l.inflight = make([]*group, 0, o.MaxInFlightFrames)
	l.waiters = make([]waiterEntry, o.MaxWaiters)
	l.freeWaiters = make(chan *waiter, min(o.MaxWaiters, 1024))
	l.wg.Add(1 + o.MaxInFlightFrames)
	go l.prepareLoop()
	for range o.MaxInFlightFrames {
		go l.flushLoop()
	}
	return l, nil
}

func (l *Log) popFree() *group {
	g := l.free[len(l.free)-1]
	l.free = l.free[:len(l.free)-1]
	return g
}

// recover inspects the directory, refuses corruption, repairs a torn tail
// and sets up the writer's position.
func (l *Log) recover() error {
	names, err := l.fs.List(l.dir)
	if err != nil {
		return fmt.Errorf("wal: list %s: %w", l.dir, err)
	}
	removed := false
	for _, n := range names {
		if strings.HasSuffix(n, ".tmp") {
			if err := l.fs.Remove(filepath.Join(l.dir, n)); err != nil {
				return fmt.Errorf("wal: remove leftover %s: %w", n, err)
			}
			removed = true
		}
	}
	inspect := Inspect
	if l.opts.DeferSealedVerification {
		inspect = inspectDeferred
	}
	r, err := inspect(l.fs, l.dir)
	if err != nil {
		return err
	}
	l.recovery = r
	if err := r.Err(); err != nil {
		return err
	}
	if r.LogUUID != "" {
		l.uuid = r.uuid
	} else if _, err := rand.Read(l.uuid[:]); err != nil {
		return fmt.Errorf("wal: log UUID: %w", err)
	}
	endSeg := r.chainLen - 1
	// Zero the frames that were in flight at the crash and landed after the
	// end, so no later recovery can mistake them for log data.
	if endSeg >= 0 {
		s := r.scans[endSeg]
		for _, f := range r.orphans {
			if f.seg != endSeg {
				continue
			}
			if err := l.zeroRange(s.path, f.off, alignBlock(int64(f.h.Length))); err != nil {
				return err
			}
		}
	}
	// Segments past the end: keep clean spares (zero header, no frames,
	// full size, consecutive ids); delete the rest (only unacknowledged
	// frames can be in them).
	nextID := uint64(1)
	if endSeg >= 0 {
		nextID = r.scans[endSeg].id + 1
	}
	for i := endSeg + 1; i < len(r.scans); i++ {
		s := r.scans[i]
		spare := s.hdrState == stateZero && len(s.frames) == 0 && s.size == l.opts.SegmentSizeBytes && s.id == nextID
		if spare {
			f, err := l.fs.Open(s.path, vfs.FlagWrite|vfs.FlagDirect|vfs.FlagDSync)
			if err != nil {
				return fmt.Errorf("wal: open spare segment %s: %w", s.path, err)
			}
			l.noteMode(f)
			l.spares = append(l.spares, &segment{id: s.id, path: s.path, capacity: s.size, file: f})
			nextID++
			continue
		}
		if err := l.fs.Remove(s.path); err != nil {
			return fmt.Errorf("wal: remove unacknowledged segment %s: %w", s.path, err)
		}
		removed = true
	}
	if removed {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return fmt.Errorf("wal: sync %s: %w", l.dir, err)
		}
	}
	l.nextID = nextID
	l.nextLSN = r.LastLSN + 1
	l.durable.Store(uint64(r.LastLSN))
	for i := 0; i <= endSeg; i++ {
		s := r.scans[i]
		l.segments = append(l.segments, &segment{id: s.id, path: s.path, firstLSN: s.hdr.FirstLSN, capacity: s.hdr.SegmentSizeBytes, retired: true})
	}
	if endSeg >= 0 {
		a := l.segments[endSeg]
		f, err := l.fs.Open(a.path, vfs.FlagWrite|vfs.FlagDirect|vfs.FlagDSync)
		if err != nil {
			return fmt.Errorf("wal: open segment %s: %w", a.path, err)
		}
		l.noteMode(f)
		a.file, a.retired = f, false
		l.active, l.writeOff = a, r.EndOffset
	}
	verdict := r.Decision.Verdict
	deferred := ""
	if r.DeferredSegments > 0 {
		deferred = fmt.Sprintf(" (%d sealed segments to be verified as they are read)", r.DeferredSegments)
	}
	l.opts.Logf("wal: opened %s: %s, LSNs %d..%d, end at segment %d offset %d%s", l.dir, verdict, r.FirstLSN, r.LastLSN, r.EndSegment, r.EndOffset, deferred)
	return nil
}

// noteMode records a segment opened without O_DIRECT (the file system
// refused it) and says so once.
func (l *Log) noteMode(f vfs.File) {
	if !f.Direct() && l.directMode {
		l.directMode = false
		l.opts.Logf("wal: %s: O_DIRECT refused by the file system; writing buffered with O_DSYNC (durability kept, page cache used); Metrics().WriteMode reports it", l.dir)
	}
}

// zeroRange overwrites [off, off+n) of the file at path with zeros, durably.
func (l *Log) zeroRange(path string, off, n int64) error {
	f, err := l.fs.Open(path, vfs.FlagWrite|vfs.FlagDirect)
	if err != nil {
		return fmt.Errorf("wal: open %s to zero the torn tail: %w", path, err)
	}
	defer f.Close()
	zero := vfs.AlignedBuffer(int(min(n, 1<<20)))
	for n > 0 {
		c := min(n, int64(len(zero)))
		if _, err := f.WriteAt(zero[:c], off); err != nil {
			return fmt.Errorf("wal: zero torn tail of %s at %d: %w", path, off, err)
		}
		off, n = off+c, n-c
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("wal: sync %s after zeroing: %w", path, err)
	}
	return nil
}

// Recovery returns what Open found: the verdict (Clean after a clean Close)
// and the recovered LSN range.
func (l *Log) Recovery() *Report { return l.recovery }

// DurableLSN returns the highest LSN known durable. Cheap: one atomic load.
func (l *Log) DurableLSN() LSN { return LSN(l.durable.Load()) }

// Err returns the error that made the log fail, or nil.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatal
}

// Metrics returns a snapshot of the counters.
func (l *Log) Metrics() Metrics {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.stats
	m.WriteMode = "direct+dsync"
	if !l.directMode {
		m.WriteMode = "buffered+dsync"
	}
	m.DurableLSN = l.DurableLSN()
	m.InFlightFrames = len(l.inflight)
	m.SparesReady = len(l.spares)
	return m
}

// Append writes records as part of the next commit group and returns the LSN
// of the last one once it is durable. If ctx ends first, Append returns its
// error and the records may or may not become durable.
func (l *Log) Append(ctx context.Context, records []Record) (LSN, error) {
	w := l.getWaiter()
	last, err := l.enqueue(records, w)
	if err != nil {
		l.putWaiter(w)
		return 0, err
	}
	done := ctx.Done()
	if done == nil {
		// A context that never ends: a plain receive is cheaper than select.
		err = <-w.ch
	} else {
		select {
		case err = <-w.ch:
		case <-done:
			// w stays queued and will be signalled later: do not reuse it.
			return last, ctx.Err()
		}
	}
	l.putWaiter(w)
	if err != nil {
		return 0, err
	}
	return last, nil
}

// AppendAsync adds records to the next commit group and returns the LSN of
// the last one without waiting for durability: completion is announced by
// Options.Notify, DurableLSN and WaitDurable. It blocks only while the group
// buffers are full (back-pressure). Hot path: it does not allocate.
func (l *Log) AppendAsync(records []Record) (LSN, error) {
	return l.enqueue(records, nil)
}

// WaitDurable blocks until lsn is durable, the log fails, or ctx ends.
func (l *Log) WaitDurable(ctx context.Context, lsn LSN) error {
	if l.DurableLSN() >= lsn {
		return nil
	}
	w := l.getWaiter()
	l.mu.Lock()
	if l.fatal != nil {
		err := l.fatal
		l.mu.Unlock()
		l.putWaiter(w)
		return err
	}
	if lsn >= l.nextLSN {
		l.mu.Unlock()
		l.putWaiter(w)
		return fmt.Errorf("wal: WaitDurable(%d): LSN not yet assigned (next is %d)", lsn, l.nextLSN)
	}
	if LSN(l.durable.Load()) >= lsn {
		l.mu.Unlock()
		l.putWaiter(w)
		return nil
	}
	if err := l.addWaiterLocked(lsn, w); err != nil {
		l.mu.Unlock()
		l.putWaiter(w)
		return err
	}
	l.mu.Unlock()
	select {
	case err := <-w.ch:
		l.putWaiter(w)
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *Log) addWaiterLocked(lsn LSN, w *waiter) error {
	if l.waiterLen == len(l.waiters) {
		return fmt.Errorf("wal: %d callers already wait for durability (limit Options.MaxWaiters = %d)", l.waiterLen, len(l.waiters))
	}
	l.waiters[(l.waiterHead+l.waiterLen)%len(l.waiters)] = waiterEntry{lsn: lsn, w: w}
	l.waiterLen++
	return nil
}

// enqueue copies records into the filling group. Hot path.
func (l *Log) enqueue(records []Record, w *waiter) (LSN, error) {
	if len(records) == 0 {
		return 0, errors.New("wal: append of zero records")
	}
	size := 0
	for i := range records {
		p := len(records[i].Payload)
		if p > l.opts.MaxRecordBytes {
			return 0, fmt.Errorf("wal: record %d of %d has %d payload bytes, over the limit Options.MaxRecordBytes = %d", i, len(records), p, l.opts.MaxRecordBytes)
		}
		size += recordSize(p)
	}
	if FrameHeaderSize+size > l.opts.MaxGroupBytes {
		return 0, fmt.Errorf("wal: append of %d records needs %d bytes in one frame, over the limit Options.MaxGroupBytes = %d", len(records), FrameHeaderSize+size, l.opts.MaxGroupBytes)
	}
	l.mu.Lock()
	for {
		if l.fatal != nil {
			err := l.fatal
			l.mu.Unlock()
			return 0, err
		}
		if l.closing {
			l.mu.Unlock()
			return 0, ErrClosed
		}
		if l.filling.n+size <= l.opts.MaxGroupBytes {
			break
		}
		l.spaceWaiters++
		if l.readyLocked() {
			l.flushCond.Signal()
		}
		l.spaceCond.Wait()
		l.spaceWaiters--
	}
	if w != nil && l.waiterLen == len(l.waiters) {
		n := l.waiterLen
		l.mu.Unlock()
		return 0, fmt.Errorf("wal: %d callers already wait for durability (limit Options.MaxWaiters = %d)", n, n)
	}
	g := l.filling
	if g.count == 0 {
		g.first = l.nextLSN
	}
	buf := g.buf[SegmentHeaderSize:]
	for i := range records {
		g.n += encodeRecord(buf[g.n:], l.nextLSN, &records[i])
		l.nextLSN++
	}
	g.count += uint32(len(records))
	last := l.nextLSN - 1
	// One more of the woken appenders is back (the oldest cohort first).
	if l.returningPrev > 0 {
		l.returningPrev--
	} else if l.returningCur > 0 {
		l.returningCur--
	}
	if w != nil {
		_ = l.addWaiterLocked(last, w) // room checked above
	}
	if !l.readyLocked() {
		// Whoever makes the group ready (a completion, a later append)
		// seals it: no flusher is woken for nothing.
		l.mu.Unlock()
		return last, nil
	}
	if w == nil {
		l.flushCond.Signal()
		l.mu.Unlock()
		return last, nil
	}
	// A pipeline slot is free: this caller writes the frame itself rather
	// than waking a flusher, saving two goroutine hand-offs on the path of
	// a lone writer.
	f := l.sealLocked()
	l.mu.Unlock()
	err := l.writeFrame(f)
	l.mu.Lock()
	l.completeLocked(f, err)
	if l.readyLocked() {
		l.flushCond.Signal()
	}
	l.wakeAndUnlock()
	return last, nil
}

// wakeBatchSize bounds the waiters taken from the ring per lock hold.
const wakeBatchSize = 64

// wakeAndUnlock wakes the waiters whose LSNs are durable and returns with
// l.mu released. The channel sends happen outside the lock, so woken
// appenders do not queue on the mutex their waker holds. Commit path: no
// allocation (the batch lives on the stack).
func (l *Log) wakeAndUnlock() {
	for {
		var batch [wakeBatchSize]*waiter
		n := l.popDurableWaitersLocked(batch[:])
		l.mu.Unlock()
		for _, w := range batch[:n] {
			w.ch <- nil
		}
		if n < wakeBatchSize {
			return
		}
		l.mu.Lock()
	}
}

// popDurableWaitersLocked moves up to len(dst) waiters at or below the
// durable LSN from the ring into dst (in LSN order) and returns how many.
func (l *Log) popDurableWaitersLocked(dst []*waiter) int {
	durable := LSN(l.durable.Load())
	n := 0
	for n < len(dst) && l.waiterLen > 0 {
		e := &l.waiters[l.waiterHead]
		if e.lsn > durable {
			break
		}
		dst[n] = e.w
		n++
		*e = waiterEntry{}
		l.waiterHead = (l.waiterHead + 1) % len(l.waiters)
		l.waiterLen--
	}
	return n
}

// durableWaitersLocked reports whether some waiter's LSN is durable.
func (l *Log) durableWaitersLocked() bool {
	return l.waiterLen > 0 && l.waiters[l.waiterHead].lsn <= LSN(l.durable.Load())
}

// needsRotationLocked reports whether g does not fit in the active segment.
// A regular frame must leave one block free so the close frame always fits.
func (l *Log) needsRotationLocked(g *group) bool {
	if l.active == nil {
		return true
	}
	reserve := int64(BlockSize)
	if g.close {
		reserve = 0
	}
	return l.writeOff+alignBlock(int64(g.n))+reserve > l.active.capacity
}

// readyLocked reports whether a flusher can seal and write a group now.
// When the log is closing and everything accepted has been written, it
// turns the empty filling group into the close frame (g.close), which is
// then sealed like any other group.
func (l *Log) readyLocked() bool {
	if l.fatal != nil || len(l.inflight) >= l.opts.MaxInFlightFrames || len(l.free) == 0 {
		return false
	}
	g := l.filling
	if g.count == 0 {
		if !(l.closing && !l.closeSealed && len(l.inflight) == 0) {
			return false
		}
		g.close = true
	}
	if len(l.inflight) > 0 && g.n < l.opts.PipelineFillBytes && !g.close && l.spaceWaiters == 0 &&
		!(l.gatherArmed && l.returningCur+l.returningPrev == 0) {
		// Frames are in flight: a small group waits for more records, for
		// the appenders the last acknowledgement woke, or for the pipeline
		// to drain, since every frame costs a whole block write.
		return false
	}
	if l.needsRotationLocked(g) && len(l.spares) == 0 {
		l.prepCond.Signal()
		return false
	}
	return true
}

// flushLoop is one of MaxInFlightFrames flushers: it seals the filling group
// into a frame, writes it, and completes it.
func (l *Log) flushLoop() {
	defer l.wg.Done()
	l.mu.Lock()
	for {
		for !l.stopped && !l.readyLocked() {
			l.flushCond.Wait()
		}
		if l.stopped {
			l.mu.Unlock()
			return
		}
		g := l.sealLocked()
		l.mu.Unlock()
		err := l.writeFrame(g)
		l.mu.Lock()
		l.completeLocked(g, err)
		if l.durableWaitersLocked() {
			l.wakeAndUnlock()
			l.mu.Lock()
		}
	}
}

// writeFrame finishes the header and CRC of a sealed group and writes it
// (with the segment header first if it opens a segment) in one O_DIRECT,
// O_DSYNC write. Commit path: no lock held, no allocation.
func (l *Log) writeFrame(g *group) error {
	frame := g.buf[SegmentHeaderSize:]
	var flags uint16
	if g.close {
		flags = frameFlagClose
	}
	clear(frame[g.n:alignBlock(int64(g.n))])
	putFrameHeader(frame, FrameHeader{Flags: flags, SegmentID: g.seg.id, FirstLSN: g.first, Count: g.count,
		Length: uint32(g.n), DurableThrough: g.promise, LogTag: logTag(l.uuid)}, g.frameOff)
	_, err := g.seg.file.WriteAt(g.buf[g.writeStart:g.writeStart+g.writeLen], g.fileOff)
	return err
}

// sealLocked turns the filling group into a placed frame.
func (l *Log) sealLocked() *group {
	g := l.filling
	l.filling = l.popFree()
	if g.close {
		l.closeSealed = true
		g.first = l.nextLSN
	}
	if l.needsRotationLocked(g) {
		s := l.spares[0]
		l.spares = l.spares[1:]
		s.firstLSN = g.first
		if l.active != nil {
			l.active.retired = true
			l.maybeCloseSegmentLocked(l.active)
		}
		l.active = s
		l.segments = append(l.segments, s)
		l.writeOff = SegmentHeaderSize
		clear(g.buf[:SegmentHeaderSize])
		encodeSegmentHeader(g.buf, SegmentHeader{LogUUID: l.uuid, SegmentID: s.id, FirstLSN: g.first, SegmentSizeBytes: s.capacity})
		g.writeStart, g.fileOff = 0, 0
		l.stats.Segments++
		l.prepCond.Signal()
	} else {
		g.writeStart, g.fileOff = SegmentHeaderSize, l.writeOff
	}
	span := alignBlock(int64(g.n))
	g.frameOff = l.writeOff
	g.writeLen = int(g.frameOff-g.fileOff) + int(span)
	l.writeOff += span
	g.seg = l.active
	g.seg.inflight++
	g.promise = LSN(l.durable.Load())
	g.sealedAt = time.Now()
	if l.returningCur+l.returningPrev == 0 {
		l.gatherArmed = false // the cohort is in: wait for the next acknowledgement
	}
	l.inflight = append(l.inflight, g)
	l.stats.PeakInFlightFrames = max(l.stats.PeakInFlightFrames, len(l.inflight))
	l.stats.InFlightAtSealSum += int64(len(l.inflight))
	l.stats.Frames++
	l.stats.Records += int64(g.count)
	l.stats.FrameBytes += int64(g.n)
	l.stats.WrittenBytes += int64(g.writeLen)
	l.spaceCond.Broadcast() // the filling group has room again
	return g
}

// completeLocked records the end of g's write and acknowledges, in LSN
// order, every frame whose predecessors are all complete: the durable LSN
// moves and Notify is called. The caller then wakes the waiters it released
// (wakeAndUnlock), outside the lock.
func (l *Log) completeLocked(g *group, err error) {
	g.done, g.err = true, err
	l.stats.FrameWriteNanos += int64(time.Since(g.sealedAt))
	if err != nil {
		l.failLocked(fmt.Errorf("write frame at %s offset %d: %w", g.seg.path, g.fileOff, err))
	}
	durable := LSN(l.durable.Load())
	advanced := false
	for len(l.inflight) > 0 && l.inflight[0].done {
		h := l.inflight[0]
		copy(l.inflight, l.inflight[1:])
		l.inflight = l.inflight[:len(l.inflight)-1]
		if l.fatal == nil {
			if h.count > 0 {
				durable = h.first + LSN(h.count) - 1
				advanced = true
			}
			if h.close {
				l.closeWritten = true
			}
		}
		h.seg.inflight--
		l.maybeCloseSegmentLocked(h.seg)
		h.reset()
		l.free = append(l.free, h)
	}
	if advanced {
		prev := LSN(l.durable.Load())
		l.durable.Store(uint64(durable))
		// The waiters this acknowledgement releases (woken by the caller,
		// outside the lock) form the cohort whose next appends the filling
		// group may wait for.
		woken := 0
		for i := 0; i < l.waiterLen; i++ {
			e := &l.waiters[(l.waiterHead+i)%len(l.waiters)]
			if e.lsn > durable {
				break
			}
			if e.lsn > prev {
				woken++
			}
		}
		if woken > 0 {
			l.returningPrev, l.returningCur = l.returningCur, woken
			l.gatherArmed = true
		}
		if l.opts.Notify != nil {
			l.opts.Notify(durable, nil)
		}
	}
	l.spaceCond.Broadcast()
}

func (l *Log) maybeCloseSegmentLocked(s *segment) {
	if s.retired && s.inflight == 0 && s.file != nil {
		_ = s.file.Close() // written with O_DSYNC: nothing left to flush
		s.file = nil
	}
}

// failLocked makes err fatal: no more appends, every waiter gets it. An
// fsync or write is never retried (the kernel may have dropped the data).
// Fail makes the log refuse every later append, as after a write error,
// so that Close writes no close frame: for an owner that found the log
// damaged through a Reader (Options.DeferSealedVerification) and refuses
// to start, leaving the log's data as it found it. err becomes the cause
// of the failure every later call reports.
func (l *Log) Fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failLocked(err)
}

func (l *Log) failLocked(err error) {
	if l.fatal != nil {
		return
	}
	l.fatal = fmt.Errorf("wal: log %s failed and accepts no more appends: %w", l.dir, err)
	l.opts.Logf("%v", l.fatal)
	for l.waiterLen > 0 {
		e := &l.waiters[l.waiterHead]
		e.w.ch <- l.fatal
		*e = waiterEntry{}
		l.waiterHead = (l.waiterHead + 1) % len(l.waiters)
		l.waiterLen--
	}
	if l.opts.Notify != nil {
		l.opts.Notify(LSN(l.durable.Load()), l.fatal)
	}
	l.flushCond.Broadcast()
	l.spaceCond.Broadcast()
	l.prepCond.Broadcast()
}

// prepareLoop keeps PreparedSegments zeroed (or recycled) segments ready so
// rotation never waits for a file to be created or grown.
func (l *Log) prepareLoop() {
	defer l.wg.Done()
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		for !l.stopped && l.fatal == nil && (len(l.spares) >= l.opts.PreparedSegments || (l.closing && l.closeSealed)) {
			l.prepCond.Wait()
		}
		if l.stopped || l.fatal != nil {
			return
		}
		id := l.nextID
		l.nextID++
		recycled := ""
		if n := len(l.recycle); n > 0 {
			recycled = l.recycle[n-1]
			l.recycle = l.recycle[:n-1]
		}
		l.mu.Unlock()
		s, err := l.prepareSegment(id, recycled)
		l.mu.Lock()
		if err != nil {
			l.failLocked(fmt.Errorf("prepare segment %d: %w", id, err))
			return
		}
		if recycled != "" {
			l.stats.Recycled++
		}
		l.spares = append(l.spares, s)
		l.flushCond.Broadcast()
	}
}

var zeroChunk = vfs.AlignedBuffer(1 << 20)

// prepareSegment creates segment id at full size with a zero header, durably
// named: from a recycled file (only the header block is zeroed: old frames
// carry another segment id in their header and CRC seed, so they can never
// pass as frames of this segment) or from a new file written with zeros
// (fallocate alone would leave unwritten extents, and the first O_DSYNC write
// into each would pay a journal commit).
func (l *Log) prepareSegment(id uint64, recycled string) (*segment, error) {
	path := filepath.Join(l.dir, SegmentName(id))
	size := l.opts.SegmentSizeBytes
	if recycled != "" {
		if st, err := l.fs.Stat(recycled); err != nil || st.Size != size {
			if err := l.fs.Remove(recycled); err != nil {
				return nil, fmt.Errorf("remove recycled %s: %w", recycled, err)
			}
			recycled = ""
		}
	}
	if recycled != "" {
		if err := l.zeroRange(recycled, 0, SegmentHeaderSize); err != nil {
			return nil, err
		}
		if err := l.fs.Rename(recycled, path); err != nil {
			return nil, fmt.Errorf("rename %s to %s: %w", recycled, path, err)
		}
	} else {
		tmp := filepath.Join(l.dir, fmt.Sprintf("prep-%016d.tmp", id))
		f, err := l.fs.Open(tmp, vfs.FlagWrite|vfs.FlagCreate|vfs.FlagTruncate|vfs.FlagDirect)
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", tmp, err)
		}
		err = f.Preallocate(0, size)
		for off := int64(0); err == nil && off < size; off += int64(len(zeroChunk)) {
			_, err = f.WriteAt(zeroChunk[:min(int64(len(zeroChunk)), size-off)], off)
		}
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("zero %s: %w", tmp, err)
		}
		if err := l.fs.Rename(tmp, path); err != nil {
			return nil, fmt.Errorf("rename %s to %s: %w", tmp, path, err)
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return nil, fmt.Errorf("sync %s: %w", l.dir, err)
	}
	f, err := l.fs.Open(path, vfs.FlagWrite|vfs.FlagDirect|vfs.FlagDSync)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	l.mu.Lock()
	l.noteMode(f)
	l.mu.Unlock()
	return &segment{id: id, path: path, capacity: size, file: f}, nil
}

// TruncateBefore removes whole segments all of whose LSNs are below lsn, once
// the caller has made that prefix durable elsewhere. It never removes the
// active segment, nor a segment whose successor's first frame is not yet
// durable (so the log's start is always a valid segment header). lsn must be
// at most DurableLSN()+1. Readers must not be positioned in removed segments.
func (l *Log) TruncateBefore(lsn LSN) error {
	l.truncMu.Lock()
	defer l.truncMu.Unlock()
	l.mu.Lock()
	if l.fatal != nil {
		err := l.fatal
		l.mu.Unlock()
		return err
	}
	durable := LSN(l.durable.Load())
	if lsn > durable+1 {
		l.mu.Unlock()
		return fmt.Errorf("wal: TruncateBefore(%d): only LSNs through %d are durable", lsn, durable)
	}
	var victims []*segment
	for i := 0; i+1 < len(l.segments); i++ {
		s, next := l.segments[i], l.segments[i+1]
		if next.firstLSN > lsn || next.firstLSN > durable || s == l.active || s.inflight > 0 {
			break
		}
		victims = append(victims, s)
	}
	room := l.opts.RecycledSegments - len(l.recycle)
	l.mu.Unlock()
	if len(victims) == 0 {
		return nil
	}
	if err := l.removeSegments(victims, room); err != nil {
		l.mu.Lock()
		l.failLocked(err)
		err = l.fatal
		l.mu.Unlock()
		return err
	}
	return nil
}

// removeSegments recycles (up to room) or deletes victims, the oldest
// segments of the log, and makes that durable.
func (l *Log) removeSegments(victims []*segment, room int) error {
	var kept []string
	for _, s := range victims {
		if room > 0 {
			dst := filepath.Join(l.dir, fmt.Sprintf("recycle-%016d.tmp", s.id))
			if err := l.fs.Rename(s.path, dst); err != nil {
				return fmt.Errorf("recycle %s: %w", s.path, err)
			}
			kept = append(kept, dst)
			room--
			continue
		}
		if err := l.fs.Remove(s.path); err != nil {
			return fmt.Errorf("remove %s: %w", s.path, err)
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("sync %s after truncation: %w", l.dir, err)
	}
	l.mu.Lock()
	l.segments = l.segments[len(victims):]
	l.recycle = append(l.recycle, kept...)
	l.prepCond.Signal()
	l.mu.Unlock()
	return nil
}

// Close flushes every accepted record, writes the close frame (so the next
// Open reports a clean shutdown), and releases the directory. After a
// failure it releases resources and returns the failure.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closing = true
	l.flushCond.Broadcast()
	for l.fatal == nil && !l.closeWritten {
		l.spaceCond.Wait()
	}
	for len(l.inflight) > 0 { // after a failure, let writes in progress end
		l.spaceCond.Wait()
	}
	err := l.fatal
	l.stopped = true
	l.flushCond.Broadcast()
	l.prepCond.Broadcast()
	l.mu.Unlock()
	l.wg.Wait()
	if err == nil {
		// A background preparation that was under way may have failed.
		l.mu.Lock()
		err = l.fatal
		l.mu.Unlock()
	}
	l.closeFiles()
	if cerr := l.lock.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("wal: unlock %s: %w", l.dir, cerr)
	}
	return err
}

func (l *Log) closeFiles() {
	for _, s := range append(l.segments, l.spares...) {
		if s.file != nil {
			_ = s.file.Close()
			s.file = nil
		}
	}
}
