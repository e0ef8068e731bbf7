package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sync/atomic"
	"unsafe"

	"github.com/tapewire/tapewire/shm"
)

// Limits of a last-value topic.
const (
	MaxKeyBytes        = 64
	MaxLastValueSlots  = 1 << 20
	MaxLastValueBytes  = 1 << 20
	lvSlotHeaderBytes  = 128
	lvSlotsOff         = 2 * pageBytes
	lvControlOff       = pageBytes
	lvCtlVersion       = 0
	lvCtlKeys          = lineBytes
	lvCtlWriterPID     = 2 * lineBytes
	lvCtlWriterStart   = 2*lineBytes + 8
	lvCtlWriterHB      = 2*lineBytes + 16
	lvSlotSeq          = 0
	lvSlotValueLen     = 8
	lvSlotKeyLen       = 12
	lvSlotKey          = 16
	maxLastValueReads  = 1 << 16    // seqlock retries before ErrContended
	lvValueLost        = ^uint32(0) // value length of a slot whose writer died mid-update
	kpLVSlots          = 0
	kpLVMaxKey         = 4
	kpLVMaxValue       = 8
	kpLVSlotBytes      = 12
	kpLVSlotsOff       = 16
	defaultLVSlots     = 1024
	defaultLVValueSize = 512
)

// LastValueConfig configures a new last-value topic.
type LastValueConfig struct {
	// Slots is the fixed number of keys the table holds: a power of two
	// (default 1024). Keep it about twice the expected key count: lookups
	// probe linearly.
	Slots int
	// MaxValueBytes bounds a stored frame (default 512).
	MaxValueBytes int
	SchemaID      uint64
}

type lvLayout struct {
	slots, maxValue, slotBytes int
}

func (c *LastValueConfig) layout() (lvLayout, error) {
	if c.Slots == 0 {
		c.Slots = defaultLVSlots
	}
	if c.MaxValueBytes == 0 {
		c.MaxValueBytes = defaultLVValueSize
	}
	if c.Slots < 1 || c.Slots > MaxLastValueSlots || bits.OnesCount(uint(c.Slots)) != 1 {
		return lvLayout{}, fmt.Errorf("%w: %d last-value slots, must be a power of two in 1..%d", ErrInvalidConfig, c.Slots, MaxLastValueSlots)
	}
	if c.MaxValueBytes < 1 || c.MaxValueBytes > MaxLastValueBytes {
		return lvLayout{}, fmt.Errorf("%w: max value %d bytes, must be 1..%d", ErrInvalidConfig, c.MaxValueBytes, MaxLastValueBytes)
	}
	return lvLayout{slots: c.Slots, maxValue: c.MaxValueBytes, slotBytes: lvSlotHeaderBytes + int(roundUp(uint64(c.MaxValueBytes), lineBytes))}, nil
}

func (l lvLayout) segmentBytes() uint64 {
	return roundUp(lvSlotsOff+uint64(l.slots)*uint64(l.slotBytes), pageBytes)
}

// lastValue is the mapping shared by the writer and readers.
type lastValue struct {
	seg    *shm.Segment
	topic  string
	layout lvLayout
	slots  unsafe.Pointer
	ctl    []byte
}

func openLastValueSegment(seg *shm.Segment, topic string) (*lastValue, error) {
	h := seg.Header()
	kp := h.KindParams[:]
	le := binary.LittleEndian
	c := LastValueConfig{Slots: int(le.Uint32(kp[kpLVSlots:])), MaxValueBytes: int(le.Uint32(kp[kpLVMaxValue:]))}
	if c.Slots == 0 || c.MaxValueBytes == 0 {
		return nil, fmt.Errorf("topic %s: %w: zero slots or value size", topic, ErrLayoutMismatch)
	}
	l, err := c.layout()
	if err != nil {
		return nil, fmt.Errorf("topic %s: %w: %v", topic, ErrLayoutMismatch, err)
	}
	if int(le.Uint32(kp[kpLVMaxKey:])) != MaxKeyBytes || int(le.Uint32(kp[kpLVSlotBytes:])) != l.slotBytes ||
		le.Uint64(kp[kpLVSlotsOff:]) != lvSlotsOff || h.SegmentBytes != l.segmentBytes() {
		return nil, fmt.Errorf("topic %s: %w: last-value parameters do not match the segment", topic, ErrLayoutMismatch)
	}
	b := seg.Bytes()
	return &lastValue{seg: seg, topic: topic, layout: l, slots: unsafe.Pointer(&b[lvSlotsOff]), ctl: b[lvControlOff : lvControlOff+pageBytes]}, nil
}

