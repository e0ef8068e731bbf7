package ring

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/tapewire/tapewire/shm"
)

// WaitKind selects how a waiter burns or yields its CPU while nothing is
// available.
type WaitKind uint8

const (
	// SpinPark spins with PAUSE, then yields, then parks on a futex (the
	// default). A parked subscriber costs the publisher one FUTEX_WAKE per
	// commit while it sleeps; the parked count lets the publisher skip the
	// system call when nobody sleeps.
	SpinPark WaitKind = iota
	// BusySpin spins with PAUSE forever: lowest latency, one CPU burnt.
	BusySpin
	// SpinYield spins, then calls sched_yield in a loop: never sleeps in the
	// kernel, but lets other threads run on the CPU.
	SpinYield
)

func (k WaitKind) String() string {
	switch k {
	case SpinPark:
		return "spin-park"
	case BusySpin:
		return "busy-spin"
	case SpinYield:
		return "spin-yield"
	}
	return fmt.Sprintf("wait(%d)", uint8(k))
}

// WaitStrategy is a wait kind with its bounds.
type WaitStrategy struct {
	Kind WaitKind
	// SpinIterations is how many PAUSE iterations come first (0: default
	// 2000; negative: none).
	SpinIterations int
	// YieldIterations is how many sched_yield calls follow before a
	// SpinPark waiter parks (0: default 50; negative: none, park at once).
	YieldIterations int
}

// Bounds of waiting.
const (
	defaultSpinIterations  = 2000
	defaultYieldIterations = 50
	// parkSlice bounds one futex sleep, so a parked waiter re-checks the
	// publisher's liveness and its own deadline at least this often.
	parkSlice = 20 * time.Millisecond
	// livenessEvery is how often a waiting subscriber checks whether the
	// publisher still lives (one fcntl per check).
	livenessEvery = 20 * time.Millisecond
	// clockEverySpins is how many spin iterations pass between clock reads.
	clockEverySpins = 256
)

func (w WaitStrategy) withDefaults() WaitStrategy {
	switch {
	case w.SpinIterations == 0:
		w.SpinIterations = defaultSpinIterations
	case w.SpinIterations < 0:
		w.SpinIterations = 0
	}
	switch {
	case w.YieldIterations == 0:
		w.YieldIterations = defaultYieldIterations
	case w.YieldIterations < 0:
		w.YieldIterations = 0
	}
	return w
}

// ready reports whether Poll would make progress (a frame, padding, a lap,
// or an eviction to report).
func (s *Subscriber) ready() bool {
	pos := s.pos + s.pending
	if uint32(atomic.LoadUint64(s.log.word(pos))) != 0 {
		return true
	}
	if !s.gating && s.lapped(pos) {
		return true
	}
	return s.slot >= 0 && atomic.LoadUint32(s.slotStateW) != s.active
}

// Wait blocks with the subscriber's wait strategy until a frame is available
// (nil), timeout passes (ErrTimeout itself, not wrapped, returned without
// allocating; timeout <= 0 waits without limit), or
// the publisher is found gone with nothing left to read (ErrPublisherGone:
// it closed, or died — then any claim it left is padded over first, so a
// new publisher can take over and the subscription goes on).
func (s *Subscriber) Wait(timeout time.Duration) error {
	if s.ready() {
		return nil
	}
	if s.slot >= 0 {
		storeRelease64(s.slotHeartbeatW, uint64(shm.Nanotime()))
	}
	start := shm.Nanotime()
	lastLiveness := start
	w := s.wait
	for i := 0; ; i++ {
		if s.ready() {
			return nil
		}
		spinning := w.Kind == BusySpin || i < w.SpinIterations
		switch {
		case spinning:
			shm.Pause()
			if i%clockEverySpins != 0 {
				continue
			}
		case w.Kind == SpinYield || i < w.SpinIterations+w.YieldIterations:
			shm.Yield()
		default:
			s.park(timeout, start)
		}
		now := shm.Nanotime()
		if timeout > 0 && time.Duration(now-start) >= timeout {
			return ErrTimeout // not wrapped: callers loop on it, so it must not allocate
		}
		if time.Duration(now-lastLiveness) >= livenessEvery {
			lastLiveness = now
			if s.slot >= 0 {
				storeRelease64(s.slotHeartbeatW, uint64(now))
			}
			if gone, state := s.log.publisherGone(); gone {
				if s.ready() {
					return nil
				}
				return fmt.Errorf("topic %s: %w (publisher %s)", s.log.topic, ErrPublisherGone, state)
			}
		}
	}
}

