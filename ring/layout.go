package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sync/atomic"
	"unsafe"

	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/shm"
)

// Segment kinds (shm header field "kind").
const (
	KindLog       uint32 = 1
	KindLastValue uint32 = 2
)

// File name suffixes of the two kinds: <topic>.ring and <topic>.lvc.
const (
	LogSuffix       = ".ring"
	LastValueSuffix = ".lvc"
)

// Mode is a log topic's delivery mode, fixed at creation.
type Mode uint32

const (
	// Reliable: the publisher never overwrites bytes a live registered
	// subscriber has not consumed; it waits (bounded) instead.
	Reliable Mode = 1
	// Lossy: the publisher never waits; a subscriber it laps detects it,
	// counts the frames it lost, and resynchronizes.
	Lossy Mode = 2
)

func (m Mode) String() string {
	switch m {
	case Reliable:
		return "reliable"
	case Lossy:
		return "lossy"
	}
	return fmt.Sprintf("mode(%d)", uint32(m))
}

// Limits of a log topic's configuration.
const (
	MinCapacityBytes = 1 << 10
	MaxCapacityBytes = 1 << 31 // every length, padding included, fits the u32 length word
	MaxSubscribers   = 1024
	// lineBytes is the false-sharing unit: two 64-byte lines, because the
	// adjacent-line prefetcher pulls pairs.
	lineBytes = 128
	pageBytes = shm.HeaderPageBytes
	// commitWordBytes is the size of the word after a claim that the
	// publisher zeroes before it commits (see doc.go, "Commit protocol").
	commitWordBytes = 8
)

// Offsets inside the kind parameters of a log topic's header (all u64/u32 LE).
const (
	kpCapacity     = 0  // u64 data area bytes, power of two
	kpMaxFrame     = 8  // u32 largest frame accepted, header included
	kpMode         = 12 // u32 Mode
	kpSubscribers  = 16 // u32 subscriber table slots
	kpControlOff   = 24 // u64 offset of the control page
	kpTableOff     = 32 // u64 offset of the subscriber table
	kpDataOff      = 40 // u64 offset of the data area
	kpLogParamsEnd = 48
)

// Offsets of the hot words in the control page, each alone on its own
// 128-byte line, and of the publisher's record.
const (
	ctlTail            = 0 * lineBytes // u64 write horizon: the publisher may have written bytes below tail+8
	ctlPublished       = 1 * lineBytes // u64 end of the newest committed frame
	ctlPublishedSeq    = 1*lineBytes + 8
	ctlDurable         = 2 * lineBytes // u64
	ctlReplicated      = 3 * lineBytes // u64
	ctlDataFutex       = 4 * lineBytes // u32 wake sequence for parked subscribers
	ctlDataParked      = 5 * lineBytes // u32 subscribers parked on ctlDataFutex
	ctlPositionFutex   = 6 * lineBytes // u32 wake sequence for waiters on durable/replicated
	ctlPositionParked  = 6*lineBytes + 64
	ctlProgressFutex   = 7 * lineBytes // u32 wake sequence for a publisher waiting on subscribers
	ctlProgressParked  = 7*lineBytes + 64
	ctlEpoch           = 8 * lineBytes // u32 bumped by every subscriber registration
	ctlPubState        = 9 * lineBytes // u32 PublisherState
	ctlPubPID          = 9*lineBytes + 4
	ctlPubStart        = 9*lineBytes + 8
	ctlPubHeartbeat    = 9*lineBytes + 16 // i64 shm.Nanotime
	ctlPubAttaches     = 9*lineBytes + 24 // u64 publishers that attached so far
	ctlAbandoned       = 9*lineBytes + 32 // u64 claims padded over after a publisher died
	ctlBackPressure    = 9*lineBytes + 40 // u64 claims that had to wait for a subscriber
	ctlEvictions       = 9*lineBytes + 48 // u64 subscribers evicted
	ctlBackPressureErr = 9*lineBytes + 56 // u64 claims that failed with ErrBackPressure
	ctlLastRepair      = 9*lineBytes + 64 // u64 position of the last repair
	controlBytes       = pageBytes
)

