package wal

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/tapewire/tapewire/vfs"
)

// Read-ahead geometry of recovery scans and Readers. Measured on the
// development VM's virtual disk (reads of a 384 MiB file, O_DIRECT, medians
// of 5 interleaved rounds): 256 KiB × 8 in flight 1.71 GB/s, 256 KiB × 16
// 1.69, 1 MiB × 4 1.58, 4 MiB × 1 1.41, 8 MiB × 1 (the previous window)
// 1.07. Devices serve several moderate reads in parallel faster than one
// large read at a time; NVMe drives need such queue depths to reach their
// bandwidth too. Through the WAL (a 1 GiB log, 3 interleaved rounds):
// Reader 1.69 GB/s and recovery scan 1.72 with 256 KiB × 8, 1.68/1.68
// with 512 KiB × 8, 1.58/1.64 with 1 MiB × 4.
var readAheadGeometry = raGeometry{
	slotBytes: 256 << 10,
	slots:     16, // a ring of 4 MiB
	depth:     8,  // reads in flight at most
	// The headroom covers frames up to the default MaxGroupBytes: a range
	// that wraps around the ring is made contiguous by copying its first
	// part into the headroom in front of slot 0. A longer range is read on
	// its own (readAhead.direct).
	headroomBytes: DefaultMaxGroupBytes,
}

// raGeometry sizes a readAhead. Tests shrink it so that small logs cross
// slots, wrap around the ring and take the direct path.
type raGeometry struct {
	slotBytes, slots, depth, headroomBytes int
}

// readAhead reads a sequence of files (the segments of a log, in order)
// front to back with several O_DIRECT reads in flight, for recovery scans
// and Readers. The consumer asks for byte ranges of the current file with
// at, which releases the slots behind the range and waits for the slots
// the range needs. Meanwhile depth worker goroutines keep reading ahead:
// each claims the next free slot, reads the next range of the file into
// it, and goes on to the next, continuing into the file named by setNext
// once the current one is claimed to its end (so the first reads of the
// next segment overlap the end of this one). The consumer never hands a
// read to a worker or waits for one it does not need: the device's queue
// stays full however the consumer is scheduled, as long as the ring has
// room.
//
//	buf: | headroom | slot 0 | slot 1 | ... | slot N-1 |
//	the live slots first, first+1, ... (mod N) hold consecutive file ranges
//
// Ownership: a live slot's bytes belong to its worker until the slot is
// done, then to the consumer until it releases the slot; the ring's
// bookkeeping is under mu. A readAhead is used by one goroutine; close
// stops the workers (started on the first read). Replay path: no
// allocation after the first read (ranges longer than the headroom
// excepted).
type readAhead struct {
	slotBytes int
	depth     int
	head      int
	buf       []byte
	slots     []raSlot

	mu       sync.Mutex
	work     sync.Cond // workers wait for a slot to claim
	settled  sync.Cond // drop and close wait for reads in flight to end
	started  bool      // workers running
	stopped  bool      // close: workers exit
	paused   bool      // drop: claim nothing
	first    int       // live slots, in file order: first, first+1, ... mod len(slots)
	count    int
	reading  int // live slots being read
	cur      raFile
	next     raFile
	claimNxt bool  // claims have moved on to next
	claimOff int64 // offset of the next claim in cur (or next when claimNxt)

	big []byte // consumer only: ranges the ring cannot return contiguously
}

type raFile struct {
	f    vfs.File
	size int64
}

type raSlot struct {
	f       vfs.File
	off     int64
	want    int
	got     int
	err     error
	done    bool
	waiting bool          // the consumer waits on ready
	ready   chan struct{} // capacity 1
}

func newReadAhead() *readAhead {
	g := readAheadGeometry
	// A range of up to headroomBytes starts in the first live slot and
	// must end within the ring; O_DIRECT needs aligned slots.
	if g.slotBytes%BlockSize != 0 || g.headroomBytes%BlockSize != 0 || g.depth < 1 || g.depth > g.slots ||
		g.slots < 1+(g.headroomBytes+g.slotBytes-1)/g.slotBytes {
		panic(fmt.Sprintf("wal: read-ahead geometry %+v", g))
	}
	w := &readAhead{
		slotBytes: g.slotBytes,
		depth:     g.depth,
		head:      g.headroomBytes,
		buf:       vfs.AlignedBuffer(g.headroomBytes + g.slots*g.slotBytes),
		slots:     make([]raSlot, g.slots),
	}
	w.work.L, w.settled.L = &w.mu, &w.mu
	for i := range w.slots {
		w.slots[i].ready = make(chan struct{}, 1)
	}
	return w
}

