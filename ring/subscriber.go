package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/shm"
)

// SubscriberOptions choose where a subscriber starts and how it waits. The
// zero value starts at the newest published position with the default
// spin-then-park wait.
type SubscriberOptions struct {
	// Resume starts at From instead of the newest published position. From
	// must be a frame boundary (a position a subscriber or claim returned)
	// still held by the ring.
	Resume bool
	From   uint64
	// Observer takes no subscriber slot and never gates a reliable
	// publisher: it reads with lap detection and copies, like a lossy
	// subscriber (tools such as shmctl tail use it).
	Observer bool
	// Wait is the strategy of Wait (default: SpinPark).
	Wait WaitStrategy
	// ManualRelease (reliable topics, not observers) decouples reading from
	// releasing: Poll and Next read ahead zero-copy up to the published
	// position, but the registered position that holds the publisher back
	// only advances when the caller calls Release. Frames read and not yet
	// released stay intact in the ring (the publisher waits, bounded by its
	// BackPressureTimeout, rather than overwrite them), so views into them
	// remain valid until released: a storage tenant can read a batch, hand
	// it to its write-ahead log and release it once durable, without a copy.
	ManualRelease bool
}

// Handler receives one frame (header included) and its position. In a
// reliable subscription the slice is a view into the shared mapping, valid
// until the handler returns; in a lossy or observer subscription it is a
// validated copy, valid until the next frame is delivered.
type Handler func(frame []byte, position uint64)

// Subscriber reads a log topic. Reliable (gating) subscribers get zero-copy
// views and hold the publisher back; lossy subscribers and observers copy
// each frame out and detect when the publisher laps them.
//
// Concurrency: a Subscriber is used by one goroutine at a time.
type Subscriber struct {
	log    *Log
	gating bool
	slot   int // -1 for observers
	active uint32

	pos        uint64
	stored     uint64 // position last stored in the slot
	expectSeq  uint64
	haveSeq    bool
	frames     uint64
	lossFrames uint64
	lossBytes  uint64
	laps       uint64
	polls      uint64
	sinceStore int
	pending    uint64 // size of the frame Next returned last, consumed at the next call
	touched    byte   // sink of touchAhead's loads
	scratch    []byte
	wait       WaitStrategy
	closed     bool
	manual     bool   // ManualRelease: only Release stores the slot position
	released   uint64 // ManualRelease: the position last released

	tailW, publishedW               *uint64
	parkedW, futexW                 *uint32
	progressParkedW, progressFutexW *uint32
	slotStateW                      *uint32
	slotPosW, slotHeartbeatW        *uint64
}

// FrameStatus results of reading one position.
type readStatus uint8

const (
	readNone readStatus = iota
	readFrame
	readPadding
	readLapped
)

// maxResyncsPerPoll bounds how often one Poll chases a publisher that keeps
// lapping it before returning to the caller.
const maxResyncsPerPoll = 16

// maxPaddingsPerPoll bounds the padding frames one Poll or Next skips
// before returning: a sane ring has at most a wrap padding and the two
// chunks of a repair in a row, so this only stops a hostile ring from
// spinning a reader forever.
const maxPaddingsPerPoll = 64

// storePositionEvery is how many frames Next hands out before it stores the
// subscriber's position (it also stores whenever it runs out of frames).
const storePositionEvery = 64

// heartbeatEveryPolls is how many polls pass between heartbeats.
const heartbeatEveryPolls = 1024

// OpenSubscriber subscribes to a log topic. In a reliable topic a
// non-observer subscriber registers in the subscriber table and gates the
// publisher from its start position on.
func OpenSubscriber(o shm.Options, topic string, opts SubscriberOptions) (*Subscriber, error) {
	lg, err := OpenLog(o, topic)
	if err != nil {
		return nil, err
	}
	s, err := newSubscriber(lg, opts)
	if err != nil {
		lg.Close()
		return nil, err
	}
	return s, nil
}