// Subscriber table slot layout (each slot one 128-byte line).
const (
	slotState      = 0  // u32: generation<<8 | SlotStatus
	slotFlags      = 4  // u32: slotGating
	slotPID        = 8  // u32
	slotStart      = 16 // u64 process start time
	slotHeartbeat  = 24 // i64 shm.Nanotime
	slotPosition   = 32 // u64 consumed up to here
	slotFrames     = 40 // u64 frames delivered
	slotLossFrames = 48 // u64 frames lost to laps (lossy)
	slotLossBytes  = 56 // u64 bytes skipped by laps (lossy)
	slotLaps       = 64 // u64 times lapped
	slotRegistered = 72 // i64 Unix ns
	slotBytes      = lineBytes

	slotGating = 1
)

// SlotStatus is the low byte of a subscriber slot's state word.
type SlotStatus uint8

const (
	SlotFree    SlotStatus = 0
	SlotActive  SlotStatus = 1
	SlotEvicted SlotStatus = 2
	SlotClosed  SlotStatus = 3
)

func (s SlotStatus) String() string {
	switch s {
	case SlotFree:
		return "free"
	case SlotActive:
		return "active"
	case SlotEvicted:
		return "evicted"
	case SlotClosed:
		return "closed"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// PublisherState is the publisher record's state word, shown by tools.
type PublisherState uint32

const (
	PublisherNone   PublisherState = 0 // never attached
	PublisherLive   PublisherState = 1 // attached (the writer lock says whether it still lives)
	PublisherClosed PublisherState = 2 // detached cleanly
	// PublisherDead: the publisher died; its unfinished claim, if any, was
	// padded over (see doc.go, "Publisher death").
	PublisherDead PublisherState = 3
)

func (s PublisherState) String() string {
	switch s {
	case PublisherNone:
		return "none"
	case PublisherLive:
		return "live"
	case PublisherClosed:
		return "closed"
	case PublisherDead:
		return "dead"
	}
	return fmt.Sprintf("state(%d)", uint32(s))
}

// PaddingAbandoned marks a padding frame written over a claim that a dead
// publisher never committed (or that was aborted).
const PaddingAbandoned schema.Flag = 1

// Errors of log and last-value topics; test with errors.Is.
var (
	ErrBackPressure      = errors.New("back-pressure: a reliable subscriber has not consumed enough to make room")
	ErrPublisherGone     = errors.New("no live publisher")
	ErrPublisherExists   = errors.New("topic already has a live publisher")
	ErrEvicted           = errors.New("subscriber was evicted by the publisher (dead, or heartbeat stale)")
	ErrTableFull         = errors.New("table is full")
	ErrFrameSize         = errors.New("frame size out of range")
	ErrCorruptFrame      = errors.New("corrupt frame in the ring")
	ErrTimeout           = errors.New("timed out")
	ErrPositionTooOld    = errors.New("position is no longer in the ring")
	ErrPositionFuture    = errors.New("position is beyond the published position")
	ErrClaimOutstanding  = errors.New("a claim is outstanding: commit or abort it first")
	ErrNoClaim           = errors.New("no outstanding claim")
	ErrClosed            = errors.New("closed")
	ErrContended         = errors.New("last-value slot kept changing while being read")
	ErrNotFound          = errors.New("key not found")
	ErrBufferTooSmall    = errors.New("destination buffer too small")
	ErrInvalidConfig     = errors.New("invalid topic configuration")
	ErrLayoutMismatch    = errors.New("segment parameters are inconsistent")
	ErrSubscriberUnknown = errors.New("no such subscriber slot")
	ErrReleaseOutOfRange = errors.New("release position out of range")
)

// LogConfig configures a new log topic.
type LogConfig struct {
	// CapacityBytes is the data area size: a power of two in
	// [MinCapacityBytes, MaxCapacityBytes].
	CapacityBytes uint64
	// MaxFrameBytes bounds one frame, header included (default and upper
	// limit: CapacityBytes/4, and schema.MaxFrameBytes).
	MaxFrameBytes int
	// Mode is Reliable or Lossy.
	Mode Mode
	// Subscribers is the number of subscriber table slots (default 16, at
	// most MaxSubscribers).
	Subscribers int
	// SchemaID is recorded in the segment header.
	SchemaID uint64
	// FirstSeq is the sequence number of the topic's first frame: CreateLog
	// stores it in the published-seq word (control page +136) before the
	// segment becomes visible, so a topic recreated after its segment
	// vanished (host reboot, /dev/shm cleared) continues the sequence its
	// store already holds. Zero starts at 0.
	FirstSeq uint64
}

func (c *LogConfig) normalize() error {
	if c.CapacityBytes < MinCapacityBytes || c.CapacityBytes > MaxCapacityBytes || bits.OnesCount64(c.CapacityBytes) != 1 {
		return fmt.Errorf("%w: capacity %d bytes must be a power of two in [%d, %d]", ErrInvalidConfig, c.CapacityBytes, MinCapacityBytes, uint64(MaxCapacityBytes))
	}
	limit := int(min(c.CapacityBytes/4, schema.MaxFrameBytes))
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = limit
	}
	if c.MaxFrameBytes < schema.HeaderSize || c.MaxFrameBytes > limit {
		return fmt.Errorf("%w: max frame %d bytes must be in [%d, %d] (a quarter of the capacity)", ErrInvalidConfig, c.MaxFrameBytes, schema.HeaderSize, limit)
	}
	if c.Mode != Reliable && c.Mode != Lossy {
		return fmt.Errorf("%w: mode %d is neither Reliable (1) nor Lossy (2)", ErrInvalidConfig, c.Mode)
	}
	if c.Subscribers == 0 {
		c.Subscribers = 16
	}
	if c.Subscribers < 1 || c.Subscribers > MaxSubscribers {
		return fmt.Errorf("%w: %d subscriber slots, must be 1..%d", ErrInvalidConfig, c.Subscribers, MaxSubscribers)
	}
	return nil
}

func roundUp(n, to uint64) uint64 { return (n + to - 1) / to * to }

// logLayout is where everything of a log topic is, derived from its
// parameters and checked against the segment size.
type logLayout struct {
	capacity    uint64
	maxFrame    int
	mode        Mode
	subscribers int
	controlOff  uint64
	tableOff    uint64
	dataOff     uint64
}

func layoutFor(c LogConfig) logLayout {
	l := logLayout{capacity: c.CapacityBytes, maxFrame: c.MaxFrameBytes, mode: c.Mode, subscribers: c.Subscribers}
	l.controlOff = pageBytes
	l.tableOff = l.controlOff + controlBytes
	l.dataOff = l.tableOff + roundUp(uint64(c.Subscribers)*slotBytes, pageBytes)
	return l
}

func (l logLayout) segmentBytes() uint64 { return roundUp(l.dataOff+l.capacity, pageBytes) }

func (l logLayout) encode(kp []byte) {
	le := binary.LittleEndian
	le.PutUint64(kp[kpCapacity:], l.capacity)
	le.PutUint32(kp[kpMaxFrame:], uint32(l.maxFrame))
	le.PutUint32(kp[kpMode:], uint32(l.mode))
	le.PutUint32(kp[kpSubscribers:], uint32(l.subscribers))
	le.PutUint64(kp[kpControlOff:], l.controlOff)
	le.PutUint64(kp[kpTableOff:], l.tableOff)
	le.PutUint64(kp[kpDataOff:], l.dataOff)
}

// decodeLogLayout reads and checks a log topic's parameters: a layout that
// does not match what this package would have created for the same
// configuration is refused, so no offset read from shared memory is trusted.
func decodeLogLayout(h shm.Header) (logLayout, error) {
	kp := h.KindParams[:]
	le := binary.LittleEndian
	c := LogConfig{
		CapacityBytes: le.Uint64(kp[kpCapacity:]),
		MaxFrameBytes: int(le.Uint32(kp[kpMaxFrame:])),
		Mode:          Mode(le.Uint32(kp[kpMode:])),
		Subscribers:   int(le.Uint32(kp[kpSubscribers:])),
	}
	if c.Subscribers == 0 {
		return logLayout{}, fmt.Errorf("%w: 0 subscriber slots", ErrLayoutMismatch)
	}
	if err := c.normalize(); err != nil {
		return logLayout{}, fmt.Errorf("%w: %v", ErrLayoutMismatch, err)
	}
	want := layoutFor(c)
	got := want
	got.controlOff = le.Uint64(kp[kpControlOff:])
	got.tableOff = le.Uint64(kp[kpTableOff:])
	got.dataOff = le.Uint64(kp[kpDataOff:])
	if got != want {
		return logLayout{}, fmt.Errorf("%w: offsets control %d table %d data %d, want %d %d %d", ErrLayoutMismatch, got.controlOff, got.tableOff, got.dataOff, want.controlOff, want.tableOff, want.dataOff)
	}
	if h.SegmentBytes != want.segmentBytes() {
		return logLayout{}, fmt.Errorf("%w: segment of %d bytes, layout needs %d", ErrLayoutMismatch, h.SegmentBytes, want.segmentBytes())
	}
	return want, nil
}

// Log is an open log topic: the mapping and pointers to its shared words.
// Publisher and Subscriber each hold their own Log (their own open file, so
// their own role locks). Tools use OpenLog directly to read counters.
type Log struct {
	seg    *shm.Segment
	topic  string
	layout logLayout
	mask   uint64
	data   unsafe.Pointer // start of the data area
	ctl    []byte         // the control page
	table  []byte         // the subscriber table
}

func openLogSegment(seg *shm.Segment, topic string) (*Log, error) {
	l, err := decodeLogLayout(seg.Header())
	if err != nil {
		return nil, fmt.Errorf("topic %s: %w", topic, err)
	}
	b := seg.Bytes()
	return &Log{
		seg: seg, topic: topic, layout: l, mask: l.capacity - 1,
		data:  unsafe.Pointer(&b[l.dataOff]),
		ctl:   b[l.controlOff : l.controlOff+controlBytes],
		table: b[l.tableOff : l.tableOff+uint64(l.subscribers)*slotBytes],
	}, nil
}

// OpenLog maps an existing log topic for inspection and for advancing the
// durable and replicated positions. It takes no role.
func OpenLog(o shm.Options, topic string) (*Log, error) {
	seg, err := shm.Open(o, topic+LogSuffix, KindLog)
	if err != nil {
		return nil, err
	}
	l, err := openLogSegment(seg, topic)
	if err != nil {
		seg.Close()
		return nil, err
	}
	return l, nil
}

// Close unmaps the topic.
func (l *Log) Close() error { return l.seg.Close() }

// Replaced reports whether the topic's segment file no longer is the one
// this Log maps: it was removed, or recreated under the same name (a new
// inode; the appliance recreates topics after a host reboot or when
// segments were removed). A long-running producer that finds it true should
// close and reattach (OpenPublisher), since frames it publishes into the old
// mapping reach nobody. Not for the hot path: it costs an fstat and a stat
// (a few microseconds); once a second from a control loop, or after a wait
// times out, is plenty.
func (l *Log) Replaced() (bool, error) {
	r, err := l.seg.Replaced()
	if err != nil {
		return false, fmt.Errorf("topic %s: %w", l.topic, err)
	}
	return r, nil
}

// Topic returns the topic name.
func (l *Log) Topic() string { return l.topic }

// Segment returns the underlying segment.
func (l *Log) Segment() *shm.Segment { return l.seg }

// Capacity returns the data area size in bytes.
func (l *Log) Capacity() uint64 { return l.layout.capacity }

// MaxFrameBytes returns the largest frame the topic accepts.
func (l *Log) MaxFrameBytes() int { return l.layout.maxFrame }

// Mode returns the topic's delivery mode.
func (l *Log) Mode() Mode { return l.layout.mode }

// SubscriberSlots returns the number of subscriber table slots.
func (l *Log) SubscriberSlots() int { return l.layout.subscribers }

func (l *Log) u64(off int) *uint64 { return (*uint64)(unsafe.Pointer(&l.ctl[off])) }
func (l *Log) u32(off int) *uint32 { return (*uint32)(unsafe.Pointer(&l.ctl[off])) }

func (l *Log) slotU64(i, off int) *uint64 {
	return (*uint64)(unsafe.Pointer(&l.table[i*slotBytes+off]))
}
func (l *Log) slotU32(i, off int) *uint32 {
	return (*uint32)(unsafe.Pointer(&l.table[i*slotBytes+off]))
}

// word returns the commit word (length u32 | type u16 | flags u16) of the
// frame at position pos. The mask keeps it inside the data area.
func (l *Log) word(pos uint64) *uint64 {
	return (*uint64)(unsafe.Add(l.data, pos&l.mask))
}

// bytesAt returns n bytes of the data area starting at the index of pos; the
// caller guarantees index+n <= capacity.
func (l *Log) bytesAt(pos uint64, n int) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(l.data, pos&l.mask)), n)
}