func (lv *lastValue) slot(i int) unsafe.Pointer {
	return unsafe.Add(lv.slots, i*lv.layout.slotBytes)
}

func (lv *lastValue) slotSeq(i int) *uint64 { return (*uint64)(lv.slot(i)) }
func (lv *lastValue) slotValueLen(i int) *uint32 {
	return (*uint32)(unsafe.Add(lv.slot(i), lvSlotValueLen))
}
func (lv *lastValue) slotKeyLen(i int) *uint32 {
	return (*uint32)(unsafe.Add(lv.slot(i), lvSlotKeyLen))
}
func (lv *lastValue) slotKey(i int) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(lv.slot(i), lvSlotKey)), MaxKeyBytes)
}
func (lv *lastValue) slotValue(i int) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(lv.slot(i), lvSlotHeaderBytes)), lv.layout.maxValue)
}

// fnv1a hashes a key without allocating.
func fnv1a(key string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	return h
}

// find probes for key; it returns the slot, or -1 and the first empty slot.
func (lv *lastValue) find(key string) (slot, empty int) {
	mask := lv.layout.slots - 1
	h := int(fnv1a(key) & uint64(mask))
	for j := 0; j < lv.layout.slots; j++ {
		i := (h + j) & mask
		kl := atomic.LoadUint32(lv.slotKeyLen(i))
		if kl == 0 {
			return -1, i
		}
		if int(kl) == len(key) && string(lv.slotKey(i)[:kl]) == key {
			return i, -1
		}
	}
	return -1, -1
}

func checkKey(key string) error {
	if len(key) == 0 || len(key) > MaxKeyBytes {
		return fmt.Errorf("last-value key %q: %d bytes, must be 1..%d", key, len(key), MaxKeyBytes)
	}
	return nil
}

// LastValueWriter is the one writer of a last-value topic (it holds the
// writer lock). Concurrency: one goroutine at a time.
type LastValueWriter struct {
	lv    *lastValue
	index map[string]int
}

// CreateLastValue creates a last-value topic and attaches as its writer.
func CreateLastValue(o shm.Options, topic string, cfg LastValueConfig) (*LastValueWriter, error) {
	l, err := cfg.layout()
	if err != nil {
		return nil, fmt.Errorf("create last-value topic %s: %w", topic, err)
	}
	var p shm.CreateParams
	p.Kind, p.SchemaID, p.Bytes = KindLastValue, cfg.SchemaID, int64(l.segmentBytes())
	le := binary.LittleEndian
	le.PutUint32(p.KindParams[kpLVSlots:], uint32(l.slots))
	le.PutUint32(p.KindParams[kpLVMaxKey:], MaxKeyBytes)
	le.PutUint32(p.KindParams[kpLVMaxValue:], uint32(l.maxValue))
	le.PutUint32(p.KindParams[kpLVSlotBytes:], uint32(l.slotBytes))
	le.PutUint64(p.KindParams[kpLVSlotsOff:], lvSlotsOff)
	seg, err := shm.Create(o, topic+LastValueSuffix, p, nil)
	if err != nil {
		return nil, err
	}
	return attachLastValueWriter(seg, topic)
}

// OpenLastValueWriter attaches to an existing last-value topic as its writer;
// it fails with ErrPublisherExists while another live process writes it.
func OpenLastValueWriter(o shm.Options, topic string) (*LastValueWriter, error) {
	seg, err := shm.Open(o, topic+LastValueSuffix, KindLastValue)
	if err != nil {
		return nil, err
	}
	return attachLastValueWriter(seg, topic)
}