func newSubscriber(lg *Log, opts SubscriberOptions) (*Subscriber, error) {
	s := &Subscriber{
		log: lg, slot: -1, wait: opts.Wait.withDefaults(),
		gating: lg.layout.mode == Reliable && !opts.Observer,
		tailW:  lg.u64(ctlTail), publishedW: lg.u64(ctlPublished),
		parkedW: lg.u32(ctlDataParked), futexW: lg.u32(ctlDataFutex),
		progressParkedW: lg.u32(ctlProgressParked), progressFutexW: lg.u32(ctlProgressFutex),
	}
	if opts.ManualRelease {
		if !s.gating {
			return nil, fmt.Errorf("topic %s: %w: ManualRelease needs a gating subscriber of a reliable topic (mode %v, observer %v)", lg.topic, ErrInvalidConfig, lg.layout.mode, opts.Observer)
		}
		s.manual = true
	}
	if !s.gating {
		s.scratch = make([]byte, lg.layout.maxFrame)
	}
	if opts.Observer {
		pos, err := s.startPosition(opts)
		if err != nil {
			return nil, err
		}
		s.pos, s.stored = pos, pos
		return s, nil
	}
	if err := s.register(opts); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Subscriber) startPosition(opts SubscriberOptions) (uint64, error) {
	lg := s.log
	if !opts.Resume {
		return lg.Published(), nil
	}
	pos := opts.From
	if published := lg.Published(); pos > published {
		return 0, fmt.Errorf("topic %s: %w: %d > published %d", lg.topic, ErrPositionFuture, pos, published)
	}
	if pos%schema.FrameAlign != 0 {
		return 0, fmt.Errorf("topic %s: position %d is not %d-byte aligned, so not a frame boundary", lg.topic, pos, schema.FrameAlign)
	}
	if tail := lg.Tail(); tail+commitWordBytes > pos+lg.layout.capacity {
		return 0, fmt.Errorf("topic %s: %w: %d, the ring holds positions from %d", lg.topic, ErrPositionTooOld, pos, tail+commitWordBytes-lg.layout.capacity)
	}
	return pos, nil
}

// register takes a free subscriber slot (its lock) and publishes the start
// position so that a concurrent claim can never overwrite it (see doc.go,
// "Registration").
func (s *Subscriber) register(opts SubscriberOptions) error {
	lg := s.log
	slot := -1
	for i := 0; i < lg.layout.subscribers; i++ {
		if err := lg.seg.TryLock(shm.LockSlotBase + i); err == nil {
			slot = i
			break
		} else if !errors.Is(err, shm.ErrLocked) {
			return err
		}
	}
	if slot < 0 {
		return fmt.Errorf("topic %s: subscriber table: %w (%d slots in use)", lg.topic, ErrTableFull, lg.layout.subscribers)
	}
	me, err := shm.Self()
	if err != nil {
		lg.seg.Unlock(shm.LockSlotBase + slot)
		return err
	}
	s.slot = slot
	s.slotStateW = lg.slotU32(slot, slotState)
	s.slotPosW = lg.slotU64(slot, slotPosition)
	s.slotHeartbeatW = lg.slotU64(slot, slotHeartbeat)
	gen := atomic.LoadUint32(s.slotStateW)>>8 + 1
	s.active = gen<<8 | uint32(SlotActive)
	atomic.StoreUint32(lg.slotU32(slot, slotPID), uint32(me.PID))
	atomic.StoreUint64(lg.slotU64(slot, slotStart), me.StartTime)
	atomic.StoreUint64(s.slotHeartbeatW, uint64(shm.Nanotime()))
	for _, off := range []int{slotFrames, slotLossFrames, slotLossBytes, slotLaps} {
		atomic.StoreUint64(lg.slotU64(slot, off), 0)
	}
	atomic.StoreUint64(lg.slotU64(slot, slotRegistered), uint64(time.Now().UnixNano()))
	flags := uint32(0)
	if s.gating {
		flags = slotGating
	}
	atomic.StoreUint32(lg.slotU32(slot, slotFlags), flags)
	for attempt := 0; ; attempt++ {
		pos, err := s.startPosition(opts)
		if err != nil {
			s.release(SlotFree)
			return err
		}
		atomic.StoreUint64(s.slotPosW, pos)
		atomic.StoreUint32(s.slotStateW, s.active)
		atomic.AddUint32(lg.u32(ctlEpoch), 1)
		// Either the publisher's next claim sees the epoch bump and counts
		// this slot, or its tail store came first and is visible here.
		if tail := lg.Tail(); tail+commitWordBytes <= pos+lg.layout.capacity {
			s.pos, s.stored, s.released = pos, pos, pos
			return nil
		}
		if opts.Resume || attempt > 1000 {
			s.release(SlotFree)
			return fmt.Errorf("topic %s: %w: %d was overwritten while registering", lg.topic, ErrPositionTooOld, pos)
		}
	}
}

