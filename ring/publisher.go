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

// PublisherOptions tune a publisher's waiting. The zero value is usable.
type PublisherOptions struct {
	// BackPressureTimeout bounds how long a claim on a reliable topic waits
	// for the slowest live subscriber to make room before it fails with
	// ErrBackPressure. 0 means DefaultBackPressureTimeout; negative means
	// fail at once (never wait).
	BackPressureTimeout time.Duration
	// SubscriberTimeout is the heartbeat age after which a subscriber that
	// blocks the publisher is evicted even though its process still runs
	// (it stopped polling). 0 means DefaultSubscriberTimeout.
	SubscriberTimeout time.Duration
	// DemoteCommitted pushes each single-frame commit's first cache line
	// out of the publisher's core to the shared last-level cache (CLDEMOTE
	// on amd64, a no-op elsewhere) right after the commit, so a subscriber
	// spinning on another core reads it from there instead of snooping the
	// publisher's core. For request/response and other latency-bound
	// topics: in ringbench's rtt-64B it saves ~20 ns of a ~300 ns round
	// trip, but it costs the publisher ~60 ns per frame (measured here), so
	// leave it off for streams. Only single-frame commits (Claim+Commit,
	// Offer) that do not wrap are demoted; batches (ClaimBatch) never.
	DemoteCommitted bool
}

// Defaults of PublisherOptions.
const (
	DefaultBackPressureTimeout = time.Second
	DefaultSubscriberTimeout   = 10 * time.Second
	// livenessCheckInterval is how often a waiting publisher checks whether
	// the subscriber it waits for is dead (an fcntl per check).
	livenessCheckInterval = 2 * time.Millisecond
	// heartbeatEveryCommits is how many commits pass between heartbeats (a
	// clock read costs 100-400 ns on some VMs).
	heartbeatEveryCommits = 4096
	// zeroGranuleBytes is the unit of zeroing: two 64-byte cache lines.
	zeroGranuleBytes = 128
)

// Publisher is the single writer of a log topic. It holds the topic's writer
// lock for its lifetime.
//
// Concurrency: a Publisher is used by one goroutine at a time. At most one
// claim (or batch claim) is outstanding: Commit or Abort it before the next.
type Publisher struct {
	log      *Log
	opts     PublisherOptions
	reliable bool
	capacity uint64
	maxFrame int

	tail     uint64 // end of the newest claim (all before it committed unless a claim is outstanding)
	horizon  uint64 // write horizon + 8 (the tail word + 8 this publisher announced): nothing at or above it is written
	zeroed   uint64 // the data area is zero in [end of the newest commit, zeroed); zeroed <= horizon
	chunk    uint64 // horizon granule: min(4 KiB, capacity/8)
	zeroLead uint64 // zeroed bytes kept ahead of the newest commit: one chunk
	seq      uint64 // sequence number of the next committed frame
	limit    uint64 // reliable: positions below limit may be written
	epoch    uint32 // registration epoch the limit was computed at

	// The outstanding claim: [claimStart, claimEnd) with claimFrames frames,
	// and the padding frame inside it, if any.
	claimStart  uint64
	claimEnd    uint64
	claimFrames int
	padPos      uint64
	padLen      uint64

	commits uint64
	closed  bool
	fence   uint64 // private target of the commit's barrier (storeCommit32)
	demote  bool   // PublisherOptions.DemoteCommitted

	tailW, publishedW, publishedSeqW *uint64
	parkedW, futexW, epochW          *uint32
	progressParkedW, progressFutexW  *uint32
}

// Claim is space for one frame, claimed but not committed. Build the payload
// in Payload(); the publisher writes the whole header at Commit (type and
// flags as given to Claim or set with SetType, publish_ns as set with
// SetPublishNs, its own sequence number, and the length last), so the
// header's cache line is written in one burst right before the commit.
type Claim struct {
	frame     []byte
	pos       uint64
	typ       schema.Type
	flags     schema.Flag
	publishNs int64
}