// slot returns the k-th live slot (0 = first) and its index.
func (w *readAhead) slot(k int) (*raSlot, int) {
	i := (w.first + k) % len(w.slots)
	return &w.slots[i], i
}

// claimLocked takes the next free slot for the next range to read, or
// returns -1: ring full, paused, or nothing left to read.
func (w *readAhead) claimLocked() int {
	if w.paused || w.count == len(w.slots) {
		return -1
	}
	file := w.cur
	if w.claimNxt {
		file = w.next
	}
	if w.claimOff >= file.size {
		if w.claimNxt || w.next.f == nil || w.next.size == 0 {
			return -1
		}
		w.claimNxt, w.claimOff, file = true, 0, w.next
	}
	s, i := w.slot(w.count)
	// s.waiting stays: the consumer may already wait for this slot.
	s.f, s.off, s.got, s.err, s.done = file.f, w.claimOff, 0, nil, false
	s.want = int(min(int64(w.slotBytes), alignBlock(file.size-w.claimOff)))
	w.claimOff += int64(s.want)
	w.count++
	w.reading++
	return i
}

// worker reads ahead until close.
func (w *readAhead) worker() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if w.stopped {
			return
		}
		i := w.claimLocked()
		if i < 0 {
			w.work.Wait()
			continue
		}
		s := &w.slots[i]
		f, off, start := s.f, s.off, w.head+i*w.slotBytes
		w.mu.Unlock()
		n, err := f.ReadAt(w.buf[start:start+s.want], off)
		if errors.Is(err, io.EOF) {
			err = nil // a short read at the end of the file
		}
		w.mu.Lock()
		s.got, s.err, s.done = n, err, true
		w.reading--
		if s.waiting {
			s.waiting = false
			s.ready <- struct{}{}
		}
		if w.reading == 0 {
			w.settled.Broadcast()
		}
	}
}

// waitLocked waits until the k-th live slot has been read. The slot may
// not be claimed yet (k == count, or beyond while workers are busy):
// slots are claimed in ring order, so the one a worker claims at that
// index is the range the consumer expects there.
func (w *readAhead) waitLocked(k int) *raSlot {
	s, _ := w.slot(k)
	if k >= w.count || !s.done {
		s.waiting = true
		w.mu.Unlock()
		<-s.ready
		w.mu.Lock()
	}
	return s
}

func (w *readAhead) releaseFirstLocked() {
	s := w.waitLocked(0)
	s.f, s.done = nil, false
	w.first = (w.first + 1) % len(w.slots)
	w.count--
	w.work.Signal() // room for one more read
}

// clearLocked stops claims, waits for the reads in flight and forgets
// every slot. Claims stay paused until restartLocked.
func (w *readAhead) clearLocked() {
	w.paused = true
	for w.reading > 0 {
		w.settled.Wait()
	}
	w.first, w.count = 0, 0
	for i := range w.slots {
		s := &w.slots[i]
		s.f, s.done, s.waiting = nil, false, false
	}
}

// restartLocked forgets every slot and makes the workers read cur from
// off on.
func (w *readAhead) restartLocked(off int64) {
	w.clearLocked()
	w.paused, w.claimNxt, w.claimOff = false, false, off
	if !w.started && !w.stopped && w.cur.f != nil {
		w.started = true
		for range w.depth {
			go w.worker()
		}
	}
	w.work.Broadcast()
}

// reset makes f (of size bytes) the current file. If f is the file named by
// setNext, what was read of it is kept; otherwise everything is dropped.
// Either way no read of the previous file is in flight when reset returns,
// so the caller may close it.
func (w *readAhead) reset(f vfs.File, size int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if f != nil && f == w.next.f {
		for w.count > 0 {
			if s, _ := w.slot(0); s.f == f {
				break
			}
			w.releaseFirstLocked()
		}
		if !w.claimNxt {
			w.claimOff = 0
		}
		w.cur, w.next, w.claimNxt = w.next, raFile{}, false
		return
	}
	w.clearLocked() // the next at says where to read
	w.cur, w.next = raFile{f, size}, raFile{}
}