// Published returns the end position of the newest committed frame.
func (l *Log) Published() uint64 { return atomic.LoadUint64(l.u64(ctlPublished)) }

// Tail returns the write horizon: the publisher may have written any byte
// below Tail()+8 (claims, committed or not, and zeroed space after them).
func (l *Log) Tail() uint64 { return atomic.LoadUint64(l.u64(ctlTail)) }

// PublishedFrames returns the number of frames committed so far (the next
// sequence number).
func (l *Log) PublishedFrames() uint64 { return atomic.LoadUint64(l.u64(ctlPublishedSeq)) }

// Durable returns the durable position.
func (l *Log) Durable() uint64 { return atomic.LoadUint64(l.u64(ctlDurable)) }

// Replicated returns the replicated position.
func (l *Log) Replicated() uint64 { return atomic.LoadUint64(l.u64(ctlReplicated)) }

// ParkedSubscribers returns how many subscribers sleep on the data futex.
func (l *Log) ParkedSubscribers() int { return int(atomic.LoadUint32(l.u32(ctlDataParked))) }

// PublisherInfo is the publisher record of a topic.
type PublisherInfo struct {
	State            PublisherState
	PID              int
	StartTime        uint64
	HeartbeatAgeNs   int64
	Alive            bool // the writer lock is held by some process
	Attaches         uint64
	AbandonedClaims  uint64
	BackPressureWait uint64
	BackPressureErr  uint64
	Evictions        uint64
	LastRepair       uint64
}