// Payload returns the frame's bytes after the 24-byte header: build the
// flatbuffer here.
func (c *Claim) Payload() []byte { return c.frame[schema.HeaderSize:] }

// Frame returns the whole frame. Bytes [0, 24) belong to the publisher: it
// overwrites them at Commit.
func (c *Claim) Frame() []byte { return c.frame }

// Position returns the frame's position in the topic.
func (c *Claim) Position() uint64 { return c.pos }

// SetPublishNs sets the header's publish_ns (0 unless set: stamping every
// frame with the clock is the caller's choice, it costs a clock read).
func (c *Claim) SetPublishNs(ns int64) { c.publishNs = ns }

// SetType changes the header's type (Claim sets the type it was given).
func (c *Claim) SetType(t schema.Type) { c.typ = t }

// CreateLog creates the log topic and attaches to it as its publisher.
func CreateLog(o shm.Options, topic string, cfg LogConfig, opts PublisherOptions) (*Publisher, error) {
	if err := cfg.normalize(); err != nil {
		return nil, fmt.Errorf("create topic %s: %w", topic, err)
	}
	l := layoutFor(cfg)
	var p shm.CreateParams
	p.Kind, p.SchemaID, p.Bytes = KindLog, cfg.SchemaID, int64(l.segmentBytes())
	l.encode(p.KindParams[:])
	// The first sequence number is in place before the segment's state
	// word says ready: no opener ever sees the topic with another one.
	seg, err := shm.Create(o, topic+LogSuffix, p, func(seg *shm.Segment) error {
		atomic.StoreUint64(seg.Uint64At(int(l.controlOff)+ctlPublishedSeq), cfg.FirstSeq)
		return nil
	})
	if err != nil {
		return nil, err
	}
	lg, err := openLogSegment(seg, topic)
	if err != nil {
		seg.Close()
		return nil, err
	}
	return attachPublisher(lg, opts)
}

// OpenPublisher attaches to an existing log topic as its publisher. It fails
// with ErrPublisherExists while another live process is the publisher. If the
// previous publisher died with a claim outstanding, the claim is padded over
// first (see doc.go, "Publisher death").
func OpenPublisher(o shm.Options, topic string, opts PublisherOptions) (*Publisher, error) {
	lg, err := OpenLog(o, topic)
	if err != nil {
		return nil, err
	}
	p, err := attachPublisher(lg, opts)
	if err != nil {
		lg.Close()
		return nil, err
	}
	return p, nil
}

func attachPublisher(lg *Log, opts PublisherOptions) (*Publisher, error) {
	if err := lg.seg.TryLock(shm.LockWriter); err != nil {
		if errors.Is(err, shm.ErrLocked) {
			return nil, fmt.Errorf("topic %s: %w (pid %d)", lg.topic, ErrPublisherExists, atomic.LoadUint32(lg.u32(ctlPubPID)))
		}
		return nil, err
	}
	me, err := shm.Self()
	if err != nil {
		lg.seg.Unlock(shm.LockWriter)
		return nil, err
	}
	if opts.BackPressureTimeout == 0 {
		opts.BackPressureTimeout = DefaultBackPressureTimeout
	}
	if opts.SubscriberTimeout == 0 {
		opts.SubscriberTimeout = DefaultSubscriberTimeout
	}
	lg.repairLocked()
	p := &Publisher{
		log: lg, opts: opts, reliable: lg.layout.mode == Reliable, demote: opts.DemoteCommitted,
		capacity: lg.layout.capacity, maxFrame: lg.layout.maxFrame,
		tailW: lg.u64(ctlTail), publishedW: lg.u64(ctlPublished), publishedSeqW: lg.u64(ctlPublishedSeq),
		parkedW: lg.u32(ctlDataParked), futexW: lg.u32(ctlDataFutex), epochW: lg.u32(ctlEpoch),
		progressParkedW: lg.u32(ctlProgressParked), progressFutexW: lg.u32(ctlProgressFutex),
	}
	p.tail = lg.Published()
	p.zeroed = p.tail + commitWordBytes // the repair zeroed the word at published, which is the tail word
	p.horizon = p.zeroed
	p.chunk = min(4096, p.capacity/8)
	p.zeroLead = p.chunk
	p.seq = lg.PublishedFrames()
	p.epoch = atomic.LoadUint32(p.epochW) - 1 // force a first limit computation
	atomic.StoreUint32(lg.u32(ctlPubPID), uint32(me.PID))
	atomic.StoreUint64(lg.u64(ctlPubStart), me.StartTime)
	atomic.StoreUint64(lg.u64(ctlPubHeartbeat), uint64(shm.Nanotime()))
	atomic.AddUint64(lg.u64(ctlPubAttaches), 1)
	atomic.StoreUint32(lg.u32(ctlPubState), uint32(PublisherLive))
	return p, nil
}

