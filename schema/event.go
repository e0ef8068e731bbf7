package schema

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Event is the value form of a frame's payload: one of the event structs
// generated from events.fbs (*Tick, *Order, ...). Only this package's types
// implement it.
type Event interface {
	// EventType is the frame type whose payload this event is.
	EventType() Type

	desc() *tableDesc
	check() error
	sizeAt(at int) int
	encodeAt(p []byte, at int) (tablePos, end int)
	decode(p []byte, r tableRef)
	setJSON(name string, raw []byte) error
}

// rootTableAt is where the root table's vtable starts: after the root uoffset.
const rootTableAt = 4

// FrameError reports a frame or an event value that breaks a rule of the
// format: what is wrong, in which field, at which byte.
type FrameError struct {
	// Op is "verify" for a frame read from bytes, "build" for a value being
	// written.
	Op string
	// Type is the frame type (TypePadding before the header is known).
	Type Type
	// Path names the table and field: "Tick.instrument_id",
	// "Checkpoint.topics[2].topic", or just the table or "header".
	Path string
	// Offset is the byte offset within the frame (header included) of the
	// offending bytes, or -1 when building.
	Offset int
	// Reason says what is wrong, with the limit where one applies.
	Reason string
}

func (e *FrameError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("schema: %s %v frame: %s at offset %d: %s", e.Op, e.Type, e.Path, e.Offset, e.Reason)
	}
	return fmt.Sprintf("schema: %s %v: %s: %s", e.Op, e.Type, e.Path, e.Reason)
}

func buildError(d *tableDesc, field int, reason string) error {
	return &FrameError{Op: "build", Path: d.name + "." + d.fields[field].name, Offset: -1, Reason: reason}
}