func attachLastValueWriter(seg *shm.Segment, topic string) (*LastValueWriter, error) {
	lv, err := openLastValueSegment(seg, topic)
	if err == nil {
		if err = seg.TryLock(shm.LockWriter); errors.Is(err, shm.ErrLocked) {
			err = fmt.Errorf("last-value topic %s: %w", topic, ErrPublisherExists)
		}
	}
	me, serr := shm.Self()
	if err == nil {
		err = serr
	}
	if err != nil {
		seg.Close()
		return nil, err
	}
	w := &LastValueWriter{lv: lv, index: make(map[string]int)}
	for i := 0; i < lv.layout.slots; i++ {
		if kl := atomic.LoadUint32(lv.slotKeyLen(i)); kl != 0 && kl <= MaxKeyBytes {
			w.index[string(lv.slotKey(i)[:kl])] = i
		}
		// A writer that died inside an update left the seqlock odd and the
		// value possibly torn: mark the value lost and close the sequence,
		// so readers get ErrNotFound instead of spinning, and never the torn
		// bytes. The next Put of the key stores a whole value again.
		if seq := lv.slotSeq(i); atomic.LoadUint64(seq)&1 != 0 {
			atomic.StoreUint32(lv.slotValueLen(i), lvValueLost)
			atomic.AddUint64(seq, 1)
		}
	}
	ctl := lv.ctl
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&ctl[lvCtlWriterPID])), uint32(me.PID))
	atomic.StoreUint64((*uint64)(unsafe.Pointer(&ctl[lvCtlWriterStart])), me.StartTime)
	atomic.StoreUint64((*uint64)(unsafe.Pointer(&ctl[lvCtlWriterHB])), uint64(shm.Nanotime()))
	return w, nil
}

// Put stores frame as the latest value of key and returns the slot's new
// version. It never waits for readers. Hot path once the key exists: no
// allocation, no system call. A new key takes a slot (ErrTableFull when none
// is left).
func (w *LastValueWriter) Put(key string, frame []byte) (uint64, error) {
	lv := w.lv
	if len(frame) > lv.layout.maxValue {
		return 0, fmt.Errorf("last-value topic %s key %q: %w: %d bytes, max %d", lv.topic, key, ErrFrameSize, len(frame), lv.layout.maxValue)
	}
	i, ok := w.index[key]
	if !ok {
		if err := checkKey(key); err != nil {
			return 0, err
		}
		found, empty := lv.find(key)
		switch {
		case found >= 0:
			i = found
		case empty >= 0:
			i = empty
			copy(lv.slotKey(i), key)
			atomic.StoreUint32(lv.slotKeyLen(i), uint32(len(key)))
			atomic.AddUint32((*uint32)(unsafe.Pointer(&lv.ctl[lvCtlKeys])), 1)
		default:
			return 0, fmt.Errorf("last-value topic %s key %q: %w (%d slots)", lv.topic, key, ErrTableFull, lv.layout.slots)
		}
		w.index[key] = i
	}
	sl := shm.NewSeqlock(lv.slotSeq(i))
	sl.WriteBegin()
	copy(lv.slotValue(i), frame)
	storeRelease32(lv.slotValueLen(i), uint32(len(frame)))
	v := sl.WriteEnd()
	atomic.AddUint64((*uint64)(unsafe.Pointer(&lv.ctl[lvCtlVersion])), 1)
	return v / 2, nil
}

// Close releases the writer lock and unmaps the topic.
func (w *LastValueWriter) Close() error { return w.lv.seg.Close() }

// LastValueReader reads a last-value topic. Safe for concurrent use.
type LastValueReader struct{ lv *lastValue }

// OpenLastValue maps a last-value topic for reading.
func OpenLastValue(o shm.Options, topic string) (*LastValueReader, error) {
	seg, err := shm.Open(o, topic+LastValueSuffix, KindLastValue)
	if err != nil {
		return nil, err
	}
	lv, err := openLastValueSegment(seg, topic)
	if err != nil {
		seg.Close()
		return nil, err
	}
	return &LastValueReader{lv: lv}, nil
}

// Close unmaps the topic.
func (r *LastValueReader) Close() error { return r.lv.seg.Close() }

// Segment returns the underlying segment.
func (r *LastValueReader) Segment() *shm.Segment { return r.lv.seg }

