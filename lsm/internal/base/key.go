package base

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Kind is the type of an entry: what the value means.
type Kind uint8

// Kinds stored in the trailer. The numeric values are part of the on-disk
// format and never change.
const (
	// KindDelete is a point tombstone: the key has no value as of this seqnum.
	KindDelete Kind = 0
	// KindSet is a put: the value is the key's value as of this seqnum.
	KindSet Kind = 1
	// KindMax is the largest kind; a search key carries it so that it sorts
	// before every real entry of the same user key and seqnum.
	KindMax Kind = 1
)

func (k Kind) String() string {
	switch k {
	case KindDelete:
		return "DEL"
	case KindSet:
		return "SET"
	}
	return fmt.Sprintf("KIND(%d)", uint8(k))
}

// SeqNum is a 56-bit sequence number.
type SeqNum uint64

// SeqNumMax is the largest sequence number; a search key at SeqNumMax sorts
// before every stored version of its user key.
const SeqNumMax SeqNum = 1<<56 - 1

// TrailerLen is the size of the trailer appended to a user key.
const TrailerLen = 8

// MakeTrailer packs a sequence number and kind.
func MakeTrailer(seq SeqNum, kind Kind) uint64 { return uint64(seq)<<8 | uint64(kind) }

// TrailerSeq extracts the sequence number of a trailer.
func TrailerSeq(t uint64) SeqNum { return SeqNum(t >> 8) }

// TrailerKind extracts the kind of a trailer.
func TrailerKind(t uint64) Kind { return Kind(t & 0xff) }

// AppendInternalKey appends the encoding of (ukey, seq, kind) to dst.
func AppendInternalKey(dst, ukey []byte, seq SeqNum, kind Kind) []byte {
	dst = append(dst, ukey...)
	return binary.LittleEndian.AppendUint64(dst, MakeTrailer(seq, kind))
}

// DecodeInternalKey splits an encoded internal key. ok is false when the
// encoding is shorter than a trailer.
func DecodeInternalKey(ikey []byte) (ukey []byte, trailer uint64, ok bool) {
	n := len(ikey) - TrailerLen
	if n < 0 {
		return nil, 0, false
	}
	return ikey[:n:n], binary.LittleEndian.Uint64(ikey[n:]), true
}

// UserKey returns the user-key part of a valid encoded internal key.
func UserKey(ikey []byte) []byte { n := len(ikey) - TrailerLen; return ikey[:n:n] }

// Trailer returns the trailer of a valid encoded internal key.
func Trailer(ikey []byte) uint64 { return binary.LittleEndian.Uint64(ikey[len(ikey)-TrailerLen:]) }

// CompareInternal orders two valid encoded internal keys: user key ascending,
// then trailer descending. Hot path: no allocation.
func CompareInternal(a, b []byte) int {
	na, nb := len(a)-TrailerLen, len(b)-TrailerLen
	if c := bytes.Compare(a[:na], b[:nb]); c != 0 {
		return c
	}
	ta, tb := binary.LittleEndian.Uint64(a[na:]), binary.LittleEndian.Uint64(b[nb:])
	switch {
	case ta > tb:
		return -1
	case ta < tb:
		return 1
	}
	return 0
}

// CompareSearch orders a stored internal key against a search key given as
// (user key, trailer) without encoding the search key. Hot path.
func CompareSearch(ikey, ukey []byte, trailer uint64) int {
	n := len(ikey) - TrailerLen
	if c := bytes.Compare(ikey[:n], ukey); c != 0 {
		return c
	}
	t := binary.LittleEndian.Uint64(ikey[n:])
	switch {
	case t > trailer:
		return -1
	case t < trailer:
		return 1
	}
	return 0
}

// FormatKey renders an internal key for errors and debugging.
func FormatKey(ikey []byte) string {
	ukey, t, ok := DecodeInternalKey(ikey)
	if !ok {
		return fmt.Sprintf("<malformed %x>", ikey)
	}
	return fmt.Sprintf("%q#%d,%s", ukey, TrailerSeq(t), TrailerKind(t))
}
