package lsm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tapewire/tapewire/lsm/internal/arenabt"
	"github.com/tapewire/tapewire/lsm/internal/base"
)

// Batch is an ordered set of puts and deletes applied atomically: readers see
// all of it or none of it. A Batch is built by one goroutine; after Apply it
// may be Reset and reused.
//
// Encoding (also the standalone WAL record payload):
//
//	header: first seqnum u64 LE | count u32 LE
//	entry:  kind u8 | key length uvarint | key | [value length uvarint | value]
//	        (the value part only for SET)
type Batch struct {
	data []byte
	// memBytes is the worst-case arena space the batch needs.
	memBytes uint64
	st       batchState
}

const batchHeaderLen = 12

// MaxBatchBytes bounds one batch's encoding.
const MaxBatchBytes = 512 << 20

func (b *Batch) init() {
	if len(b.data) == 0 {
		b.data = append(b.data[:0], make([]byte, batchHeaderLen)...)
	}
}

// Set adds a put of key → value.
func (b *Batch) Set(key, value []byte) {
	b.init()
	b.data = append(b.data, byte(base.KindSet))
	b.data = binary.AppendUvarint(b.data, uint64(len(key)))
	b.data = append(b.data, key...)
	b.data = binary.AppendUvarint(b.data, uint64(len(value)))
	b.data = append(b.data, value...)
	b.memBytes += arenabt.MaxNodeSize(len(key)+base.TrailerLen, len(value))
	b.setCount(b.Count() + 1)
}

// Delete adds a deletion of key.
func (b *Batch) Delete(key []byte) {
	b.init()
	b.data = append(b.data, byte(base.KindDelete))
	b.data = binary.AppendUvarint(b.data, uint64(len(key)))
	b.data = append(b.data, key...)
	b.memBytes += arenabt.MaxNodeSize(len(key)+base.TrailerLen, 0)
	b.setCount(b.Count() + 1)
}

// Count is the number of entries.
func (b *Batch) Count() uint32 {
	if len(b.data) < batchHeaderLen {
		return 0
	}
	return binary.LittleEndian.Uint32(b.data[8:])
}

func (b *Batch) setCount(n uint32) { binary.LittleEndian.PutUint32(b.data[8:], n) }

func (b *Batch) seq() base.SeqNum { return base.SeqNum(binary.LittleEndian.Uint64(b.data)) }

func (b *Batch) setSeq(s base.SeqNum) { binary.LittleEndian.PutUint64(b.data, uint64(s)) }

// MemTableBytes is the most memtable arena space the batch takes when
// applied (an apply reserves it up front, and fails if it exceeds
// Options.MemTableSizeBytes): a caller grouping many writes into one batch
// can cut it well below the memtable size.
func (b *Batch) MemTableBytes() uint64 { return b.memBytes }

// Len is the size of the batch's encoding in bytes.
func (b *Batch) Len() int { return len(b.data) }

// Empty reports whether the batch holds no entry.
func (b *Batch) Empty() bool { return b.Count() == 0 }

// Reset empties the batch, keeping its buffer.
func (b *Batch) Reset() {
	b.data = b.data[:0]
	b.memBytes = 0
}

var errBatchFormat = errors.New("malformed batch")

// batchReader walks a batch's entries.
type batchReader struct {
	data []byte
	left uint32
}

func newBatchReader(data []byte) (batchReader, error) {
	if len(data) < batchHeaderLen {
		return batchReader{}, fmt.Errorf("%w: %d bytes is shorter than the %d-byte header", errBatchFormat, len(data), batchHeaderLen)
	}
	return batchReader{data: data[batchHeaderLen:], left: binary.LittleEndian.Uint32(data[8:])}, nil
}

// next returns the next entry; ok is false at the end. Hot path.
func (r *batchReader) next() (kind base.Kind, key, value []byte, ok bool, err error) {
	if r.left == 0 {
		if len(r.data) != 0 {
			return 0, nil, nil, false, fmt.Errorf("%w: %d bytes after the last entry", errBatchFormat, len(r.data))
		}
		return 0, nil, nil, false, nil
	}
	if len(r.data) < 1 {
		return 0, nil, nil, false, fmt.Errorf("%w: truncated entry", errBatchFormat)
	}
	kind = base.Kind(r.data[0])
	p := r.data[1:]
	klen, n := binary.Uvarint(p)
	if n <= 0 || klen > uint64(len(p)-n) {
		return 0, nil, nil, false, fmt.Errorf("%w: bad key length", errBatchFormat)
	}
	key = p[n : n+int(klen)]
	p = p[n+int(klen):]
	switch kind {
	case base.KindSet:
		vlen, n := binary.Uvarint(p)
		if n <= 0 || vlen > uint64(len(p)-n) {
			return 0, nil, nil, false, fmt.Errorf("%w: bad value length", errBatchFormat)
		}
		value = p[n : n+int(vlen)]
		p = p[n+int(vlen):]
	case base.KindDelete:
	default:
		return 0, nil, nil, false, fmt.Errorf("%w: unknown kind %d", errBatchFormat, kind)
	}
	r.data = p
	r.left--
	return kind, key, value, true, nil
}
