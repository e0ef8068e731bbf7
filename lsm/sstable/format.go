package sstable

import (
	"encoding/binary"
	"fmt"

	"github.com/zeebo/xxh3"
)

// Magic ends every table file ("tapewSST" little-endian).
const Magic uint64 = 0x5453537765706174

// FormatVersion is the table format this package writes and reads.
const FormatVersion uint32 = 1

// FooterLen is the fixed size of the footer at the end of every table.
const FooterLen = 64

// BlockTrailerLen is the kind byte and checksum after every block.
const BlockTrailerLen = 5

// BlockKind tags a block so that a handle pointing at the wrong block is
// caught by its checksum (the kind is part of the checksummed bytes).
type BlockKind uint8

// Block kinds.
const (
	KindData       BlockKind = 1
	KindIndex      BlockKind = 2
	KindFilter     BlockKind = 3
	KindProperties BlockKind = 4
	kindFooter     BlockKind = 5
)

func (k BlockKind) String() string {
	switch k {
	case KindData:
		return "data"
	case KindIndex:
		return "index"
	case KindFilter:
		return "filter"
	case KindProperties:
		return "properties"
	case kindFooter:
		return "footer"
	}
	return fmt.Sprintf("block-kind(%d)", uint8(k))
}

// Checksum is the checksum of a block of the given kind at offset in table
// fileNum. Seeding with the file number and offset makes a block copied to
// another place (a misdirected write, a stale file reused under a new number)
// fail verification even though its bytes are intact.
func Checksum(contents []byte, kind BlockKind, fileNum uint64, offset uint64) uint32 {
	seed := fileNum*0x9E3779B97F4A7C15 ^ offset*0xC2B2AE3D27D4EB4F ^ uint64(kind)<<56
	h := xxh3.HashSeed(contents, seed)
	return uint32(h ^ h>>32)
}

// Handle locates a block: its offset in the file and its length without the
// trailer.
type Handle struct {
	Offset, Length uint64
}

func appendHandle(dst []byte, h Handle) []byte {
	dst = binary.AppendUvarint(dst, h.Offset)
	return binary.AppendUvarint(dst, h.Length)
}

func decodeHandle(b []byte) (Handle, bool) {
	off, n1 := binary.Uvarint(b)
	if n1 <= 0 {
		return Handle{}, false
	}
	length, n2 := binary.Uvarint(b[n1:])
	if n2 <= 0 || n1+n2 != len(b) {
		return Handle{}, false
	}
	return Handle{off, length}, true
}

// footer is the fixed-size tail of a table:
//
//	0      filter handle   (offset u64, length u64)
//	16     index handle    (offset u64, length u64)
//	32     properties      (offset u64, length u64)
//	48     format version  u32
//	52     checksum u32 over bytes 0..52, seeded with file number and footer offset
//	56     magic u64
type footer struct {
	filter, index, properties Handle
	version                   uint32
}

func (f footer) encode(dst []byte, fileNum, offset uint64) []byte {
	start := len(dst)
	for _, h := range []Handle{f.filter, f.index, f.properties} {
		dst = binary.LittleEndian.AppendUint64(dst, h.Offset)
		dst = binary.LittleEndian.AppendUint64(dst, h.Length)
	}
	dst = binary.LittleEndian.AppendUint32(dst, f.version)
	dst = binary.LittleEndian.AppendUint32(dst, Checksum(dst[start:start+52], kindFooter, fileNum, offset))
	return binary.LittleEndian.AppendUint64(dst, Magic)
}

// decodeFooter parses and verifies the footer at the end of data.
func decodeFooter(data []byte, fileNum uint64) (footer, error) {
	if len(data) < FooterLen {
		return footer{}, fmt.Errorf("file of %d bytes is shorter than the %d-byte footer", len(data), FooterLen)
	}
	off := uint64(len(data) - FooterLen)
	b := data[off:]
	if m := binary.LittleEndian.Uint64(b[56:]); m != Magic {
		return footer{}, fmt.Errorf("bad magic %#x (want %#x)", m, Magic)
	}
	if want, got := Checksum(b[:52], kindFooter, fileNum, off), binary.LittleEndian.Uint32(b[52:]); want != got {
		return footer{}, fmt.Errorf("footer checksum %#08x, computed %#08x", got, want)
	}
	var f footer
	hs := []*Handle{&f.filter, &f.index, &f.properties}
	for i, h := range hs {
		h.Offset = binary.LittleEndian.Uint64(b[16*i:])
		h.Length = binary.LittleEndian.Uint64(b[16*i+8:])
		if h.Offset > off || h.Length > off-h.Offset || off-h.Offset-h.Length < BlockTrailerLen {
			return footer{}, fmt.Errorf("block handle %d {%d,%d} outside the %d bytes before the footer", i, h.Offset, h.Length, off)
		}
	}
	f.version = binary.LittleEndian.Uint32(b[48:])
	if f.version != FormatVersion {
		return footer{}, fmt.Errorf("format version %d, this build reads %d", f.version, FormatVersion)
	}
	return f, nil
}