// Slots returns the table's capacity in keys.
func (r *LastValueReader) Slots() int { return r.lv.layout.slots }

// MaxValueBytes returns the largest value the table stores.
func (r *LastValueReader) MaxValueBytes() int { return r.lv.layout.maxValue }

// TableVersion returns the number of updates made to the table.
func (r *LastValueReader) TableVersion() uint64 {
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&r.lv.ctl[lvCtlVersion])))
}

// KeyCount returns the number of keys in use.
func (r *LastValueReader) KeyCount() int {
	return int(atomic.LoadUint32((*uint32)(unsafe.Pointer(&r.lv.ctl[lvCtlKeys]))))
}

// Lookup returns the slot of key, for repeated GetSlot calls without
// hashing. Keys never move, so a slot stays valid for the topic's life.
func (r *LastValueReader) Lookup(key string) (int, error) {
	if err := checkKey(key); err != nil {
		return -1, err
	}
	i, _ := r.lv.find(key)
	if i < 0 {
		return -1, fmt.Errorf("last-value topic %s key %q: %w", r.lv.topic, key, ErrNotFound)
	}
	return i, nil
}

// Get copies the latest value of key into dst and returns its length and the
// slot's version (number of updates). Hot path: no allocation.
func (r *LastValueReader) Get(key string, dst []byte) (int, uint64, error) {
	i, err := r.Lookup(key)
	if err != nil {
		return 0, 0, err
	}
	return r.GetSlot(i, dst)
}

// GetSlot is Get by slot number (from Lookup). It retries while the writer
// updates the slot, up to a bound, then fails with ErrContended; it never
// returns a torn value.
func (r *LastValueReader) GetSlot(i int, dst []byte) (int, uint64, error) {
	lv := r.lv
	if i < 0 || i >= lv.layout.slots {
		return 0, 0, fmt.Errorf("last-value topic %s: slot %d: %w", lv.topic, i, ErrSubscriberUnknown)
	}
	sl := shm.NewSeqlock(lv.slotSeq(i))
	value := lv.slotValue(i)
	for attempt := 0; attempt < maxLastValueReads; attempt++ {
		v, ok := sl.ReadBegin()
		if !ok {
			shm.Pause()
			continue
		}
		if v == 0 {
			return 0, 0, fmt.Errorf("last-value topic %s slot %d: %w (no value yet)", lv.topic, i, ErrNotFound)
		}
		n32 := atomic.LoadUint32(lv.slotValueLen(i))
		if n32 == lvValueLost && sl.ReadValid(v) {
			return 0, v / 2, fmt.Errorf("last-value topic %s slot %d: %w (its writer died while updating it; the next update restores it)", lv.topic, i, ErrNotFound)
		}
		n := int(n32)
		if n > len(value) {
			continue // torn length: the seqlock check below would fail too
		}
		if n > len(dst) {
			if sl.ReadValid(v) {
				return n, v / 2, fmt.Errorf("last-value topic %s slot %d: %w: value %d bytes, buffer %d", lv.topic, i, ErrBufferTooSmall, n, len(dst))
			}
			continue
		}
		copy(dst[:n], value[:n])
		if sl.ReadValid(v) {
			return n, v / 2, nil
		}
	}
	return 0, 0, fmt.Errorf("last-value topic %s slot %d: %w (%d attempts)", lv.topic, i, ErrContended, maxLastValueReads)
}

// LastValueEntry is one key of the table, for tools.
type LastValueEntry struct {
	Slot    int
	Key     string
	Version uint64
}

// Entries lists the keys in slot order with their versions.
func (r *LastValueReader) Entries() []LastValueEntry {
	lv := r.lv
	var out []LastValueEntry
	for i := 0; i < lv.layout.slots; i++ {
		kl := atomic.LoadUint32(lv.slotKeyLen(i))
		if kl == 0 || kl > MaxKeyBytes {
			continue
		}
		out = append(out, LastValueEntry{Slot: i, Key: string(lv.slotKey(i)[:kl]), Version: atomic.LoadUint64(lv.slotSeq(i)) / 2})
	}
	return out
}