// Log returns the topic the publisher writes.
func (p *Publisher) Log() *Log { return p.log }

// Position returns the end of the newest committed frame.
func (p *Publisher) Position() uint64 {
	if p.claimFrames > 0 {
		return p.claimStart
	}
	return p.tail
}

// NextSeq returns the sequence number the next committed frame will get.
func (p *Publisher) NextSeq() uint64 { return p.seq }

// Claim reserves room for one frame of frameBytes bytes (header included)
// with the given type and flags. Hot path: no allocation; no system call
// unless it must wait for a reliable subscriber.
func (p *Publisher) Claim(frameBytes int, typ schema.Type, flags schema.Flag) (Claim, error) {
	a := uint64(schema.AlignedSize(frameBytes))
	pos := p.tail
	if p.closed || p.claimFrames > 0 || frameBytes < schema.HeaderSize || frameBytes > p.maxFrame ||
		typ == schema.TypePadding || (pos&p.log.mask)+a > p.capacity {
		// Errors and a wrap (padding) take the general path.
		var claims [1]Claim
		sizes := [1]int{frameBytes}
		if err := p.ClaimBatch(sizes[:], typ, flags, claims[:]); err != nil {
			return Claim{}, err
		}
		return claims[0], nil
	}
	end := pos + a
	if end+commitWordBytes > p.zeroed {
		if err := p.extend(pos, end+commitWordBytes); err != nil {
			return Claim{}, err
		}
	}
	p.claimStart, p.claimEnd, p.claimFrames, p.padLen = pos, end, 1, 0
	return Claim{frame: p.log.bytesAt(pos, frameBytes), pos: pos, typ: typ, flags: flags}, nil
}

// ClaimBatch reserves room for len(frameBytes) frames at once (one capacity
// check, one commit barrier), filling claims[i] for each. Every frame gets
// typ and flags; change a frame's type with Claim.SetType. The batch must fit
// in the ring with room to spare: its bytes plus any padding at most
// capacity minus 8. Hot path: no allocation.
func (p *Publisher) ClaimBatch(frameBytes []int, typ schema.Type, flags schema.Flag, claims []Claim) error {
	if p.closed {
		return ErrClosed
	}
	if p.claimFrames > 0 {
		return ErrClaimOutstanding
	}
	if len(frameBytes) == 0 || len(claims) < len(frameBytes) {
		return fmt.Errorf("%w: batch of %d frames with %d claim slots", ErrFrameSize, len(frameBytes), len(claims))
	}
	if typ == schema.TypePadding {
		return fmt.Errorf("%w: type %d is reserved for ring padding", ErrFrameSize, typ)
	}
	start := p.tail
	pos := start
	var padPos, padLen uint64
	for i, n := range frameBytes {
		if n < schema.HeaderSize || n > p.maxFrame {
			return fmt.Errorf("%w: frame %d of %d bytes, must be %d..%d", ErrFrameSize, i, n, schema.HeaderSize, p.maxFrame)
		}
		a := uint64(schema.AlignedSize(n))
		if idx := pos & p.log.mask; idx+a > p.capacity {
			if padLen != 0 {
				return fmt.Errorf("%w: batch of %d frames wraps the %d-byte ring twice", ErrFrameSize, len(frameBytes), p.capacity)
			}
			padPos, padLen = pos, p.capacity-idx
			pos += padLen
		}
		claims[i] = Claim{pos: pos}
		pos += a
	}
	end := pos
	if end-start+commitWordBytes > p.capacity {
		return fmt.Errorf("%w: batch needs %d bytes, the ring holds %d", ErrFrameSize, end-start+commitWordBytes, p.capacity)
	}
	if err := p.reserve(start, end+commitWordBytes); err != nil {
		return err
	}
	for i, n := range frameBytes {
		c := &claims[i]
		c.frame, c.typ, c.flags, c.publishNs = p.log.bytesAt(c.pos, n), typ, flags, 0
	}
	p.claimStart, p.claimEnd, p.claimFrames = start, end, len(frameBytes)
	p.padPos, p.padLen = padPos, padLen
	return nil
}

