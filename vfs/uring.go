package vfs

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// AsyncWriterAt is implemented by Files that can start a write without a
// thread blocking until it ends (the OS file system's O_DIRECT|O_DSYNC
// files, through io_uring, when OS.AsyncWrites is set and the kernel allows
// it). A write started this way has the same durability as WriteAt on the
// same file: with FlagDSync, the data is durable when done is called with
// a nil error.
type AsyncWriterAt interface {
	// WriteAtAsync starts writing p at off and returns; done.WriteDone is
	// called exactly once when the write ends, from the file system's
	// completion goroutine — or, if the write could not be started, with
	// the error before WriteAtAsync returns, so a caller handles every
	// outcome in one place. p must stay untouched until then. A short
	// write is reported as an error. The same alignment rules as WriteAt
	// apply.
	WriteAtAsync(p []byte, off int64, done WriteCompletion)
}

// WriteCompletion receives the outcome of an asynchronous write. WriteDone
// runs on the completion goroutine of the file system: it must not block
// for long (every other completion waits behind it) but may start more
// writes.
type WriteCompletion interface {
	WriteDone(err error)
}

// ErrAsyncUnavailable is the error AsyncWrites setup reports when io_uring
// cannot be used (kernel without it, io_uring_disabled, seccomp).
var ErrAsyncUnavailable = errors.New("vfs: asynchronous writes (io_uring) unavailable")

// io_uring ABI (include/uapi/linux/io_uring.h), the part used here.
const (
	uringOffSQRing     = 0
	uringOffCQRing     = 0x8000000
	uringOffSQEs       = 0x10000000
	uringOpWrite       = 23
	uringEnterGetEvent = 1
	uringRegEventFD    = 4
	uringFeatSingleMap = 1
	sqeBytes           = 64
	cqeBytes           = 16
)

type uringSQOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type uringCQOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  uringSQOffsets
	cqOff                                                                  uringCQOffsets
}

// uringSQE is one submission queue entry (64 bytes).
type uringSQE struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	rwFlags     uint32
	userData    uint64
	bufIndex    uint16
	personality uint16
	spliceFDIn  int32
	addr3       uint64
	pad         uint64
}

// uringCQE is one completion queue entry (16 bytes).
type uringCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

// asyncWriteSlots bounds the writes one OS file system has in flight
// through io_uring; a write beyond waits for a slot (the WAL keeps at most
// 16 in flight per log).
const asyncWriteSlots = 128

// uring is one io_uring instance shared by the files of an OS: writes are
// submitted from the caller's goroutine with one non-blocking
// io_uring_enter, completions are counted on an eventfd that the Go
// netpoller watches, and one goroutine drains the completion queue and
// calls each write's WriteDone. No thread blocks per write.
type uring struct {
	fd       int
	sqRing   []byte
	cqRing   []byte
	sqes     []byte
	sqTail   *uint32
	sqHead   *uint32
	sqMask   uint32
	sqArray  unsafe.Pointer
	cqHead   *uint32
	cqTail   *uint32
	cqMask   uint32
	cqesBase unsafe.Pointer
	event    *os.File // eventfd, non-blocking, read through the netpoller

	mu       sync.Mutex // submission: SQ tail and the slot table
	slotFree sync.Cond
	free     []uint32 // free slot numbers (user_data of an SQE)
	slots    [asyncWriteSlots]asyncWrite
}

// asyncWrite is one write in flight: whom to tell and how long it must be.
type asyncWrite struct {
	done WriteCompletion
	want int
	buf  []byte // kept reachable until the kernel is done with it
}