// Publisher returns the publisher record; Alive costs one fcntl.
func (l *Log) Publisher() PublisherInfo {
	held, _ := l.seg.LockHeld(shm.LockWriter)
	hb := int64(atomic.LoadUint64(l.u64(ctlPubHeartbeat)))
	return PublisherInfo{
		State:            PublisherState(atomic.LoadUint32(l.u32(ctlPubState))),
		PID:              int(atomic.LoadUint32(l.u32(ctlPubPID))),
		StartTime:        atomic.LoadUint64(l.u64(ctlPubStart)),
		HeartbeatAgeNs:   shm.Nanotime() - hb,
		Alive:            held,
		Attaches:         atomic.LoadUint64(l.u64(ctlPubAttaches)),
		AbandonedClaims:  atomic.LoadUint64(l.u64(ctlAbandoned)),
		BackPressureWait: atomic.LoadUint64(l.u64(ctlBackPressure)),
		BackPressureErr:  atomic.LoadUint64(l.u64(ctlBackPressureErr)),
		Evictions:        atomic.LoadUint64(l.u64(ctlEvictions)),
		LastRepair:       atomic.LoadUint64(l.u64(ctlLastRepair)),
	}
}

// SubscriberInfo is one subscriber table slot.
type SubscriberInfo struct {
	Slot           int
	Status         SlotStatus
	Generation     uint32
	Gating         bool
	PID            int
	StartTime      uint64
	HeartbeatAgeNs int64
	Alive          bool // the slot lock is held by some process
	Position       uint64
	Lag            uint64 // published - position
	Frames         uint64
	LossFrames     uint64
	LossBytes      uint64
	Laps           uint64
	RegisteredNs   int64
}

