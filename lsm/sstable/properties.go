package sstable

import (
	"encoding/binary"
	"fmt"

	"github.com/tapewire/tapewire/lsm/internal/base"
)

// Properties describe a table; they are stored in its properties block and
// returned by Writer.Finish.
type Properties struct {
	NumEntries      uint64
	NumDeletions    uint64
	NumDataBlocks   uint64
	RawKeyBytes     uint64
	RawValueBytes   uint64
	DataBytes       uint64
	IndexBytes      uint64
	FilterBytes     uint64
	SmallestSeq     base.SeqNum
	LargestSeq      base.SeqNum
	BlockSize       uint64
	RestartInterval uint64
	BloomBitsPerKey uint64
	// SmallestKey and LargestKey are encoded internal keys.
	SmallestKey []byte
	LargestKey  []byte
}

// propertiesFieldCount is the number of uvarint fields before the keys. A
// later version may append fields; a reader ignores a count above its own.
const propertiesFieldCount = 13

func (p *Properties) fields() []*uint64 {
	return []*uint64{&p.NumEntries, &p.NumDeletions, &p.NumDataBlocks, &p.RawKeyBytes, &p.RawValueBytes,
		&p.DataBytes, &p.IndexBytes, &p.FilterBytes, (*uint64)(&p.SmallestSeq), (*uint64)(&p.LargestSeq),
		&p.BlockSize, &p.RestartInterval, &p.BloomBitsPerKey}
}

// encode: count uvarint, count × uvarint fields, then smallest and largest
// key, each uvarint length + bytes.
func (p *Properties) encode(dst []byte) []byte {
	fs := p.fields()
	dst = binary.AppendUvarint(dst, uint64(len(fs)))
	for _, f := range fs {
		dst = binary.AppendUvarint(dst, *f)
	}
	dst = binary.AppendUvarint(dst, uint64(len(p.SmallestKey)))
	dst = append(dst, p.SmallestKey...)
	dst = binary.AppendUvarint(dst, uint64(len(p.LargestKey)))
	return append(dst, p.LargestKey...)
}

func (p *Properties) decode(b []byte) error {
	count, n := binary.Uvarint(b)
	if n <= 0 || count < propertiesFieldCount || count > 1024 {
		return fmt.Errorf("properties field count %d (need %d..1024)", count, propertiesFieldCount)
	}
	b = b[n:]
	fs := p.fields()
	for i := uint64(0); i < count; i++ {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return fmt.Errorf("properties field %d truncated", i)
		}
		if i < uint64(len(fs)) {
			*fs[i] = v
		}
		b = b[n:]
	}
	for _, k := range []*[]byte{&p.SmallestKey, &p.LargestKey} {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return fmt.Errorf("properties key truncated")
		}
		*k = b[n : n+int(l) : n+int(l)]
		b = b[n+int(l):]
	}
	if p.NumEntries > 0 && (len(p.SmallestKey) < base.TrailerLen || len(p.LargestKey) < base.TrailerLen) {
		return fmt.Errorf("properties key bounds shorter than a trailer")
	}
	return nil
}
