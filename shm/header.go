package shm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Layout of the segment header page. Every segment starts with one 4096-byte
// header page; its first bytes are this little-endian header. Offsets are part
// of the format (see doc.go): change them only with a new LayoutMajor.
const (
	HeaderPageBytes = 4096

	offMagic        = 0   // [8]byte "TAPEWIRE"
	offLayoutMajor  = 8   // u16
	offLayoutMinor  = 10  // u16
	offKind         = 12  // u32
	offHeaderBytes  = 16  // u32, = HeaderPageBytes
	offFlags        = 20  // u32, reserved, 0
	offSegmentBytes = 24  // u64, total file size
	offSchemaID     = 32  // u64
	offCreatorPID   = 40  // u32
	offCreatorUID   = 44  // u32
	offCreatorStart = 48  // u64, clock ticks after boot (/proc/PID/stat field 22)
	offBootID       = 56  // [16]byte
	offCreatedNs    = 72  // i64, Unix ns
	offCreateMode   = 80  // u32, permission bits requested at creation
	offReserved     = 84  // u32, 0
	offKindParams   = 88  // [KindParamsBytes]byte, owned by the segment's kind
	offCRC          = 216 // u32, CRC-32C of bytes [0, offCRC)
	offState        = 220 // u32, written last

	// KindParamsBytes is the room for a kind's immutable parameters (ring
	// capacity, mode, slot counts, ...), covered by the header CRC.
	KindParamsBytes = 128

	// HeaderBytes is how much of the header page the header uses; the rest of
	// the page is zero and reserved.
	HeaderBytes = 224
)

// Magic identifies a Tapewire segment.
var Magic = [8]byte{'T', 'A', 'P', 'E', 'W', 'I', 'R', 'E'}

// The layout version this package writes and reads. Readers accept any minor
// version of their major: minor versions only add fields in reserved space.
const (
	LayoutMajor = 1
	LayoutMinor = 0
)

