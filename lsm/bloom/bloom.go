package bloom

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/zeebo/xxh3"
)

const (
	lineBytes = 64
	lineBits  = lineBytes * 8
	maxProbes = 30
)

// Hash is the 64-bit hash of a key that MayContain probes with. Compute it
// once per lookup and probe every table with it.
func Hash(key []byte) uint64 { return xxh3.Hash(key) }

// Writer accumulates the hashes of a table's user keys.
type Writer struct {
	bitsPerKey int
	hashes     []uint64
}

// NewWriter returns a Writer that sizes its filter at bitsPerKey bits per
// distinct key (10 gives about 1 % false positives).
func NewWriter(bitsPerKey int) (*Writer, error) {
	if bitsPerKey < 1 || bitsPerKey > 64 {
		return nil, fmt.Errorf("bloom: %d bits per key is outside 1..64", bitsPerKey)
	}
	return &Writer{bitsPerKey: bitsPerKey}, nil
}

// Add records a key. Consecutive equal keys (versions of one user key arrive
// together in a sorted table) are counted once.
func (w *Writer) Add(key []byte) {
	h := Hash(key)
	if n := len(w.hashes); n > 0 && w.hashes[n-1] == h {
		return
	}
	w.hashes = append(w.hashes, h)
}

// Len is the number of distinct keys added so far.
func (w *Writer) Len() int { return len(w.hashes) }

// Finish appends the filter to dst and resets the Writer for reuse.
func (w *Writer) Finish(dst []byte) []byte {
	n := len(w.hashes)
	if n == 0 {
		return append(dst, 0)
	}
	totalBits := n * w.bitsPerKey
	lines := (totalBits + lineBits - 1) / lineBits
	probes := probesFor(w.bitsPerKey)
	start := len(dst)
	dst = append(dst, make([]byte, lines*lineBytes+1)...)
	filter := dst[start : start+lines*lineBytes]
	for _, h := range w.hashes {
		line := fastRange(uint32(h>>32), uint32(lines))
		base := filter[line*lineBytes : (line+1)*lineBytes]
		lo := uint32(h)
		delta := bits.RotateLeft32(lo, -15) | 1
		for p := 0; p < probes; p++ {
			bit := lo % lineBits
			word := base[(bit/32)*4:]
			binary.LittleEndian.PutUint32(word, binary.LittleEndian.Uint32(word)|1<<(bit%32))
			lo += delta
		}
	}
	dst[len(dst)-1] = byte(probes)
	w.hashes = w.hashes[:0]
	return dst
}

// probesFor is ln 2 × bits per key, rounded, which minimises the
// false-positive rate of a classic Bloom filter.
func probesFor(bitsPerKey int) int {
	p := (bitsPerKey*69 + 50) / 100
	if p < 1 {
		p = 1
	}
	if p > maxProbes {
		p = maxProbes
	}
	return p
}

// fastRange maps x uniformly onto [0, n) without a division.
func fastRange(x, n uint32) int { return int((uint64(x) * uint64(n)) >> 32) }

// Valid reports whether filter is well formed.
func Valid(filter []byte) bool {
	if len(filter) == 1 && filter[0] == 0 {
		return true
	}
	if len(filter) < lineBytes+1 || (len(filter)-1)%lineBytes != 0 {
		return false
	}
	p := filter[len(filter)-1]
	return p >= 1 && p <= maxProbes
}

// MayContain reports whether the key with hash h may be in the set the filter
// was built from. A false answer is certain. Hot path: no allocation, one
// cache line read.
func MayContain(filter []byte, h uint64) bool {
	if len(filter) == 1 && filter[0] == 0 {
		return false
	}
	if !Valid(filter) {
		return true
	}
	lines := (len(filter) - 1) / lineBytes
	probes := int(filter[len(filter)-1])
	line := fastRange(uint32(h>>32), uint32(lines))
	base := filter[line*lineBytes : (line+1)*lineBytes]
	lo := uint32(h)
	delta := bits.RotateLeft32(lo, -15) | 1
	for p := 0; p < probes; p++ {
		bit := lo % lineBits
		if binary.LittleEndian.Uint32(base[(bit/32)*4:])&(1<<(bit%32)) == 0 {
			return false
		}
		lo += delta
	}
	return true
}