// release gives the slot up with the given final status.
func (s *Subscriber) release(status SlotStatus) {
	if s.slot < 0 {
		return
	}
	atomic.StoreUint32(s.slotStateW, s.active&^0xff|uint32(status))
	_ = s.log.seg.Unlock(shm.LockSlotBase + s.slot)
	// A publisher waiting for this slot can go on now.
	atomic.AddUint32(s.progressFutexW, 1)
	_, _ = shm.FutexWake(s.progressFutexW, math.MaxInt32)
}

// Log returns the topic.
func (s *Subscriber) Log() *Log { return s.log }

// Position returns the position after the last frame delivered: where a
// resumed subscription should start.
func (s *Subscriber) Position() uint64 { return s.pos + s.pending }

// Slot returns the subscriber table slot, or -1 for an observer.
func (s *Subscriber) Slot() int { return s.slot }

// Loss returns the frames lost to laps (exact: counted from gaps in the
// publisher's sequence numbers), the bytes skipped, and the number of laps.
// Always zero for a reliable subscriber.
func (s *Subscriber) Loss() (frames, bytes, laps uint64) { return s.lossFrames, s.lossBytes, s.laps }

// Frames returns the number of frames delivered.
func (s *Subscriber) Frames() uint64 { return s.frames }

// lapped reports whether the publisher has claimed (and so may have
// overwritten) the bytes at pos since it last wrote them for pos's lap.
func (s *Subscriber) lapped(pos uint64) bool {
	return atomic.LoadUint64(s.tailW)+commitWordBytes > pos+s.log.layout.capacity
}

// readOne examines the frame at s.pos without advancing. For a frame it
// returns the view (gating) or the validated copy (non-gating) and the
// aligned size.
func (s *Subscriber) readOne() (frame []byte, size uint64, st readStatus, err error) {
	lg := s.log
	pos := s.pos
	w := atomic.LoadUint64(lg.word(pos))
	n := uint32(w)
	if n == 0 {
		if !s.gating && s.lapped(pos) {
			return nil, 0, readLapped, nil
		}
		return nil, 0, readNone, nil
	}
	typ := schema.Type(uint16(w >> 32))
	a := uint64(schema.AlignedSize(int(n)))
	bad := n < commitWordBytes || (pos&lg.mask)+a > lg.layout.capacity || a >= lg.layout.capacity ||
		typ != schema.TypePadding && (n < schema.HeaderSize || int(n) > lg.layout.maxFrame)
	if bad {
		if !s.gating && s.lapped(pos) {
			return nil, 0, readLapped, nil
		}
		return nil, 0, readNone, fmt.Errorf("topic %s: %w at position %d: length %d, type %d (max frame %d)", lg.topic, ErrCorruptFrame, pos, n, typ, lg.layout.maxFrame)
	}
	if typ == schema.TypePadding {
		if !s.gating && s.lapped(pos) {
			return nil, 0, readLapped, nil
		}
		return nil, a, readPadding, nil
	}
	if s.gating {
		return lg.bytesAt(pos, int(n)), a, readFrame, nil
	}
	buf := s.scratch[:n]
	copy(buf, lg.bytesAt(pos, int(n)))
	if s.lapped(pos) {
		return nil, 0, readLapped, nil
	}
	return buf, a, readFrame, nil
}