// park sleeps on the data futex for at most one slice.
func (s *Subscriber) park(timeout time.Duration, start int64) {
	slice := parkSlice
	if timeout > 0 {
		if left := timeout - time.Duration(shm.Nanotime()-start); left < slice {
			slice = max(left, time.Microsecond)
		}
	}
	v := atomic.LoadUint32(s.futexW)
	atomic.AddUint32(s.parkedW, 1)
	if !s.ready() {
		_, _ = shm.FutexWait(s.futexW, v, slice)
	}
	atomic.AddUint32(s.parkedW, ^uint32(0))
}

// publisherGone reports whether no process holds the writer lock. If the
// record still says live, the publisher died: the first subscriber to notice
// takes the writer lock, pads over any claim it left and marks it dead.
func (l *Log) publisherGone() (bool, PublisherState) {
	held, err := l.seg.LockHeld(shm.LockWriter)
	if err != nil || held {
		return false, PublisherLive
	}
	state := PublisherState(atomic.LoadUint32(l.u32(ctlPubState)))
	if state == PublisherLive {
		if l.seg.TryLock(shm.LockWriter) == nil {
			// Re-check under the lock: a new publisher may have attached
			// and left between our check and the lock.
			if PublisherState(atomic.LoadUint32(l.u32(ctlPubState))) == PublisherLive {
				l.repairLocked()
			}
			_ = l.seg.Unlock(shm.LockWriter)
		}
		state = PublisherState(atomic.LoadUint32(l.u32(ctlPubState)))
	}
	return true, state
}

// AdvanceDurable raises the durable position to pos (never lowers it) and
// wakes producers waiting for it. pos must not exceed the published
// position. Called by the appliance's storage tenant after a WAL commit.
func (l *Log) AdvanceDurable(pos uint64) error { return l.advance(ctlDurable, "durable", pos) }

// AdvanceReplicated raises the replicated position to pos (never lowers it)
// and wakes producers waiting for it.
func (l *Log) AdvanceReplicated(pos uint64) error {
	return l.advance(ctlReplicated, "replicated", pos)
}

func (l *Log) advance(off int, name string, pos uint64) error {
	if published := l.Published(); pos > published {
		return fmt.Errorf("topic %s: advance %s to %d: %w (published %d)", l.topic, name, pos, ErrPositionFuture, published)
	}
	w := l.u64(off)
	for {
		cur := atomic.LoadUint64(w)
		if pos <= cur {
			return nil
		}
		if atomic.CompareAndSwapUint64(w, cur, pos) {
			break
		}
	}
	if atomic.LoadUint32(l.u32(ctlPositionParked)) != 0 {
		atomic.AddUint32(l.u32(ctlPositionFutex), 1)
		_, _ = shm.FutexWake(l.u32(ctlPositionFutex), math.MaxInt32)
	}
	return nil
}

// WaitDurable waits until the durable position reaches pos (the end position
// of the producer's frame: Claim.Position plus its aligned size, or
// Publisher.Position after the commit). It spins briefly, then parks; after
// timeout (<= 0: no limit) it returns ErrTimeout itself (not wrapped, so
// errors.Is and == both match) without allocating, so a producer can wait in
// short slices in a loop.
func (l *Log) WaitDurable(pos uint64, timeout time.Duration) error {
	return l.waitPosition(ctlDurable, pos, timeout)
}

// WaitReplicated waits until the replicated position reaches pos; timeouts
// as WaitDurable.
func (l *Log) WaitReplicated(pos uint64, timeout time.Duration) error {
	return l.waitPosition(ctlReplicated, pos, timeout)
}

func (l *Log) waitPosition(off int, pos uint64, timeout time.Duration) error {
	w := l.u64(off)
	futex, parked := l.u32(ctlPositionFutex), l.u32(ctlPositionParked)
	var start int64
	for i := 0; ; i++ {
		if atomic.LoadUint64(w) >= pos {
			return nil
		}
		if i < defaultSpinIterations {
			shm.Pause()
			continue
		}
		if start == 0 {
			start = shm.Nanotime()
		}
		slice := parkSlice
		if timeout > 0 {
			left := timeout - time.Duration(shm.Nanotime()-start)
			if left <= 0 {
				return ErrTimeout // not wrapped: producers loop on it, so it must not allocate
			}
			slice = min(slice, left)
		}
		v := atomic.LoadUint32(futex)
		atomic.AddUint32(parked, 1)
		if atomic.LoadUint64(w) < pos {
			_, _ = shm.FutexWait(futex, v, slice)
		}
		atomic.AddUint32(parked, ^uint32(0))
	}
}
