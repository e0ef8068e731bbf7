package wal

import (
	"errors"
	"fmt"
	"io"

	"github.com/tapewire/tapewire/vfs"
)

// Read-ahead geometry of recovery scans and Readers. Measured on the
// development VM's virtual disk (reads of a 384 MiB file, O_DIRECT, medians
// of 5 interleaved rounds): 256 KiB × 8 in flight 1.71 GB/s, 256 KiB × 16
// 1.69, 1 MiB × 4 1.58, 4 MiB × 1 1.41, 8 MiB × 1 (the previous window)
// 1.07. Devices serve several moderate reads in parallel faster than one
// large read at a time; NVMe drives need such queue depths to reach their
// bandwidth too.
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
// at; every call first releases the slots behind the range, waits for the
// slots the range needs and keeps up to depth reads in flight
// ahead of it, continuing into the next file once setNext has named it, so
// the first read of the next segment overlaps the end of this one.
//
//	buf: | headroom | slot 0 | slot 1 | ... | slot N-1 |
//	the live slots first, first+1, ... (mod N) hold consecutive file ranges
//
// Workers (depth goroutines, started on the first read) perform
// the reads; a slot is handed to a worker through reqs and handed back
// through its done channel, so the consumer never touches a slot's bytes
// while a read is in flight. A readAhead belongs to one goroutine; close
// stops the workers. Replay path: no allocation after the first read
// (ranges longer than the headroom excepted).
type readAhead struct {
	slotBytes int
	depth     int
	head      int
	buf       []byte
	slots     []raSlot
	reqs      chan int // slot indexes to read; closed by close
	workers   bool

	first, count int // live slots, in file order: first, first+1, ... mod len(slots)
	inflight     int // live slots whose read the consumer has not yet received

	cur, next raFile
	reqNext   bool  // requests have moved on to next
	reqOff    int64 // offset of the next request in cur (or next when reqNext)

	big []byte // ranges the ring cannot return contiguously are read here
}

type raFile struct {
	f    vfs.File
	size int64
}

type raSlot struct {
	f     vfs.File
	off   int64
	want  int
	got   int
	err   error
	done  chan struct{}
	recvd bool
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
	for i := range w.slots {
		w.slots[i].done = make(chan struct{}, 1)
	}
	return w
}

func (w *readAhead) slotData(i int) []byte {
	s := w.head + i*w.slotBytes
	return w.buf[s : s+w.slots[i].want]
}

// work serves read requests until reqs is closed. It touches only the
// slot it was handed, until it hands it back.
func work(slots []raSlot, data func(int) []byte, reqs <-chan int) {
	for i := range reqs {
		s := &slots[i]
		n, err := s.f.ReadAt(data(i), s.off)
		if errors.Is(err, io.EOF) {
			err = nil // a short read at the end of the file
		}
		s.got, s.err = n, err
		s.done <- struct{}{}
	}
}

// slot returns the k-th live slot (0 = first) and its index.
func (w *readAhead) slot(k int) (*raSlot, int) {
	i := (w.first + k) % len(w.slots)
	return &w.slots[i], i
}

// wait receives the k-th live slot's read if it is still in flight.
func (w *readAhead) wait(k int) *raSlot {
	s, _ := w.slot(k)
	if !s.recvd {
		<-s.done
		s.recvd = true
		w.inflight--
	}
	return s
}

// poll receives every finished read without blocking.
func (w *readAhead) poll() {
	for k := range w.count {
		s, _ := w.slot(k)
		if !s.recvd {
			select {
			case <-s.done:
				s.recvd = true
				w.inflight--
			default:
			}
		}
	}
}

func (w *readAhead) releaseFirst() {
	w.wait(0)
	w.slots[w.first].f = nil
	w.first = (w.first + 1) % len(w.slots)
	w.count--
}

// dropAll waits for every read in flight and forgets every slot.
func (w *readAhead) dropAll() {
	for w.count > 0 {
		w.releaseFirst()
	}
}