// resync moves a lapped subscriber to the newest published position; the
// frames it lost are counted from the sequence gap at the next frame.
func (s *Subscriber) resync() {
	to := atomic.LoadUint64(s.publishedW)
	if to > s.pos {
		s.lossBytes += to - s.pos
	}
	s.laps++
	s.pos = to
	if s.slot >= 0 {
		atomic.StoreUint64(s.log.slotU64(s.slot, slotLaps), s.laps)
		atomic.StoreUint64(s.log.slotU64(s.slot, slotLossBytes), s.lossBytes)
	}
}

// account checks a delivered frame's sequence number: a gap is loss (lossy
// and observer subscriptions only; in a gating subscription the sequence is
// gapless by construction).
func (s *Subscriber) account(frame []byte) {
	seq := binary.LittleEndian.Uint64(frame[8:16])
	if s.haveSeq && seq > s.expectSeq {
		s.lossFrames += seq - s.expectSeq
		if s.slot >= 0 {
			atomic.StoreUint64(s.log.slotU64(s.slot, slotLossFrames), s.lossFrames)
		}
	}
	s.expectSeq, s.haveSeq = seq+1, true
	s.frames++
}

// Poll delivers up to maxFrames available frames to h and returns how many
// it delivered. It never waits. Hot path: no allocation and no system call
// (except one FUTEX_WAKE when a reliable publisher is parked waiting for
// room). In a reliable subscription the subscriber's position is published
// once per call, after the last handler returned.
//
// Latency: the first frame reaches h before Poll reads anything else of the
// publisher's; after h returns, Poll looks at the next commit word (a line
// the publisher writes next, so usually a cache miss) to learn whether more
// frames wait. A consumer that answers each frame should answer inside h,
// or use Next, so that miss is not between the frame and the answer.
func (s *Subscriber) Poll(h Handler, maxFrames int) (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	if s.pending != 0 {
		s.pos += s.pending
		s.pending = 0
	}
	delivered, resyncs, paddings := 0, 0, 0
	var err error
	for delivered < maxFrames {
		frame, size, st, e := s.readOne()
		if e != nil {
			err = e
			break
		}
		if st == readNone {
			break
		}
		if st == readLapped {
			if resyncs++; resyncs > maxResyncsPerPoll {
				break
			}
			s.resync()
			continue
		}
		if st == readFrame {
			if delivered == 1 && maxFrames > 2 {
				// A second frame is committed: a batch is waiting, so
				// fetch its lines in parallel. Not before: touching ahead
				// reads the published word, a line the publisher writes
				// at every commit, and a lone frame's handler must not
				// wait for it.
				s.touchAhead()
			}
			s.account(frame)
			h(frame, s.pos)
			delivered++
		} else if paddings++; paddings > maxPaddingsPerPoll {
			break // a sane ring has at most a few paddings in a row
		}
		s.pos += size
	}
	s.storePosition()
	s.heartbeat()
	return delivered, err
}