// newURing sets up an io_uring with eventfd notification and starts its
// completion goroutine.
func newURing() (*uring, error) {
	var p uringParams
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, asyncWriteSlots, uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("%w: io_uring_setup: %v", ErrAsyncUnavailable, errno)
	}
	r := &uring{fd: int(fd)}
	fail := func(what string, err error) (*uring, error) {
		r.unmap()
		unix.Close(r.fd)
		return nil, fmt.Errorf("%w: %s: %v", ErrAsyncUnavailable, what, err)
	}
	if p.features&uringFeatSingleMap == 0 {
		return fail("features", errors.New("kernel lacks IORING_FEAT_SINGLE_MMAP (before 5.4)"))
	}
	sqSize := int(p.sqOff.array + p.sqEntries*4)
	cqSize := int(p.cqOff.cqes + p.cqEntries*cqeBytes)
	ringSize := max(sqSize, cqSize)
	var err error
	r.sqRing, err = unix.Mmap(r.fd, uringOffSQRing, ringSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fail("mmap rings", err)
	}
	r.cqRing = r.sqRing
	r.sqes, err = unix.Mmap(r.fd, uringOffSQEs, int(p.sqEntries)*sqeBytes, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fail("mmap SQEs", err)
	}
	at := func(b []byte, off uint32) unsafe.Pointer { return unsafe.Pointer(&b[off]) }
	r.sqHead = (*uint32)(at(r.sqRing, p.sqOff.head))
	r.sqTail = (*uint32)(at(r.sqRing, p.sqOff.tail))
	r.sqMask = *(*uint32)(at(r.sqRing, p.sqOff.ringMask))
	r.sqArray = at(r.sqRing, p.sqOff.array)
	r.cqHead = (*uint32)(at(r.cqRing, p.cqOff.head))
	r.cqTail = (*uint32)(at(r.cqRing, p.cqOff.tail))
	r.cqMask = *(*uint32)(at(r.cqRing, p.cqOff.ringMask))
	r.cqesBase = at(r.cqRing, p.cqOff.cqes)
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return fail("eventfd", err)
	}
	efd32 := int32(efd)
	if _, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), uringRegEventFD, uintptr(unsafe.Pointer(&efd32)), 1, 0, 0); errno != 0 {
		unix.Close(efd)
		return fail("register eventfd", errno)
	}
	r.event = os.NewFile(uintptr(efd), "io_uring-eventfd") // non-blocking: polled by the runtime
	r.slotFree.L = &r.mu
	r.free = make([]uint32, asyncWriteSlots)
	for i := range r.free {
		r.free[i] = uint32(asyncWriteSlots - 1 - i)
	}
	go r.reap()
	return r, nil
}

func (r *uring) unmap() {
	if r.sqes != nil {
		_ = unix.Munmap(r.sqes)
	}
	if r.sqRing != nil {
		_ = unix.Munmap(r.sqRing)
	}
}

// write submits one write of p at off to fd. Commit path: no allocation.
func (r *uring) write(fd int, p []byte, off int64, done WriteCompletion) {
	r.mu.Lock()
	for len(r.free) == 0 {
		r.slotFree.Wait()
	}
	slot := r.free[len(r.free)-1]
	r.free = r.free[:len(r.free)-1]
	r.slots[slot] = asyncWrite{done: done, want: len(p), buf: p}
	tail := atomic.LoadUint32(r.sqTail)
	idx := tail & r.sqMask
	sqe := (*uringSQE)(unsafe.Add(unsafe.Pointer(&r.sqes[0]), uintptr(idx)*sqeBytes))
	*sqe = uringSQE{opcode: uringOpWrite, fd: int32(fd), off: uint64(off), len: uint32(len(p)), userData: uint64(slot)}
	if len(p) > 0 {
		sqe.addr = uint64(uintptr(unsafe.Pointer(&p[0])))
	}
	*(*uint32)(unsafe.Add(r.sqArray, uintptr(idx)*4)) = idx
	atomic.StoreUint32(r.sqTail, tail+1) // release: the SQE is visible before the tail
	// Submitted under the lock, so the entry the kernel consumes is this
	// one and, if it consumes none, the tail can be taken back.
	var err error
	for {
		n, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), 1, 0, 0, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno == 0 && n == 1 {
			r.mu.Unlock()
			return
		}
		err = fmt.Errorf("io_uring_enter: %v (%d of 1 entries submitted)", errno, n)
		break
	}
	atomic.StoreUint32(r.sqTail, tail)
	r.slots[slot] = asyncWrite{}
	r.free = append(r.free, slot)
	r.mu.Unlock()
	done.WriteDone(err)
}

// reap drains completions as the eventfd reports them and tells each
// write's owner. It runs for the life of the process (the OS value it
// belongs to is long-lived).
func (r *uring) reap() {
	var count [8]byte
	for {
		if _, err := r.event.Read(count[:]); err != nil {
			panic(fmt.Sprintf("vfs: io_uring eventfd read: %v", err))
		}
		for {
			head := atomic.LoadUint32(r.cqHead)
			tail := atomic.LoadUint32(r.cqTail) // acquire: CQEs up to tail are written
			if head == tail {
				break
			}
			for ; head != tail; head++ {
				c := *(*uringCQE)(unsafe.Add(r.cqesBase, uintptr(head&r.cqMask)*cqeBytes))
				atomic.StoreUint32(r.cqHead, head+1)
				r.complete(c)
			}
		}
	}
}

func (r *uring) complete(c uringCQE) {
	r.mu.Lock()
	w := r.slots[c.userData]
	r.slots[c.userData] = asyncWrite{}
	r.free = append(r.free, uint32(c.userData))
	r.slotFree.Signal()
	r.mu.Unlock()
	var err error
	switch {
	case c.res < 0:
		err = unix.Errno(-c.res)
	case int(c.res) != w.want:
		err = fmt.Errorf("short write: %d of %d bytes", c.res, w.want)
	}
	w.done.WriteDone(err)
}