// nestedError puts the path of the table field (element i of a vector, or
// the table itself when i < 0) in front of an error from a nested table.
func nestedError(d *tableDesc, field, i int, err error) error {
	var fe *FrameError
	if !errors.As(err, &fe) {
		return err
	}
	inner := fe.Path
	if dot := indexByte(inner, '.'); dot >= 0 {
		inner = inner[dot:]
	} else {
		inner = ""
	}
	path := d.name + "." + d.fields[field].name
	if i >= 0 {
		path += fmt.Sprintf("[%d]", i)
	}
	out := *fe
	out.Path = path + inner
	return &out
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func checkString(d *tableDesc, field int, s string) error {
	f := &d.fields[field]
	if len(s) > f.maxLen {
		return buildError(d, field, fmt.Sprintf("string of %d bytes exceeds the limit of %d", len(s), f.maxLen))
	}
	if f.required && len(s) == 0 {
		return buildError(d, field, "required string is empty")
	}
	if !utf8.ValidString(s) {
		return buildError(d, field, "string is not valid UTF-8")
	}
	return nil
}

func checkLen(d *tableDesc, field, n int) error {
	f := &d.fields[field]
	if n > f.maxLen {
		unit := "elements"
		if f.kind == kindBytes {
			unit = "bytes"
		}
		return buildError(d, field, fmt.Sprintf("%d %s exceed the limit of %d", n, unit, f.maxLen))
	}
	return nil
}

// FrameSize returns the bytes of the frame (header included, ring alignment
// padding excluded) that PutEvent writes for ev, or an error naming the field
// that breaks a bound of events.fbs. It does not allocate.
func FrameSize(ev Event) (int, error) {
	if err := ev.check(); err != nil {
		var fe *FrameError
		if errors.As(err, &fe) {
			fe.Type = ev.EventType()
		}
		return 0, err
	}
	n := HeaderSize + ev.sizeAt(rootTableAt)
	if n > MaxFrameBytes {
		return 0, &FrameError{Op: "build", Type: ev.EventType(), Path: ev.desc().name, Offset: -1,
			Reason: fmt.Sprintf("frame of %d bytes exceeds MaxFrameBytes (%d)", n, MaxFrameBytes)}
	}
	return n, nil
}

// PutEvent writes the frame of ev (header and payload) at the start of buf
// and returns its length. From h it takes Flags, Seq and PublishNs; it sets
// Length and Type itself. It fails, writing nothing, when buf is shorter than
// the frame or a field of ev breaks a bound of events.fbs.
//
// Hot path: it does not allocate, and it writes every byte of the frame
// (padding included), so buf may hold stale data.
func PutEvent(buf []byte, h Header, ev Event) (int, error) {
	n, err := putEvent(buf, h, ev)
	if err != nil {
		return 0, err
	}
	putU32(buf, 0, uint32(n))
	return n, nil
}

// PutEventUncommitted is PutEvent for a ring that commits a frame by storing
// its length word last, with release ordering: it writes everything but the
// length word, which it leaves zero, and returns the length to store.
func PutEventUncommitted(buf []byte, h Header, ev Event) (int, error) {
	return putEvent(buf, h, ev)
}

func putEvent(buf []byte, h Header, ev Event) (int, error) {
	n, err := FrameSize(ev)
	if err != nil {
		return 0, err
	}
	return putSized(buf, h, ev, n)
}

// putSized writes the frame of ev, whose checked size is n, leaving the
// length word zero.
func putSized(buf []byte, h Header, ev Event, n int) (int, error) {
	if n > len(buf) {
		return 0, &FrameError{Op: "build", Type: ev.EventType(), Path: ev.desc().name, Offset: -1,
			Reason: fmt.Sprintf("frame needs %d bytes, the buffer has %d", n, len(buf))}
	}
	h.Length = 0
	h.Type = ev.EventType()
	EncodeHeader(buf, h)
	p := buf[HeaderSize:n]
	tp, end := ev.encodeAt(p, rootTableAt)
	putU32(p, 0, uint32(tp))
	if end != len(p) {
		panic(fmt.Sprintf("schema: %v encoded %d payload bytes, sized %d", h.Type, end, len(p)))
	}
	return n, nil
}

// PutPayload writes only the payload of ev (the flatbuffer, FrameSize(ev) -
// HeaderSize bytes) at the start of buf, for a ring or log that writes the
// frame header itself, and returns its length. Like PutEvent it allocates
// nothing, writes every byte, and writes nothing when it fails.
func PutPayload(buf []byte, ev Event) (int, error) {
	n, err := FrameSize(ev)
	if err != nil {
		return 0, err
	}
	n -= HeaderSize
	if n > len(buf) {
		return 0, &FrameError{Op: "build", Type: ev.EventType(), Path: ev.desc().name, Offset: -1,
			Reason: fmt.Sprintf("payload needs %d bytes, the buffer has %d", n, len(buf))}
	}
	p := buf[:n]
	tp, end := ev.encodeAt(p, rootTableAt)
	putU32(p, 0, uint32(tp))
	if end != n {
		panic(fmt.Sprintf("schema: %v encoded %d payload bytes, sized %d", ev.EventType(), end, n))
	}
	return n, nil
}

// AppendEvent appends the frame of ev to dst, as PutEvent writes it. It
// allocates only when dst lacks the capacity.
func AppendEvent(dst []byte, h Header, ev Event) ([]byte, error) {
	n, err := FrameSize(ev)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	if cap(dst)-start < n {
		grown := make([]byte, start, start+n+start/4)
		copy(grown, dst)
		dst = grown
	}
	dst = dst[:start+n]
	putSized(dst[start:], h, ev, n) // cannot fail: dst[start:] has n bytes
	putU32(dst, start, uint32(n))
	return dst, nil
}

// DecodeEvent verifies frame and decodes its payload into ev, whose type
// must be the frame's. Strings and slices of ev are reused when they already
// hold the same bytes or have the capacity, so decoding a stream of frames
// into one value allocates only for strings that change.
func DecodeEvent(frame []byte, ev Event) (Header, error) {
	if _, _, err := frameBounds(frame); err != nil {
		return Header{}, err
	}
	h := Header{
		Length:    getU32(frame, 0),
		Type:      Type(getU16(frame, 4)),
		Flags:     Flag(getU16(frame, 6)),
		Seq:       getU64(frame, 8),
		PublishNs: getI64(frame, 16),
	}
	if h.Type != ev.EventType() {
		return h, &FrameError{Op: "verify", Type: h.Type, Path: "header", Offset: 4,
			Reason: fmt.Sprintf("frame type %v does not match the event %v", h.Type, ev.EventType())}
	}
	p := frame[HeaderSize:h.Length]
	var r tableRef
	if err := verifyRoot(h.Type, ev.desc(), p, HeaderSize, &r); err != nil {
		return h, err
	}
	ev.decode(p, r)
	return h, nil
}

// DecodePayload verifies a payload (a flatbuffer without the frame header,
// as stored in an LSM value) whose root table is ev's and decodes it into ev.
func DecodePayload(payload []byte, ev Event) error {
	var r tableRef
	if err := verifyRoot(ev.EventType(), ev.desc(), payload, 0, &r); err != nil {
		return err
	}
	ev.decode(payload, r)
	return nil
}