// reserve makes [start, need) writable. Claims inside the announced write
// horizon cost nothing; when need passes it, extend announces a new horizon
// and zeroes up to it.
func (p *Publisher) reserve(start, need uint64) error {
	if need <= p.zeroed {
		return nil
	}
	return p.extend(start, need)
}

// extend makes [start, need) writable: it raises the write horizon past
// need if it must (raiseHorizon, which may wait in a reliable topic), then
// zeroes the data area up to need, so the commit word after the claim reads
// zero until that claim is committed.
func (p *Publisher) extend(start, need uint64) error {
	if need > p.horizon {
		if err := p.raiseHorizon(start, need); err != nil {
			return err
		}
	}
	target := min(roundUp(need, zeroGranuleBytes), p.horizon)
	p.zeroRange(p.zeroed, target)
	p.zeroed = target
	return nil
}

// raiseHorizon moves the write horizon past need, at least one chunk ahead:
// in a reliable topic it first makes sure (waiting if it must) that no
// gating subscriber's unread bytes lie below the new horizon; it publishes
// the horizon (the tail word) before anything is written below it, so lossy
// readers can tell when their bytes may have been overwritten.
func (p *Publisher) raiseHorizon(start, need uint64) error {
	target := min(roundUp(need, p.chunk)+p.chunk, start+p.capacity)
	if !p.reliable {
		// Never lower a horizon a previous publisher announced: its zeroing
		// may still be what a lossy reader has to detect.
		if target-commitWordBytes > atomic.LoadUint64(p.tailW) {
			storeRelease64(p.tailW, target-commitWordBytes)
		}
	} else {
		if need > p.limit || atomic.LoadUint32(p.epochW) != p.epoch {
			if err := p.waitForRoom(start, need); err != nil {
				return err
			}
		}
		target = min(target, p.limit)
		// Sequentially consistent store, then re-read the epoch: a
		// subscriber that registered concurrently either sees this horizon
		// (and picks a start position below which nothing is overwritten),
		// or we see its epoch bump and count it.
		old := atomic.LoadUint64(p.tailW)
		atomic.StoreUint64(p.tailW, target-commitWordBytes)
		if atomic.LoadUint32(p.epochW) != p.epoch {
			if err := p.waitForRoom(start, need); err != nil {
				atomic.StoreUint64(p.tailW, old)
				return err
			}
			if target > p.limit {
				// Nothing is written above the old horizon yet: lower the
				// new one to what the new subscriber leaves room for.
				target = p.limit
				atomic.StoreUint64(p.tailW, target-commitWordBytes)
			}
		}
	}
	p.horizon = target
	return nil
}

// zeroRange clears the data bytes of positions [from, to), to-from <=
// capacity, splitting at the end of the data area.
func (p *Publisher) zeroRange(from, to uint64) {
	for from < to {
		idx := from & p.log.mask
		n := min(to-from, p.capacity-idx)
		clear(p.log.bytesAt(from, int(n)))
		from += n
	}
}

