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
	if length > MaxPayload {
		return nil, base.Corruptf(r.name, int64(r.offset), "record length %d exceeds the %d-byte limit", length, MaxPayload)
	}
	end := HeaderLen + int(length)
	if end > rest {
		r.torn = true
		return nil, io.EOF
	}
	payload := h[HeaderLen:end:end]
	if checksum(payload, uint64(r.offset)) != binary.LittleEndian.Uint32(h[4:]) {
		if end == rest || allZero(h) {
			r.torn = true
			return nil, io.EOF
		}
		return nil, base.Corruptf(r.name, int64(r.offset), "record checksum mismatch (%d-byte payload, %d bytes follow)", length, rest-end)
	}
	r.offset += end
	return payload, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Offset is the end of the last record returned: the length of the valid log
// once Next has returned io.EOF.
func (r *Reader) Offset() int64 { return int64(r.offset) }

// TornTail reports whether the log ended in an incomplete record.
func (r *Reader) TornTail() bool { return r.torn }
