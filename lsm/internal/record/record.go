package record

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/tapewire/tapewire/lsm/internal/base"
	"github.com/zeebo/xxh3"
)

// HeaderLen is the size of a record header.
const HeaderLen = 8

// MaxPayload bounds one record's payload (a version edit is far smaller).
const MaxPayload = 64 << 20

func checksum(payload []byte, offset uint64) uint32 {
	h := xxh3.HashSeed(payload, offset*0x9E3779B97F4A7C15^uint64(len(payload)))
	return uint32(h ^ h>>32)
}

// Append appends a record holding payload, to be written at offset, to dst.
func Append(dst []byte, offset uint64, payload []byte) ([]byte, error) {
	if len(payload) > MaxPayload {
		return dst, fmt.Errorf("record: payload of %d bytes exceeds the %d-byte limit", len(payload), MaxPayload)
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.LittleEndian.AppendUint32(dst, checksum(payload, offset))
	return append(dst, payload...), nil
}

// Reader iterates over the records in a log image.
type Reader struct {
	name   string
	data   []byte
	offset int
	torn   bool
}

// NewReader reads the records of data; name is used in errors.
func NewReader(name string, data []byte) *Reader { return &Reader{name: name, data: data} }

// Next returns the next record's payload (a view into data), io.EOF at the
// end of the valid log, or a corruption error.
func (r *Reader) Next() ([]byte, error) {
	rest := len(r.data) - r.offset
	if rest == 0 {
		return nil, io.EOF
	}
	if rest < HeaderLen {
		r.torn = true
		return nil, io.EOF
	}
	h := r.data[r.offset:]
	length := binary.LittleEndian.Uint32(h)
	end := HeaderLen + int(length)
	if length <= MaxPayload && end <= rest {
		payload := h[HeaderLen:end:end]
		if checksum(payload, uint64(r.offset)) == binary.LittleEndian.Uint32(h[4:]) {
			r.offset += end
			return payload, nil
		}
	}
	// A bad record: torn if nothing verifiable follows it (only the last,
	// unsynced append can be torn), corruption if acknowledged records do.
	if next := r.findRecordAfter(r.offset); next >= 0 {
		return nil, base.Corruptf(r.name, int64(r.offset), "damaged record (claimed length %d) followed by a valid record at %d", length, next)
	}
	r.torn = true
	return nil, io.EOF
}

// findRecordAfter returns the offset of the first verifiable record that
// starts after off, or -1. Checksums are seeded with the offset, so a match
// is a record written at that place, not a coincidence of shifted bytes.
func (r *Reader) findRecordAfter(off int) int {
	for o := off + 1; o+HeaderLen <= len(r.data); o++ {
		h := r.data[o:]
		length := binary.LittleEndian.Uint32(h)
		if length > MaxPayload || HeaderLen+int(length) > len(h) {
			continue
		}
		if checksum(h[HeaderLen:HeaderLen+int(length)], uint64(o)) == binary.LittleEndian.Uint32(h[4:]) {
			return o
		}
	}
	return -1
}

// Offset is the end of the last record returned: the length of the valid log
// once Next has returned io.EOF.
func (r *Reader) Offset() int64 { return int64(r.offset) }

// TornTail reports whether the log ended in an incomplete record.
func (r *Reader) TornTail() bool { return r.torn }
