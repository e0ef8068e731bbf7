package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/tapewire/tapewire/vfs"
)

// LSN is a log sequence number: every record gets the next one, starting at
// 1. Zero means "none".
type LSN uint64

// Format constants. Changing any of them changes the on-disk format.
const (
	// BlockSize is the alignment of frames and the unit of every write.
	BlockSize = vfs.BlockSize
	// SegmentHeaderSize is the space the segment header occupies: one block.
	SegmentHeaderSize = BlockSize
	// FrameHeaderSize is the size of a frame header.
	FrameHeaderSize = 64
	// RecordHeaderSize is the size of a record header.
	RecordHeaderSize = 16
	// RecordAlign is the alignment of records inside a frame, so payloads
	// (Tapewire frames, 8-aligned) can be read in place.
	RecordAlign = 8
	// FormatVersion is the version written in segment and frame headers.
	FormatVersion = 1
	// MaxFrameBytes bounds any frame the format can describe (the configured
	// Options.MaxGroupBytes is far smaller by default).
	MaxFrameBytes = 1 << 30

	segmentMagic = 0x4745534c41575754 // "TWWALSEG" little-endian
	frameMagic   = 0x52465754         // "TWFR" little-endian

	// frameFlagClose marks the frame Close writes: no records, durable-through
	// equal to the last LSN, nothing follows.
	frameFlagClose = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SegmentHeader is the first block of a segment file.
//
//	offset size field
//	0      8    magic "TWWALSEG"
//	8      2    format version
//	10     2    reserved, zero
//	12     4    block size (4096)
//	16     16   log UUID (same in every segment of one log)
//	32     8    segment id (also in the file name)
//	40     8    first LSN of the segment
//	48     8    segment size in bytes (the file is preallocated to it)
//	56     4    reserved, zero
//	60     4    CRC32C of bytes [0,60), seeded with the segment id
//	64     ...  zero to the end of the block
type SegmentHeader struct {
	LogUUID          [16]byte
	SegmentID        uint64
	FirstLSN         LSN
	SegmentSizeBytes int64
}

// FrameHeader precedes the records of one commit group.
//
//	offset size field
//	0      4    magic "TWFR"
//	4      2    format version
//	6      2    flags (1 = close frame)
//	8      8    segment id
//	16     8    first LSN
//	24     4    record count (the frame holds LSNs [first, first+count))
//	28     4    frame length in bytes, header included, padding excluded
//	32     8    durable-through promise: every LSN <= this was acknowledged
//	            before this frame was written
//	40     8    first 8 bytes of the log UUID
//	48     12   reserved, zero
//	60     4    CRC32C over bytes [0,60) and the records, seeded with the
//	            segment id and the frame's file offset
type FrameHeader struct {
	Flags          uint16
	SegmentID      uint64
	FirstLSN       LSN
	Count          uint32
	Length         uint32
	DurableThrough LSN
	LogTag         uint64
}

// LastLSN is the last LSN in the frame, or FirstLSN-1 for an empty frame.
func (h FrameHeader) LastLSN() LSN { return h.FirstLSN + LSN(h.Count) - 1 }

// IsClose reports whether this is the frame a clean Close writes.
func (h FrameHeader) IsClose() bool { return h.Flags&frameFlagClose != 0 }

// Record header, before each payload:
//
//	offset size field
//	0      4    payload length in bytes
//	4      2    record type (the caller's; the WAL does not interpret it)
//	6      2    reserved, zero
//	8      8    LSN
//	16     ...  payload, then zero padding to a multiple of 8
func recordSize(payloadLen int) int {
	return RecordHeaderSize + (payloadLen+RecordAlign-1)&^(RecordAlign-1)
}

func alignBlock(n int64) int64 { return (n + BlockSize - 1) &^ (BlockSize - 1) }

// frameSeed is the CRC seed for a frame at offset in segment id: a frame
// copied to another place (misdirected write, recycled segment) fails.
// (Computed bytewise: passing a stack array to crc32.Update would make it
// escape and cost an allocation per frame.)
func frameSeed(segmentID uint64, offset int64) uint32 {
	return crcUint64(crcUint64(0, segmentID), uint64(offset))
}

func segmentSeed(segmentID uint64) uint32 {
	return crcUint64(0xffffffff, segmentID)
}

// crcUint64 is crc32.Update(crc, castagnoli, v as 8 little-endian bytes).
func crcUint64(crc uint32, v uint64) uint32 {
	crc = ^crc
	for i := range 8 {
		crc = castagnoli[byte(crc)^byte(v>>(8*i))] ^ (crc >> 8)
	}
	return ^crc
}

func logTag(uuid [16]byte) uint64 { return binary.LittleEndian.Uint64(uuid[:8]) }

// encodeSegmentHeader writes h into b (at least 64 bytes; the caller zeroes
// the rest of the block).
func encodeSegmentHeader(b []byte, h SegmentHeader) {
	_ = b[63]
	binary.LittleEndian.PutUint64(b[0:], segmentMagic)
	binary.LittleEndian.PutUint16(b[8:], FormatVersion)
	binary.LittleEndian.PutUint16(b[10:], 0)
	binary.LittleEndian.PutUint32(b[12:], BlockSize)
	copy(b[16:32], h.LogUUID[:])
	binary.LittleEndian.PutUint64(b[32:], h.SegmentID)
	binary.LittleEndian.PutUint64(b[40:], uint64(h.FirstLSN))
	binary.LittleEndian.PutUint64(b[48:], uint64(h.SegmentSizeBytes))
	binary.LittleEndian.PutUint32(b[56:], 0)
	binary.LittleEndian.PutUint32(b[60:], crc32.Update(segmentSeed(h.SegmentID), castagnoli, b[:60]))
}

// headerState is what a block that should hold a header turned out to hold.
type headerState uint8

const (
	stateValid   headerState = iota // a valid header of the expected segment
	stateZero                       // all zero bytes
	stateTorn                       // our magic, but a check failed: a partial write
	stateForeign                    // non-zero bytes that are not a header of this segment
	stateShort                      // the file ends before the block does
)

func (s headerState) String() string {
	return [...]string{"valid", "zero", "torn", "foreign", "short"}[s]
}

// decodeSegmentHeader validates the header block of segment id.
func decodeSegmentHeader(b []byte, id uint64) (SegmentHeader, headerState, error) {
	if len(b) < 64 {
		return SegmentHeader{}, stateShort, fmt.Errorf("segment header: %d bytes, need 64", len(b))
	}
	if isZero(b) {
		return SegmentHeader{}, stateZero, nil
	}
	if binary.LittleEndian.Uint64(b[0:]) != segmentMagic {
		return SegmentHeader{}, stateForeign, fmt.Errorf("segment header: bad magic %#x", binary.LittleEndian.Uint64(b[0:]))
	}
	h := SegmentHeader{
		SegmentID:        binary.LittleEndian.Uint64(b[32:]),
		FirstLSN:         LSN(binary.LittleEndian.Uint64(b[40:])),
		SegmentSizeBytes: int64(binary.LittleEndian.Uint64(b[48:])),
	}
	copy(h.LogUUID[:], b[16:32])
	if h.SegmentID != id {
		return h, stateForeign, fmt.Errorf("segment header: segment id %d, file is segment %d", h.SegmentID, id)
	}
	want := binary.LittleEndian.Uint32(b[60:])
	if got := crc32.Update(segmentSeed(id), castagnoli, b[:60]); got != want {
		return h, stateTorn, fmt.Errorf("segment header: CRC %#x, stored %#x", got, want)
	}
	if v := binary.LittleEndian.Uint16(b[8:]); v != FormatVersion {
		return h, stateForeign, fmt.Errorf("segment header: format version %d, this build reads %d", v, FormatVersion)
	}
	if bs := binary.LittleEndian.Uint32(b[12:]); bs != BlockSize {
		return h, stateForeign, fmt.Errorf("segment header: block size %d, this build uses %d", bs, BlockSize)
	}
	if h.FirstLSN == 0 || h.SegmentSizeBytes < 2*BlockSize || h.SegmentSizeBytes%BlockSize != 0 {
		return h, stateForeign, fmt.Errorf("segment header: first LSN %d, size %d out of range", h.FirstLSN, h.SegmentSizeBytes)
	}
	return h, stateValid, nil
}

// putFrameHeader writes h into b[0:64) and the CRC over it and records
// (b[64:h.Length)) for a frame at offset. Hot path: no allocation.
func putFrameHeader(b []byte, h FrameHeader, offset int64) {
	_ = b[h.Length-1]
	binary.LittleEndian.PutUint32(b[0:], frameMagic)
	binary.LittleEndian.PutUint16(b[4:], FormatVersion)
	binary.LittleEndian.PutUint16(b[6:], h.Flags)
	binary.LittleEndian.PutUint64(b[8:], h.SegmentID)
	binary.LittleEndian.PutUint64(b[16:], uint64(h.FirstLSN))
	binary.LittleEndian.PutUint32(b[24:], h.Count)
	binary.LittleEndian.PutUint32(b[28:], h.Length)
	binary.LittleEndian.PutUint64(b[32:], uint64(h.DurableThrough))
	binary.LittleEndian.PutUint64(b[40:], h.LogTag)
	clear(b[48:60])
	crc := crc32.Update(frameSeed(h.SegmentID, offset), castagnoli, b[:60])
	crc = crc32.Update(crc, castagnoli, b[FrameHeaderSize:h.Length])
	binary.LittleEndian.PutUint32(b[60:], crc)
}

// peekFrame classifies the block at b (which starts at offset in segment id)
// by its header alone: stateValid means the header is plausible and the
// caller must still check the CRC with checkFrame over h.Length bytes.
// avail is how many bytes of the segment remain from offset.
func peekFrame(b []byte, id uint64, offset, avail int64) (FrameHeader, headerState) {
	if len(b) < FrameHeaderSize {
		return FrameHeader{}, stateShort
	}
	if binary.LittleEndian.Uint32(b[0:]) != frameMagic {
		if isZero(b[:min(len(b), BlockSize)]) {
			return FrameHeader{}, stateZero
		}
		return FrameHeader{}, stateForeign
	}
	h := FrameHeader{
		Flags:          binary.LittleEndian.Uint16(b[6:]),
		SegmentID:      binary.LittleEndian.Uint64(b[8:]),
		FirstLSN:       LSN(binary.LittleEndian.Uint64(b[16:])),
		Count:          binary.LittleEndian.Uint32(b[24:]),
		Length:         binary.LittleEndian.Uint32(b[28:]),
		DurableThrough: LSN(binary.LittleEndian.Uint64(b[32:])),
		LogTag:         binary.LittleEndian.Uint64(b[40:]),
	}
	if h.SegmentID != id {
		return h, stateForeign
	}
	if binary.LittleEndian.Uint16(b[4:]) != FormatVersion || h.Length < FrameHeaderSize ||
		int64(h.Length) > avail || h.Length > MaxFrameBytes || h.FirstLSN == 0 ||
		uint64(h.Count)*RecordHeaderSize > uint64(h.Length) {
		return h, stateTorn
	}
	return h, stateValid
}

// checkFrame verifies the CRC of the frame in b[0:h.Length) at offset.
func checkFrame(b []byte, h FrameHeader, offset int64) bool {
	want := binary.LittleEndian.Uint32(b[60:])
	crc := crc32.Update(frameSeed(h.SegmentID, offset), castagnoli, b[:60])
	crc = crc32.Update(crc, castagnoli, b[FrameHeaderSize:h.Length])
	return crc == want
}

// Record is one entry of the log. Payload is copied by Append; a Record
// returned by a Reader points into the reader's buffer and is valid until
// its next call.
type Record struct {
	LSN     LSN // assigned by the log; ignored by Append
	Type    uint16
	Payload []byte
}

// encodeRecord writes r with lsn at b and returns the bytes used. Hot path.
func encodeRecord(b []byte, lsn LSN, r *Record) int {
	n := recordSize(len(r.Payload))
	binary.LittleEndian.PutUint32(b[0:], uint32(len(r.Payload)))
	binary.LittleEndian.PutUint16(b[4:], r.Type)
	binary.LittleEndian.PutUint16(b[6:], 0)
	binary.LittleEndian.PutUint64(b[8:], uint64(lsn))
	copy(b[RecordHeaderSize:], r.Payload)
	clear(b[RecordHeaderSize+len(r.Payload) : n])
	return n
}

// decodeRecord reads the record at b[pos:end) expecting lsn.
func decodeRecord(b []byte, pos, end int, lsn LSN) (Record, int, error) {
	if end-pos < RecordHeaderSize {
		return Record{}, 0, fmt.Errorf("record %d: %d bytes left in frame, header needs %d", lsn, end-pos, RecordHeaderSize)
	}
	plen := int(binary.LittleEndian.Uint32(b[pos:]))
	got := LSN(binary.LittleEndian.Uint64(b[pos+8:]))
	if got != lsn {
		return Record{}, 0, fmt.Errorf("record: LSN %d where %d was expected", got, lsn)
	}
	if plen > end-pos-RecordHeaderSize {
		return Record{}, 0, fmt.Errorf("record %d: payload length %d overruns the frame (%d bytes left)", lsn, plen, end-pos-RecordHeaderSize)
	}
	n := recordSize(plen)
	if n > end-pos {
		n = end - pos
	}
	return Record{
		LSN:     lsn,
		Type:    binary.LittleEndian.Uint16(b[pos+4:]),
		Payload: b[pos+RecordHeaderSize : pos+RecordHeaderSize+plen : pos+RecordHeaderSize+plen],
	}, n, nil
}

var zeroBlock [BlockSize]byte

// isZero reports whether b is all zero bytes.
func isZero(b []byte) bool {
	for len(b) >= BlockSize {
		if [BlockSize]byte(b[:BlockSize]) != zeroBlock {
			return false
		}
		b = b[BlockSize:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