// setNext names the file that follows the current one: once the current
// file is claimed to its end, read-ahead continues with f from offset 0.
func (w *readAhead) setNext(f vfs.File, size int64) {
	if f == w.cur.f {
		panic("wal: read-ahead: the next file is the current one")
	}
	w.mu.Lock()
	w.next = raFile{f, size}
	w.work.Broadcast()
	w.mu.Unlock()
}

// drop forgets everything read (a live log may have written there since).
func (w *readAhead) drop() {
	w.mu.Lock()
	w.clearLocked() // the next at says where to read
	w.mu.Unlock()
}

// close waits for the reads in flight and stops the workers.
func (w *readAhead) close() {
	w.mu.Lock()
	w.stopped = true
	w.work.Broadcast()
	w.clearLocked()
	w.cur, w.next = raFile{}, raFile{}
	w.mu.Unlock()
}

// at returns up to n bytes of the current file at off (fewer at its end).
// The slice is valid until the next call.
func (w *readAhead) at(off int64, n int) ([]byte, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	size := w.cur.size
	if w.cur.f == nil || off >= size || n <= 0 {
		return nil, nil
	}
	n = int(min(int64(n), size-off))
	end := off + int64(n)
	// Slots behind off (or of an earlier file) are done with.
	for w.count > 0 {
		s, _ := w.slot(0)
		if s.f == w.cur.f && s.off+int64(s.want) > off {
			break
		}
		w.releaseFirstLocked()
	}
	if s, _ := w.slot(0); w.paused || w.count == 0 || s.f != w.cur.f || s.off > off {
		// Nothing read here (the start, a jump, a step back, a drop):
		// start over at off. Claims resume once the slot at off is free,
		// so a worker reads it next.
		w.restartLocked(off &^ (BlockSize - 1))
	}
	if n > w.head {
		return w.direct(off, n)
	}
	// Wait for the slots holding [off, end); workers claim them in order.
	last := 0
	for k := 0; ; k++ {
		if k >= len(w.slots) {
			// Unreachable: the first slot holds off and the ring holds
			// the headroom's worth past any slot.
			var live []string
			for j := range w.count {
				sj, _ := w.slot(j)
				live = append(live, fmt.Sprintf("%s@%d+%d done=%v", sj.f.Name(), sj.off, sj.want, sj.done))
			}
			panic(fmt.Sprintf("wal: read-ahead ring of %d slots cannot hold [%d, %d) of %s (%d bytes); live %v; claims at %d (next file %v), paused %v", len(w.slots), off, end, w.cur.f.Name(), w.cur.size, live, w.claimOff, w.claimNxt, w.paused))
		}
		s := w.waitLocked(k)
		if s.err != nil {
			return nil, fmt.Errorf("read %s at %d: %w", s.f.Name(), s.off, s.err)
		}
		if s.got < s.want && s.off+int64(s.got) < end {
			end = s.off + int64(s.got) // the file shrank since its size was taken
		}
		last = k
		if s.off+int64(s.want) >= end || s.got < s.want {
			break
		}
	}
	if end <= off {
		return nil, nil
	}
	n = int(end - off)
	s0, p0 := w.slot(0)
	_, pl := w.slot(last)
	start := w.head + p0*w.slotBytes + int(off-s0.off)
	if p0 <= pl {
		return w.buf[start : start+n], nil
	}
	// The range wraps from the last slot to slot 0: copy its first part
	// into the headroom, right in front of slot 0.
	ringEnd := w.head + len(w.slots)*w.slotBytes
	tail := ringEnd - start
	copy(w.buf[w.head-tail:w.head], w.buf[start:ringEnd])
	return w.buf[w.head-tail : w.head-tail+n], nil
}

// direct reads [off, off+n) of the current file on its own, for ranges
// longer than the headroom (frames of a non-default MaxGroupBytes). Called
// with mu held; the read itself runs without it.
func (w *readAhead) direct(off int64, n int) ([]byte, error) {
	start := off &^ (BlockSize - 1)
	need := int(alignBlock(off + int64(n) - start))
	if len(w.big) < need {
		w.big = vfs.AlignedBuffer(need)
	}
	f := w.cur.f
	w.mu.Unlock()
	got, err := f.ReadAt(w.big[:need], start)
	w.mu.Lock()
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s at %d: %w", f.Name(), start, err)
	}
	s := int(off - start)
	if s >= got {
		return nil, nil
	}
	return w.big[s:min(s+n, got)], nil
}