// Commit publishes the outstanding single-frame claim c and returns its
// sequence number. Hot path: no allocation; one FUTEX_WAKE system call only
// if a subscriber is parked.
func (p *Publisher) Commit(c Claim) uint64 {
	if p.claimFrames != 1 || p.padLen != 0 || c.pos != p.claimStart {
		claims := [1]Claim{c}
		return p.CommitBatch(claims[:])
	}
	seq := p.seq
	hdr := c.frame[:schema.HeaderSize]
	binary.LittleEndian.PutUint16(hdr[4:6], uint16(c.typ))
	binary.LittleEndian.PutUint16(hdr[6:8], uint16(c.flags))
	binary.LittleEndian.PutUint64(hdr[8:16], seq)
	binary.LittleEndian.PutUint64(hdr[16:24], uint64(c.publishNs))
	// The length last, sequentially consistent: it also orders the
	// parked-count read below after it.
	storeCommit32((*uint32)(unsafe.Pointer(&hdr[0])), uint32(len(c.frame)), &p.fence)
	if p.demote {
		shm.DemoteLine(unsafe.Pointer(&hdr[0]))
	}
	p.seq = seq + 1
	p.tail = p.claimEnd
	p.claimFrames = 0
	p.published()
	return seq
}

// published stores published seq and position after a commit, wakes parked
// subscribers if there are any, and stamps the heartbeat now and then.
func (p *Publisher) published() {
	storeRelease64(p.publishedSeqW, p.seq)
	storeRelease64(p.publishedW, p.tail)
	if atomic.LoadUint32(p.parkedW) != 0 {
		p.wakeSubscribers()
	}
	p.commits++
	if p.commits%heartbeatEveryCommits == 0 {
		p.Heartbeat()
	}
	p.zeroAhead()
}

// CommitBatch publishes the outstanding batch (all of it: pass the claims
// ClaimBatch filled) and returns the first frame's sequence number.
func (p *Publisher) CommitBatch(claims []Claim) uint64 {
	if p.claimFrames == 0 || len(claims) != p.claimFrames {
		panic(fmt.Sprintf("ring: CommitBatch of %d claims with %d outstanding", len(claims), p.claimFrames))
	}
	first := p.seq
	for i := range claims {
		c := &claims[i]
		hdr := c.frame[4:schema.HeaderSize]
		binary.LittleEndian.PutUint16(hdr[0:2], uint16(c.typ))
		binary.LittleEndian.PutUint16(hdr[2:4], uint16(c.flags))
		binary.LittleEndian.PutUint64(hdr[4:12], first+uint64(i))
		binary.LittleEndian.PutUint64(hdr[12:20], uint64(c.publishNs))
	}
	p.seq += uint64(len(claims))
	p.publishClaim(claims)
	return first
}

// publishClaim runs the commit protocol over the outstanding claim: zero the
// word after it, store every frame's length but the first word's, store the
// first word last (sequentially consistent: it also orders the parked-count
// read after it), then advance published and wake parked subscribers.
func (p *Publisher) publishClaim(claims []Claim) {
	lg := p.log
	var firstLen uint32
	for i := len(claims) - 1; i >= 0; i-- {
		n := uint32(len(claims[i].frame))
		w := (*uint32)(unsafe.Pointer(lg.word(claims[i].pos)))
		if claims[i].pos == p.claimStart {
			firstLen = n
			continue
		}
		storeRelease32(w, n)
	}
	if p.padLen != 0 {
		padWord := p.padLen // type 0, flags 0
		if p.padPos == p.claimStart {
			atomic.StoreUint64(lg.word(p.padPos), padWord)
		} else {
			storeRelease64(lg.word(p.padPos), padWord)
			storeCommit32((*uint32)(unsafe.Pointer(lg.word(p.claimStart))), firstLen, &p.fence)
		}
	} else {
		storeCommit32((*uint32)(unsafe.Pointer(lg.word(p.claimStart))), firstLen, &p.fence)
	}
	p.tail = p.claimEnd
	p.claimFrames, p.padLen = 0, 0
	p.published()
}

func (p *Publisher) wakeSubscribers() {
	atomic.AddUint32(p.futexW, 1)
	_, _ = shm.FutexWake(p.futexW, math.MaxInt32)
}