// Subscribers returns every slot that was ever used (status not free).
func (l *Log) Subscribers() []SubscriberInfo {
	published := l.Published()
	var out []SubscriberInfo
	for i := 0; i < l.layout.subscribers; i++ {
		st := atomic.LoadUint32(l.slotU32(i, slotState))
		if SlotStatus(st&0xff) == SlotFree {
			continue
		}
		held, _ := l.seg.LockHeld(shm.LockSlotBase + i)
		pos := atomic.LoadUint64(l.slotU64(i, slotPosition))
		info := SubscriberInfo{
			Slot: i, Status: SlotStatus(st & 0xff), Generation: st >> 8,
			Gating:         atomic.LoadUint32(l.slotU32(i, slotFlags))&slotGating != 0,
			PID:            int(atomic.LoadUint32(l.slotU32(i, slotPID))),
			StartTime:      atomic.LoadUint64(l.slotU64(i, slotStart)),
			HeartbeatAgeNs: shm.Nanotime() - int64(atomic.LoadUint64(l.slotU64(i, slotHeartbeat))),
			Alive:          held,
			Position:       pos,
			Frames:         atomic.LoadUint64(l.slotU64(i, slotFrames)),
			LossFrames:     atomic.LoadUint64(l.slotU64(i, slotLossFrames)),
			LossBytes:      atomic.LoadUint64(l.slotU64(i, slotLossBytes)),
			Laps:           atomic.LoadUint64(l.slotU64(i, slotLaps)),
			RegisteredNs:   int64(atomic.LoadUint64(l.slotU64(i, slotRegistered))),
		}
		if published > pos {
			info.Lag = published - pos
		}
		out = append(out, info)
	}
	return out
}
