package appliance

import (
	"errors"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tapewire/tapewire/shm"
)

// parker puts an idle committer to sleep until any of its topics has a new
// frame, the WAL made something durable, an appliance event arrived or a
// stop was asked — whichever comes first — with one futex_waitv(2) over
// every topic's data futex and the committer's own wake word.
//
// The protocol is the ring's own (ring/doc.go, "Commit protocol"): read the
// futex word, raise the parked count, re-check for a committed frame at the
// reader's position, sleep only if there is none. A publisher stores the
// frame's commit word (sequentially consistent) and then reads the parked
// count, so either it sees the count and wakes us, or we see the frame.
// The sleep is bounded (storage.park_timeout_ms) only so the loop re-checks
// its subscriptions' heartbeats; wake-ups never wait for the timeout.
//
// ring has no wait-on-many-topics call; futex_waitv over the documented
// words is what a C client would do. A ring.WaitAny(subscribers, timeout)
// would replace this file. Kernels before 5.16 lack futex_waitv: the parker
// then sleeps on the wake word in slices of at most 1 ms.
type parker struct {
	s       *storage
	waiters []futexWaitv
	vals    []uint32
	noWaitv bool
}

// durableLagParkTimeout bounds a park while a durable advance waits for a
// publisher's published store (advanceDurable).
const durableLagParkTimeout = time.Millisecond

// futexWaitv is struct futex_waitv of linux/futex.h.
type futexWaitv struct {
	val      uint64
	uaddr    uint64
	flags    uint32
	reserved uint32
}

// futex2SizeU32 is FUTEX2_SIZE_U32: the word is 32 bits, shared (not
// FUTEX2_PRIVATE) since the ring words live in shared mappings and the
// wake word is woken by shm.FutexWake, which uses shared futexes.
const futex2SizeU32 = 0x02

func newParker(s *storage) *parker {
	return &parker{
		s:       s,
		waiters: make([]futexWaitv, 0, len(s.topics)+1),
		vals:    make([]uint32, len(s.topics)),
	}
}

// park sleeps until woken or for at most timeout. It does not allocate:
// the vectors are preallocated.
func (p *parker) park(timeout time.Duration) {
	s := p.s
	wakeVal := atomic.LoadUint32(&s.wakeWord)
	s.parkedState.Store(1)
	p.waiters = p.waiters[:0]
	p.waiters = append(p.waiters, futexWaitv{
		val: uint64(wakeVal), uaddr: uint64(uintptr(unsafe.Pointer(&s.wakeWord))), flags: futex2SizeU32,
	})
	for i, t := range s.topics {
		if t.failure() != nil {
			continue
		}
		p.vals[i] = atomic.LoadUint32(t.park.futex)
		atomic.AddUint32(t.park.parked, 1)
	}
	if !p.ready() {
		for i, t := range s.topics {
			if t.failure() == nil {
				p.waiters = append(p.waiters, futexWaitv{
					val: uint64(p.vals[i]), uaddr: uint64(uintptr(unsafe.Pointer(t.park.futex))), flags: futex2SizeU32,
				})
			}
		}
		if s.durableLag > 0 {
			// A durable advance waits for a publisher's published store,
			// which wakes the data futex only if it sees our parked count:
			// on x86 its plain store of the published word may pass its
			// read of that count, so re-check soon instead of trusting it.
			timeout = min(timeout, durableLagParkTimeout)
		}
		p.sleep(timeout)
	}
	for _, t := range s.topics {
		if t.failure() == nil {
			atomic.AddUint32(t.park.parked, ^uint32(0))
		}
	}
	s.parkedState.Store(0)
}

// ready re-checks everything that ends a park, after the parked counts are
// raised.
func (p *parker) ready() bool {
	s := p.s
	if s.stopping.Load() || s.Err() != nil || len(s.adminCh) > 0 {
		return true
	}
	if len(s.pending) > 0 && s.pending[0].lastLSN <= s.wal.DurableLSN() {
		return true
	}
	if s.cur == nil && len(s.free) == 0 {
		// Every batch is busy: only durability (checked above) or the
		// applier returning one can help; the wake word covers the first,
		// a short sleep the second.
		return false
	}
	for _, t := range s.topics {
		if t.failure() != nil {
			continue
		}
		if t.park.committed(t.sub.Position()) {
			return true
		}
		if t.durableLagged && t.lg.Published() > t.durableAt {
			return true // the published store a durable advance waited for landed
		}
	}
	return false
}

func (p *parker) sleep(timeout time.Duration) {
	if !p.noWaitv {
		var now unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &now)
		deadline := unix.NsecToTimespec(unix.TimespecToNsec(now) + int64(timeout))
		_, _, errno := unix.Syscall6(unix.SYS_FUTEX_WAITV,
			uintptr(unsafe.Pointer(&p.waiters[0])), uintptr(len(p.waiters)), 0,
			uintptr(unsafe.Pointer(&deadline)), uintptr(unix.CLOCK_MONOTONIC), 0)
		if !errors.Is(errno, unix.ENOSYS) {
			return // woken, timed out, or a word changed before we slept (EAGAIN)
		}
		p.noWaitv = true
		p.s.logf("storage: futex_waitv unavailable (kernel before 5.16): the idle committer polls its topics every 1 ms")
	}
	_, _ = shm.FutexWait(&p.s.wakeWord, uint32(p.waiters[0].val), min(timeout, time.Millisecond))
}