// Abort turns the outstanding claim into padding: subscribers skip it and no
// sequence number is used.
func (p *Publisher) Abort() error {
	if p.claimFrames == 0 {
		return ErrNoClaim
	}
	lg := p.log
	// Pad from the claim start to the end in chunks that never cross the
	// buffer end; the first chunk's word is stored last.
	writePadding(lg, p.claimStart, p.claimEnd, PaddingAbandoned)
	p.tail = p.claimEnd
	p.claimFrames, p.padLen = 0, 0
	storeRelease64(p.publishedW, p.tail)
	if atomic.LoadUint32(p.parkedW) != 0 {
		p.wakeSubscribers()
	}
	return nil
}

// writePadding covers [from, to) with padding frames (split at the buffer
// end), zeroing the word at to first and storing the word at from last.
func writePadding(lg *Log, from, to uint64, flags schema.Flag) {
	atomic.StoreUint64(lg.word(to), 0)
	capacity := lg.layout.capacity
	firstEnd := to
	if boundary := (from/capacity + 1) * capacity; boundary < to {
		firstEnd = boundary
		storeRelease64(lg.word(boundary), (to-boundary)|uint64(flags)<<48)
	}
	atomic.StoreUint64(lg.word(from), (firstEnd-from)|uint64(flags)<<48)
}

// Offer copies a complete frame (header and payload, as schema's builders
// produce it) into the ring and commits it: type, flags and publish_ns come
// from frame's header; the length and sequence number are the publisher's.
// It returns the frame's position. Hot path: no allocation.
func (p *Publisher) Offer(frame []byte) (uint64, error) {
	if len(frame) < schema.HeaderSize {
		return 0, fmt.Errorf("%w: frame of %d bytes is shorter than its %d-byte header", ErrFrameSize, len(frame), schema.HeaderSize)
	}
	typ := schema.Type(binary.LittleEndian.Uint16(frame[4:6]))
	n := len(frame)
	pos := p.tail
	a := uint64(schema.AlignedSize(n))
	if !p.closed && p.claimFrames == 0 && n <= p.maxFrame && typ != schema.TypePadding &&
		(pos&p.log.mask)+a <= p.capacity && pos+a+commitWordBytes <= p.zeroed {
		// Fast path: the frame fits before the end of the data area in
		// space already zeroed. Copy type, flags, publish_ns and payload
		// as they are, stamp the sequence number, store the length last.
		dst := p.log.bytesAt(pos, n)
		copy(dst[4:8], frame[4:8])
		binary.LittleEndian.PutUint64(dst[8:16], p.seq)
		copy(dst[16:], frame[16:])
		storeCommit32((*uint32)(unsafe.Pointer(&dst[0])), uint32(n), &p.fence)
		if p.demote {
			shm.DemoteLine(unsafe.Pointer(&dst[0]))
		}
		p.seq++
		p.tail = pos + a
		p.published()
		return pos, nil
	}
	flags := schema.Flag(binary.LittleEndian.Uint16(frame[6:8]))
	c, err := p.Claim(len(frame), typ, flags)
	if err != nil {
		return 0, err
	}
	c.publishNs = int64(binary.LittleEndian.Uint64(frame[16:24]))
	copy(c.frame[schema.HeaderSize:], frame[schema.HeaderSize:])
	p.Commit(c)
	return c.pos, nil
}