// State word values. StateInitializing is the zero a fresh file starts with;
// the creator stores StateReady last, after the header and CRC, so a reader
// that sees StateReady sees a complete header.
const (
	StateInitializing uint32 = 0
	StateReady        uint32 = 0x59444552 // "REDY" little-endian
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors returned (wrapped, with the path and the offending value) when a
// segment cannot be used. Test with errors.Is.
var (
	ErrNotSegment   = errors.New("not a tapewire segment (bad magic)")
	ErrLayout       = errors.New("unsupported segment layout version")
	ErrInitializing = errors.New("segment is not initialized (creator has not finished, or died while creating it)")
	ErrCorrupt      = errors.New("segment header is corrupt")
	ErrTruncated    = errors.New("segment file is smaller than its header says")
	ErrKind         = errors.New("segment is of another kind")
	ErrOwner        = errors.New("segment is owned by another user")
	ErrMode         = errors.New("segment permissions are wider than allowed")
	ErrFault        = errors.New("memory fault while reading the mapped segment (file shrunk under us?)")
)

// Header is the decoded segment header.
type Header struct {
	LayoutMajor, LayoutMinor uint16
	Kind                     uint32
	SegmentBytes             uint64
	SchemaID                 uint64
	CreatorPID               uint32
	CreatorUID               uint32
	CreatorStart             uint64
	BootID                   [16]byte
	CreatedNs                int64
	CreateMode               uint32
	KindParams               [KindParamsBytes]byte
	State                    uint32
}

// Creator returns the process that created the segment.
func (h *Header) Creator() Process {
	return Process{PID: int(h.CreatorPID), StartTime: h.CreatorStart, BootID: h.BootID}
}

// encodeHeader writes h (except the state word) and its CRC into b.
func encodeHeader(b []byte, h *Header) {
	_ = b[HeaderBytes-1]
	copy(b[offMagic:], Magic[:])
	le := binary.LittleEndian
	le.PutUint16(b[offLayoutMajor:], h.LayoutMajor)
	le.PutUint16(b[offLayoutMinor:], h.LayoutMinor)
	le.PutUint32(b[offKind:], h.Kind)
	le.PutUint32(b[offHeaderBytes:], HeaderPageBytes)
	le.PutUint32(b[offFlags:], 0)
	le.PutUint64(b[offSegmentBytes:], h.SegmentBytes)
	le.PutUint64(b[offSchemaID:], h.SchemaID)
	le.PutUint32(b[offCreatorPID:], h.CreatorPID)
	le.PutUint32(b[offCreatorUID:], h.CreatorUID)
	le.PutUint64(b[offCreatorStart:], h.CreatorStart)
	copy(b[offBootID:], h.BootID[:])
	le.PutUint64(b[offCreatedNs:], uint64(h.CreatedNs))
	le.PutUint32(b[offCreateMode:], h.CreateMode)
	le.PutUint32(b[offReserved:], 0)
	copy(b[offKindParams:offKindParams+KindParamsBytes], h.KindParams[:])
	le.PutUint32(b[offCRC:], crc32.Checksum(b[:offCRC], castagnoli))
}

// ParseHeader decodes and validates the header at the start of b, which holds
// at least the header page of a segment (or fewer bytes, for a truncated file).
// It is a pure function over bytes: it checks magic, layout version, state,
// CRC and internal consistency, but not the file's size, owner or mode (Open
// does). It never panics, whatever b holds.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderBytes {
		return h, fmt.Errorf("%w: %d bytes, a header needs %d", ErrTruncated, len(b), HeaderBytes)
	}
	if !bytes.Equal(b[offMagic:offMagic+8], Magic[:]) {
		return h, fmt.Errorf("%w: magic %q, want %q", ErrNotSegment, b[offMagic:offMagic+8], Magic[:])
	}
	le := binary.LittleEndian
	h.LayoutMajor = le.Uint16(b[offLayoutMajor:])
	h.LayoutMinor = le.Uint16(b[offLayoutMinor:])
	if h.LayoutMajor != LayoutMajor {
		return h, fmt.Errorf("%w: layout %d.%d, this build reads %d.x", ErrLayout, h.LayoutMajor, h.LayoutMinor, LayoutMajor)
	}
	h.State = le.Uint32(b[offState:])
	switch h.State {
	case StateReady:
	case StateInitializing:
		return h, ErrInitializing
	default:
		return h, fmt.Errorf("%w: state word %#x is neither initializing nor ready", ErrCorrupt, h.State)
	}
	if got, want := le.Uint32(b[offCRC:]), crc32.Checksum(b[:offCRC], castagnoli); got != want {
		return h, fmt.Errorf("%w: CRC %#08x, computed %#08x", ErrCorrupt, got, want)
	}
	if hb := le.Uint32(b[offHeaderBytes:]); hb != HeaderPageBytes {
		return h, fmt.Errorf("%w: header page of %d bytes, want %d", ErrCorrupt, hb, HeaderPageBytes)
	}
	if fl, rs := le.Uint32(b[offFlags:]), le.Uint32(b[offReserved:]); fl != 0 || rs != 0 {
		return h, fmt.Errorf("%w: flags %#x and reserved %#x must be 0 in layout %d", ErrCorrupt, fl, rs, LayoutMajor)
	}
	h.Kind = le.Uint32(b[offKind:])
	h.SegmentBytes = le.Uint64(b[offSegmentBytes:])
	if h.SegmentBytes < HeaderPageBytes || h.SegmentBytes > MaxSegmentBytes {
		return h, fmt.Errorf("%w: segment size %d outside [%d, %d]", ErrCorrupt, h.SegmentBytes, HeaderPageBytes, uint64(MaxSegmentBytes))
	}
	h.SchemaID = le.Uint64(b[offSchemaID:])
	h.CreatorPID = le.Uint32(b[offCreatorPID:])
	h.CreatorUID = le.Uint32(b[offCreatorUID:])
	h.CreatorStart = le.Uint64(b[offCreatorStart:])
	copy(h.BootID[:], b[offBootID:offBootID+16])
	h.CreatedNs = int64(le.Uint64(b[offCreatedNs:]))
	h.CreateMode = le.Uint32(b[offCreateMode:])
	copy(h.KindParams[:], b[offKindParams:offKindParams+KindParamsBytes])
	return h, nil
}