// Next returns the next available frame and its position, or a nil frame
// when none is available. The frame (a view in a reliable subscription, a
// copy otherwise) stays valid until the next call of Next or Poll. Hot path:
// no allocation.
func (s *Subscriber) Next() (frame []byte, position uint64, err error) {
	if s.gating && !s.closed {
		// Fast path of a gating subscriber: one load of the commit word
		// (the line the frame arrives in), the frame's bounds, and the
		// slot's state word (this subscriber's own line).
		lg := s.log
		pos := s.pos + s.pending
		w := atomic.LoadUint64(lg.word(pos))
		n := uint32(w)
		if n == 0 && atomic.LoadUint32(s.slotStateW) == s.active {
			s.pos, s.pending = pos, 0
			s.storePosition()
			s.heartbeat()
			return nil, 0, nil
		}
		a := uint64(schema.AlignedSize(int(n)))
		if n >= schema.HeaderSize && int(n) <= lg.layout.maxFrame && schema.Type(uint16(w>>32)) != schema.TypePadding &&
			(pos&lg.mask)+a <= lg.layout.capacity && atomic.LoadUint32(s.slotStateW) == s.active {
			s.pos, s.pending = pos, a
			f := lg.bytesAt(pos, int(n))
			s.account(f)
			if s.sinceStore++; s.sinceStore >= storePositionEvery {
				s.storePosition() // stores s.pos: the start of f, which stays protected
			}
			return f, pos, nil
		}
	}
	return s.nextSlow()
}

// nextSlow is Next for everything but a committed data frame in a gating
// subscription: no frame, padding, laps, corruption, eviction, Close.
func (s *Subscriber) nextSlow() (frame []byte, position uint64, err error) {
	if err := s.check(); err != nil {
		return nil, 0, err
	}
	if s.pending != 0 {
		s.pos += s.pending
		s.pending = 0
	}
	for resyncs, paddings := 0, 0; ; {
		f, size, st, e := s.readOne()
		if e != nil {
			s.storePosition()
			return nil, 0, e
		}
		switch st {
		case readNone:
			s.storePosition()
			s.heartbeat()
			return nil, 0, nil
		case readLapped:
			if resyncs++; resyncs > maxResyncsPerPoll {
				return nil, 0, nil
			}
			s.resync()
		case readPadding:
			if paddings++; paddings > maxPaddingsPerPoll {
				s.storePosition()
				return nil, 0, nil
			}
			s.pos += size
		case readFrame:
			s.account(f)
			if s.sinceStore++; s.sinceStore >= storePositionEvery {
				s.storePosition() // stores s.pos: the start of f, which stays protected
			}
			s.pending = size
			return f, s.pos, nil
		}
	}
}

// touchAheadBytes bounds how far ahead of its position a polling subscriber
// touches committed lines.
const touchAheadBytes = 16 << 10

// touchAhead loads one byte of every cache line between the subscriber's
// position and the published position (at most touchAheadBytes): the loads
// do not depend on each other, so the core fetches the lines the publisher
// wrote in parallel instead of one frame-length-dependent miss at a time.
// Lines below the published position are complete, so touching them never
// disturbs the publisher.
func (s *Subscriber) touchAhead() {
	lg := s.log
	end := min(atomic.LoadUint64(s.publishedW), s.pos+touchAheadBytes)
	var sum byte
	for off := s.pos &^ 63; off < end; off += 64 {
		sum += *(*byte)(unsafe.Add(lg.data, off&lg.mask))
	}
	s.touched += sum
}

// check reports eviction (reliable) and use after Close.
func (s *Subscriber) check() error {
	if s.closed {
		return ErrClosed
	}
	if s.slot >= 0 && atomic.LoadUint32(s.slotStateW) != s.active {
		return fmt.Errorf("topic %s slot %d: %w", s.log.topic, s.slot, ErrEvicted)
	}
	return nil
}

// storePosition publishes the consumed position to the slot (sequentially
// consistent, so the parked-publisher check after it cannot miss) and wakes a
// publisher parked for room. A ManualRelease subscriber stores only in
// Release.
func (s *Subscriber) storePosition() {
	s.sinceStore = 0
	if s.pos == s.stored || s.slot < 0 || s.manual {
		s.stored = s.pos
		return
	}
	s.stored = s.pos
	s.publishPosition(s.pos)
}