// waitForRoom recomputes the limit from the subscriber table and, while the
// claim [start, need) does not fit, waits for the slowest live gating
// subscriber, evicting it if it is dead, up to the back-pressure timeout.
func (p *Publisher) waitForRoom(start, need uint64) error {
	lg := p.log
	var startNs, lastCheckNs int64
	for iter := 0; ; iter++ {
		minPos, slowest, slowestState := p.computeLimit(start)
		if need <= p.limit {
			return nil
		}
		now := shm.Nanotime()
		if iter == 0 {
			atomic.AddUint64(lg.u64(ctlBackPressure), 1)
			startNs, lastCheckNs = now, now
		}
		if p.opts.BackPressureTimeout < 0 || time.Duration(now-startNs) > p.opts.BackPressureTimeout {
			atomic.AddUint64(lg.u64(ctlBackPressureErr), 1)
			return fmt.Errorf("%w: topic %s, subscriber slot %d (pid %d) at position %d, claim up to %d needs it past %d; waited %v (limit %v)",
				ErrBackPressure, lg.topic, slowest, atomic.LoadUint32(lg.slotU32(slowest, slotPID)), minPos, need, need-p.capacity,
				time.Duration(now-startNs).Round(time.Microsecond), p.opts.BackPressureTimeout)
		}
		if time.Duration(now-lastCheckNs) >= livenessCheckInterval {
			lastCheckNs = now
			if p.subscriberDead(slowest) {
				if atomic.CompareAndSwapUint32(lg.slotU32(slowest, slotState), slowestState, slowestState&^0xff|uint32(SlotEvicted)) {
					atomic.AddUint64(lg.u64(ctlEvictions), 1)
				}
				continue
			}
		}
		p.idle(iter, slowest, minPos)
	}
}

// computeLimit rescans the subscriber table: the limit becomes the slowest
// active gating position (or start, with none) plus the capacity. It returns
// the slowest position, its slot (-1 for none) and that slot's state word.
func (p *Publisher) computeLimit(start uint64) (minPos uint64, slowest int, slowestState uint32) {
	lg := p.log
	p.epoch = atomic.LoadUint32(p.epochW)
	minPos, slowest = start, -1
	for i := 0; i < lg.layout.subscribers; i++ {
		st := atomic.LoadUint32(lg.slotU32(i, slotState))
		if SlotStatus(st&0xff) != SlotActive || atomic.LoadUint32(lg.slotU32(i, slotFlags))&slotGating == 0 {
			continue
		}
		if pos := atomic.LoadUint64(lg.slotU64(i, slotPosition)); pos < minPos {
			minPos, slowest, slowestState = pos, i, st
		}
	}
	p.limit = minPos + p.capacity
	return minPos, slowest, slowestState
}

// zeroAhead keeps zeroLead bytes of zeroed space ahead of the newest
// commit: after a commit it zeroes the few lines the commit used up (a line
// or two for small frames), far enough ahead that no caught-up subscriber is
// polling them, so the stores (and the ownership requests they need) overlap
// with the subscribers reading the frame just committed. When the zeroing
// reaches the horizon it raises it a chunk further, never waiting: in a
// reliable topic only as far as the current limit allows.
func (p *Publisher) zeroAhead() {
	want := p.tail + commitWordBytes + p.zeroLead
	if p.zeroed >= want {
		return
	}
	target := roundUp(want, zeroGranuleBytes)
	if target > p.horizon {
		p.raiseHorizonAhead(target)
		target = min(target, p.horizon)
	}
	if target > p.zeroed {
		p.zeroRange(p.zeroed, target)
		p.zeroed = target
	}
}

// raiseHorizonAhead is raiseHorizon after a commit: it never waits. In a
// reliable topic it raises the horizon only as far as the current limit.
func (p *Publisher) raiseHorizonAhead(want uint64) {
	target := roundUp(want, p.chunk) + p.chunk
	if !p.reliable {
		if target-commitWordBytes > atomic.LoadUint64(p.tailW) {
			storeRelease64(p.tailW, target-commitWordBytes)
		}
		p.horizon = target
		return
	}
	if target > p.limit || atomic.LoadUint32(p.epochW) != p.epoch {
		p.computeLimit(p.tail)
	}
	if target = min(target, p.limit); target <= p.horizon {
		return
	}
	old := atomic.LoadUint64(p.tailW)
	atomic.StoreUint64(p.tailW, target-commitWordBytes)
	if atomic.LoadUint32(p.epochW) != p.epoch {
		if p.computeLimit(p.tail); target > p.limit {
			atomic.StoreUint64(p.tailW, old)
			return
		}
	}
	p.horizon = target
}

