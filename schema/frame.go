package schema

import (
	"encoding/binary"
	"fmt"
)

// HeaderSize is the size in bytes of the fixed frame header that precedes every
// flatbuffer payload, in a ring, in a WAL record and in an LSM event value.
const HeaderSize = 24

// FrameAlign is the alignment of frames in a ring: every frame starts on an
// 8-byte boundary so the header's 64-bit fields can be read atomically.
const FrameAlign = 8

// MaxFrameBytes bounds a single frame, header included. Rings and the WAL may
// configure smaller limits; nothing accepts a larger one.
const MaxFrameBytes = 1 << 24

// Header is the fixed little-endian frame header:
//
//	offset size field
//	0      4    length      total frame bytes, header included, alignment padding excluded
//	4      2    type        Type of the root table of the payload
//	6      2    flags       Flag bits
//	8      8    seq         per-topic sequence number, assigned by the publisher
//	16     8    publish_ns  publish time, ns since the Unix epoch (UTC)
//	24     ...  payload     flatbuffer whose root table is chosen by type
//
// In a ring the length word is written last with release ordering: a frame is
// committed exactly when its length becomes visible.
type Header struct {
	Length    uint32
	Type      Type
	Flags     Flag
	Seq       uint64
	PublishNs int64
}

// Flag is the header's flag bits.
type Flag uint16

// EncodeHeader writes h into the first HeaderSize bytes of b. It panics if b is
// shorter than HeaderSize, as any slice index would.
func EncodeHeader(b []byte, h Header) {
	_ = b[HeaderSize-1]
	binary.LittleEndian.PutUint32(b[0:4], h.Length)
	binary.LittleEndian.PutUint16(b[4:6], uint16(h.Type))
	binary.LittleEndian.PutUint16(b[6:8], uint16(h.Flags))
	binary.LittleEndian.PutUint64(b[8:16], h.Seq)
	binary.LittleEndian.PutUint64(b[16:24], uint64(h.PublishNs))
}

// DecodeHeader reads the header at the start of frame and checks that the
// frame holds the length it declares. It does not look at the payload: Verify
// does.
func DecodeHeader(frame []byte) (Header, error) {
	if len(frame) < HeaderSize {
		return Header{}, fmt.Errorf("frame header: %d bytes, need %d", len(frame), HeaderSize)
	}
	h := Header{
		Length:    binary.LittleEndian.Uint32(frame[0:4]),
		Type:      Type(binary.LittleEndian.Uint16(frame[4:6])),
		Flags:     Flag(binary.LittleEndian.Uint16(frame[6:8])),
		Seq:       binary.LittleEndian.Uint64(frame[8:16]),
		PublishNs: int64(binary.LittleEndian.Uint64(frame[16:24])),
	}
	if h.Length < HeaderSize {
		return h, fmt.Errorf("frame header: length %d is below the header size %d", h.Length, HeaderSize)
	}
	if h.Length > MaxFrameBytes {
		return h, fmt.Errorf("frame header: length %d exceeds the limit of %d bytes", h.Length, MaxFrameBytes)
	}
	if int(h.Length) > len(frame) {
		return h, fmt.Errorf("frame header: length %d but only %d bytes present (truncated)", h.Length, len(frame))
	}
	return h, nil
}

// AlignedSize returns n rounded up to FrameAlign: the bytes a frame of length n
// occupies in a ring.
func AlignedSize(n int) int { return (n + FrameAlign - 1) &^ (FrameAlign - 1) }