// issue requests the next slot of the request file (moving on to next at
// the end of cur), waiting for the oldest read when depth reads are in
// flight. It returns false when the ring is full or nothing is left.
func (w *readAhead) issue() bool {
	if w.count == len(w.slots) {
		return false
	}
	file := w.cur
	if w.reqNext {
		file = w.next
	}
	if w.reqOff >= file.size {
		if w.reqNext || w.next.f == nil || w.next.size == 0 {
			return false
		}
		w.reqNext, w.reqOff, file = true, 0, w.next
	}
	for k := 0; w.inflight >= w.depth; k++ {
		w.wait(k)
	}
	if !w.workers {
		w.workers = true
		w.reqs = make(chan int, len(w.slots))
		for range w.depth {
			go work(w.slots, w.slotData, w.reqs)
		}
	}
	s, i := w.slot(w.count)
	s.f, s.off, s.got, s.err, s.recvd = file.f, w.reqOff, 0, nil, false
	s.want = int(min(int64(w.slotBytes), alignBlock(file.size-w.reqOff)))
	w.reqOff += int64(s.want)
	w.count++
	w.inflight++
	w.reqs <- i
	return true
}

// topUp keeps reads in flight ahead of the consumer.
func (w *readAhead) topUp() {
	w.poll()
	for w.inflight < w.depth && w.issue() {
	}
}

// reset makes f (of size bytes) the current file. If f is the file named by
// setNext, the reads already made of it are kept; otherwise everything is
// dropped. Either way no read of the previous file is in flight when reset
// returns, so the caller may close it.
func (w *readAhead) reset(f vfs.File, size int64) {
	if f != nil && f == w.next.f {
		for w.count > 0 {
			if s, _ := w.slot(0); s.f == f {
				break
			}
			w.releaseFirst()
		}
		if !w.reqNext {
			w.reqOff = 0
		}
		w.cur, w.next, w.reqNext = w.next, raFile{}, false
		return
	}
	w.dropAll()
	w.cur, w.next, w.reqNext, w.reqOff = raFile{f, size}, raFile{}, false, 0
}

// setNext names the file that follows the current one: once the current
// file is requested to its end, read-ahead continues with f from offset 0.
func (w *readAhead) setNext(f vfs.File, size int64) {
	w.next = raFile{f, size}
}

// drop forgets everything read (a live log may have written there since).
func (w *readAhead) drop() {
	w.dropAll()
	w.reqNext, w.reqOff = false, 0
}

// close waits for the reads in flight and stops the workers.
func (w *readAhead) close() {
	w.dropAll()
	if w.workers {
		close(w.reqs)
		w.workers = false
	}
	w.cur, w.next = raFile{}, raFile{}
}

// at returns up to n bytes of the current file at off (fewer at its end).
// The slice is valid until the next call.
func (w *readAhead) at(off int64, n int) ([]byte, error) {
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
		w.releaseFirst()
	}
	if s, _ := w.slot(0); w.count == 0 || s.f != w.cur.f || s.off > off {
		// Nothing read here yet (start, a jump, or a step back): start over.
		w.dropAll()
		w.reqNext, w.reqOff = false, off&^(BlockSize-1)
	}
	if n > w.head {
		return w.direct(off, n)
	}
	for !w.reqNext && w.reqOff < end && w.issue() {
	}
	// Wait for the slots holding [off, end).
	last := 0
	for k := 0; ; k++ {
		if k >= w.count {
			// Unreachable: the first slot holds off and the ring holds
			// the headroom's worth past any slot.
			panic(fmt.Sprintf("wal: read-ahead ring of %d slots cannot hold [%d, %d)", len(w.slots), off, end))
		}
		s := w.wait(k)
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
	w.topUp()
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
// longer than the headroom (frames of a non-default MaxGroupBytes).
func (w *readAhead) direct(off int64, n int) ([]byte, error) {
	start := off &^ (BlockSize - 1)
	need := int(alignBlock(off + int64(n) - start))
	if len(w.big) < need {
		w.big = vfs.AlignedBuffer(need)
	}
	got, err := w.cur.f.ReadAt(w.big[:need], start)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s at %d: %w", w.cur.f.Name(), start, err)
	}
	s := int(off - start)
	if s >= got {
		return nil, nil
	}
	return w.big[s:min(s+n, got)], nil
}