// subscriberDead reports whether slot i's owner is gone (its slot lock is
// free) or has not polled for SubscriberTimeout.
func (p *Publisher) subscriberDead(i int) bool {
	lg := p.log
	held, err := lg.seg.LockHeld(shm.LockSlotBase + i)
	if err == nil && !held {
		return true
	}
	hb := int64(atomic.LoadUint64(lg.slotU64(i, slotHeartbeat)))
	return time.Duration(shm.Nanotime()-hb) > p.opts.SubscriberTimeout
}

// idle is the publisher's back-pressure wait step: spin, then yield, then
// park on the progress futex (subscribers wake it when they advance).
func (p *Publisher) idle(iter, slot int, pos uint64) {
	switch {
	case iter < 64:
		shm.PauseN(32)
	case iter < 128:
		shm.Yield()
	default:
		v := atomic.LoadUint32(p.progressFutexW)
		atomic.AddUint32(p.progressParkedW, 1)
		if atomic.LoadUint64(p.log.slotU64(slot, slotPosition)) == pos {
			_, _ = shm.FutexWait(p.progressFutexW, v, livenessCheckInterval)
		}
		atomic.AddUint32(p.progressParkedW, ^uint32(0))
	}
}

// Heartbeat stamps the publisher's heartbeat (commits do it every few
// thousand frames; an idle publisher may call it so tools see it alive).
func (p *Publisher) Heartbeat() {
	atomic.StoreUint64(p.log.u64(ctlPubHeartbeat), uint64(shm.Nanotime()))
}

// Close aborts any outstanding claim, marks the publisher closed, releases
// the writer lock and unmaps the topic.
func (p *Publisher) Close() error {
	if p.closed {
		return nil
	}
	if p.claimFrames > 0 {
		_ = p.Abort()
	}
	p.closed = true
	atomic.StoreUint32(p.log.u32(ctlPubState), uint32(PublisherClosed))
	// Wake parked subscribers so they notice.
	p.wakeSubscribers()
	return p.log.Close()
}

// repairLocked pads over a claim left outstanding by a dead publisher. The
// caller holds the writer lock. Frames the dead publisher committed beyond
// the published position (a batch whose published store it never made) are
// kept: the walk stops at the first uncommitted word.
func (lg *Log) repairLocked() bool {
	published := lg.Published()
	tail := lg.Tail()
	state := PublisherState(atomic.LoadUint32(lg.u32(ctlPubState)))
	if tail < published || tail-published > lg.layout.capacity {
		// Never written by a sane publisher; make the intent consistent.
		atomic.StoreUint64(lg.u64(ctlTail), published)
		tail = published
	}
	pos := published
	nextSeq := lg.PublishedFrames()
	for pos < tail {
		w := atomic.LoadUint64(lg.word(pos))
		n := uint64(uint32(w))
		a := uint64(schema.AlignedSize(int(n)))
		if n == 0 || n < commitWordBytes || (pos&lg.mask)+a > lg.layout.capacity || pos+a > tail {
			break
		}
		if schema.Type(uint16(w>>32)) != schema.TypePadding && n >= schema.HeaderSize {
			seq := binary.LittleEndian.Uint64(lg.bytesAt(pos, schema.HeaderSize)[8:16])
			nextSeq = max(nextSeq, seq+1)
		}
		pos += a
	}
	repaired := pos < tail
	if repaired {
		writePadding(lg, pos, tail, PaddingAbandoned)
		atomic.AddUint64(lg.u64(ctlAbandoned), 1)
		atomic.StoreUint64(lg.u64(ctlLastRepair), pos)
	} else {
		// Make sure the word at the end reads zero (a publisher that died
		// between claiming and zeroing it).
		atomic.StoreUint64(lg.word(tail), 0)
	}
	atomic.StoreUint64(lg.u64(ctlPublishedSeq), nextSeq)
	atomic.StoreUint64(lg.u64(ctlPublished), tail)
	if state == PublisherLive {
		atomic.StoreUint32(lg.u32(ctlPubState), uint32(PublisherDead))
	}
	atomic.AddUint32(lg.u32(ctlDataFutex), 1)
	_, _ = shm.FutexWake(lg.u32(ctlDataFutex), math.MaxInt32)
	return repaired
}