// publishPosition stores pos as the slot's registered position and wakes a
// publisher parked for room.
func (s *Subscriber) publishPosition(pos uint64) {
	atomic.StoreUint64(s.slotPosW, pos)
	storeRelease64(s.log.slotU64(s.slot, slotFrames), s.frames)
	if atomic.LoadUint32(s.progressParkedW) != 0 {
		atomic.AddUint32(s.progressFutexW, 1)
		_, _ = shm.FutexWake(s.progressFutexW, math.MaxInt32)
	}
}

// Release advances a ManualRelease subscriber's registered position to pos:
// the publisher may now overwrite the frames before pos, so views into them
// must no longer be used. pos must lie between the position released last
// and the end of the newest frame read (Position), and be a frame boundary
// (a frame's position plus its aligned size, or Position itself); anything
// else is an error naming both positions. Releasing the position already
// released is a no-op. No allocation on success; one FUTEX_WAKE only if the
// publisher is parked waiting for room.
func (s *Subscriber) Release(pos uint64) error {
	if !s.manual {
		return fmt.Errorf("topic %s: %w: Release on a subscriber without ManualRelease", s.log.topic, ErrInvalidConfig)
	}
	if err := s.check(); err != nil {
		return err
	}
	read := s.pos + s.pending
	switch {
	case pos < s.released:
		return fmt.Errorf("topic %s slot %d: %w: release to %d is behind the position already released, %d", s.log.topic, s.slot, ErrReleaseOutOfRange, pos, s.released)
	case pos > read:
		return fmt.Errorf("topic %s slot %d: %w: release to %d is beyond the position read, %d", s.log.topic, s.slot, ErrReleaseOutOfRange, pos, read)
	case pos%schema.FrameAlign != 0:
		return fmt.Errorf("topic %s slot %d: %w: release to %d is not %d-byte aligned, so not a frame boundary (released %d, read %d)", s.log.topic, s.slot, ErrReleaseOutOfRange, pos, schema.FrameAlign, s.released, read)
	case pos == s.released:
		return nil
	}
	s.released = pos
	s.publishPosition(pos)
	return nil
}

// Released returns the registered position of a ManualRelease subscriber
// (the position last released: where a resumed subscription that must not
// skip unreleased frames starts), or Position for any other subscriber.
func (s *Subscriber) Released() uint64 {
	if s.manual {
		return s.released
	}
	return s.Position()
}

// Heartbeat stamps the subscriber's liveness heartbeat. A subscriber that is
// alive but not polling for a while (blocked elsewhere, such as a
// ManualRelease subscriber waiting for a disk) calls it at least every
// SubscriberTimeout/2 of the publisher's options so a publisher waiting
// for room does not evict it as stale. Poll, Next and Wait stamp it
// themselves. Cheap: one vDSO clock read and one store, no system call, no
// allocation; a no-op for observers and after Close. It may be called from
// a goroutine other than the one polling, but not concurrently with Close.
func (s *Subscriber) Heartbeat() {
	if s.slot >= 0 && !s.closed {
		storeRelease64(s.slotHeartbeatW, uint64(shm.Nanotime()))
	}
}

func (s *Subscriber) heartbeat() {
	s.polls++
	if s.slot >= 0 && s.polls%heartbeatEveryPolls == 0 {
		storeRelease64(s.slotHeartbeatW, uint64(shm.Nanotime()))
	}
}

// Close releases the subscriber's slot (a reliable publisher stops waiting
// for it) and unmaps the topic.
func (s *Subscriber) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.slot >= 0 {
		if SlotStatus(atomic.LoadUint32(s.slotStateW)&0xff) == SlotActive {
			s.release(SlotClosed)
		} else {
			_ = s.log.seg.Unlock(shm.LockSlotBase + s.slot)
		}
	}
	return s.log.Close()
}
