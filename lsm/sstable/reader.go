package sstable

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/tapewire/tapewire/lsm/bloom"
	"github.com/tapewire/tapewire/lsm/internal/base"
)

// Stats are counters a Reader bumps as it works. One Stats is usually shared
// by every table of a database; all fields are updated atomically.
type Stats struct {
	// BloomUseful counts point lookups the filter answered "absent".
	BloomUseful atomic.Uint64
	// BloomFalsePositive counts lookups the filter let through that found no
	// entry for the user key.
	BloomFalsePositive atomic.Uint64
	// ChecksumFailures counts blocks whose checksum did not match.
	ChecksumFailures atomic.Uint64
	// BlocksVerified counts blocks whose checksum was verified (each once).
	BlocksVerified atomic.Uint64
}

type indexEntry struct {
	sep    []byte // encoded internal key, a view into the file
	handle Handle
}

// Reader reads one table from its bytes (normally an mmap of the file). It
// never copies keys or values: everything it returns is a view into data,
// valid while data is. It is safe for concurrent use.
type Reader struct {
	name    string
	fileNum uint64
	data    []byte
	stats   *Stats

	index []indexEntry
	// fences[i] is 8 bytes of index[i]'s user key, big-endian, taken after
	// the prefix every separator shares (fencePrefix): a compact array the
	// index search narrows with integer compares before touching keys.
	fences      []uint64
	fencePrefix []byte
	filter      []byte
	props       Properties
	verified    []atomic.Bool
}

// Open parses the table in data: it verifies the footer, then the checksums
// of the index, filter and properties blocks, and decodes the index. Data
// blocks are verified lazily, the first time each is read. name is used in
// error messages; stats may be nil.
func Open(data []byte, fileNum uint64, name string, stats *Stats) (*Reader, error) {
	if stats == nil {
		stats = new(Stats)
	}
	r := &Reader{name: name, fileNum: fileNum, data: data, stats: stats}
	f, err := decodeFooter(data, fileNum)
	if err != nil {
		return nil, r.corrupt(int64(len(data))-FooterLen, "footer: %v", err)
	}
	filter, err := r.readBlock(f.filter, KindFilter)
	if err != nil {
		return nil, err
	}
	if len(filter) > 0 && !bloom.Valid(filter) {
		return nil, r.corrupt(int64(f.filter.Offset), "filter block of %d bytes is malformed", len(filter))
	}
	if len(filter) > 0 {
		r.filter = filter
	}
	propsBlock, err := r.readBlock(f.properties, KindProperties)
	if err != nil {
		return nil, err
	}
	if err := r.props.decode(propsBlock); err != nil {
		return nil, r.corrupt(int64(f.properties.Offset), "properties: %v", err)
	}
	indexBlock, err := r.readBlock(f.index, KindIndex)
	if err != nil {
		return nil, err
	}
	if err := r.decodeIndex(indexBlock, f); err != nil {
		return nil, r.corrupt(int64(f.index.Offset), "index: %v", err)
	}
	if uint64(len(r.index)) != r.props.NumDataBlocks {
		return nil, r.corrupt(int64(f.index.Offset), "index has %d entries, properties say %d data blocks", len(r.index), r.props.NumDataBlocks)
	}
	r.verified = make([]atomic.Bool, len(r.index))
	r.buildFences()
	return r, nil
}

func (r *Reader) buildFences() {
	if len(r.index) == 0 {
		return
	}
	first, last := base.UserKey(r.index[0].sep), base.UserKey(r.index[len(r.index)-1].sep)
	n := 0
	for n < len(first) && n < len(last) && first[n] == last[n] {
		n++
	}
	r.fencePrefix = first[:n:n]
	r.fences = make([]uint64, len(r.index))
	for i, e := range r.index {
		r.fences[i] = fence(base.UserKey(e.sep)[n:])
	}
}

// fenceLowerBound returns the first index whose fence is >= f, or
// len(fences). Hot path.
func fenceLowerBound(fences []uint64, f uint64) int {
	lo, hi := 0, len(fences)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if fences[m] < f {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// fence is the first 8 bytes of b, zero-padded, as a big-endian integer:
// fence(a) < fence(b) implies a < b bytewise.
func fence(b []byte) uint64 {
	if len(b) >= 8 {
		return binary.BigEndian.Uint64(b)
	}
	var buf [8]byte
	copy(buf[:], b)
	return binary.BigEndian.Uint64(buf[:])
}

func (r *Reader) decodeIndex(b []byte, f footer) error {
	var it blockIter
	if err := it.init(b); err != nil {
		return err
	}
	var prevEnd uint64
	for ok := it.first(); ok; ok = it.next() {
		h, good := decodeHandle(it.val)
		if !good {
			return fmt.Errorf("entry %d: bad block handle", len(r.index))
		}
		if h.Offset != prevEnd || h.Length > f.filter.Offset || h.Offset+h.Length+BlockTrailerLen > f.filter.Offset {
			return fmt.Errorf("entry %d: handle {%d,%d} out of order or beyond the data section (ends at %d)", len(r.index), h.Offset, h.Length, f.filter.Offset)
		}
		if len(r.index) > 0 && base.CompareInternal(r.index[len(r.index)-1].sep, it.key) >= 0 {
			return fmt.Errorf("entry %d: separators out of order", len(r.index))
		}
		prevEnd = h.Offset + h.Length + BlockTrailerLen
		// Index keys are all at restart points (interval 1): views, no copy.
		r.index = append(r.index, indexEntry{sep: it.key, handle: h})
	}
	if it.err != nil {
		return it.err
	}
	if prevEnd != f.filter.Offset {
		return fmt.Errorf("data blocks end at %d, filter starts at %d", prevEnd, f.filter.Offset)
	}
	return nil
}

func (r *Reader) corrupt(offset int64, format string, args ...any) error {
	return base.Corruptf(r.name, offset, format, args...)
}

// readBlock returns a block's contents after verifying its checksum.
func (r *Reader) readBlock(h Handle, kind BlockKind) ([]byte, error) {
	end := h.Offset + h.Length + BlockTrailerLen
	if h.Offset > uint64(len(r.data)) || end > uint64(len(r.data)) || end < h.Offset {
		return nil, r.corrupt(int64(h.Offset), "%s block {%d,%d} beyond the %d-byte file", kind, h.Offset, h.Length, len(r.data))
	}
	contents := r.data[h.Offset : h.Offset+h.Length : h.Offset+h.Length]
	trailer := r.data[h.Offset+h.Length : end]
	if BlockKind(trailer[0]) != kind {
		r.stats.ChecksumFailures.Add(1)
		return nil, r.corrupt(int64(h.Offset), "expected a %s block, found kind %d", kind, trailer[0])
	}
	if got, want := binary.LittleEndian.Uint32(trailer[1:]), Checksum(contents, kind, r.fileNum, h.Offset); got != want {
		r.stats.ChecksumFailures.Add(1)
		return nil, r.corrupt(int64(h.Offset), "%s block checksum %#08x, computed %#08x", kind, got, want)
	}
	r.stats.BlocksVerified.Add(1)
	return contents, nil
}

// dataBlock returns data block i, verifying its checksum on first touch.
func (r *Reader) dataBlock(i int) ([]byte, error) {
	h := r.index[i].handle
	if r.verified[i].Load() {
		return r.data[h.Offset : h.Offset+h.Length : h.Offset+h.Length], nil
	}
	b, err := r.readBlock(h, KindData)
	if err != nil {
		return nil, err
	}
	r.verified[i].Store(true)
	return b, nil
}

// Properties returns the table's properties (keys are views into the file).
func (r *Reader) Properties() *Properties { return &r.props }

// FileNum is the table's file number.
func (r *Reader) FileNum() uint64 { return r.fileNum }

// Name is the table's file name as given to Open.
func (r *Reader) Name() string { return r.name }

// Size is the table's size in bytes.
func (r *Reader) Size() int { return len(r.data) }

// findBlock returns the first data block whose separator is >= (ukey,
// trailer): the only block that can hold the first entry at or after it,
// except when every entry of that block is below it (then it is the next).
func (r *Reader) findBlock(ukey []byte, trailer uint64) int {
	lo, hi := 0, len(r.index)
	if r.fences != nil {
		// Every separator starts with fencePrefix: a key outside it is
		// before or after them all; inside it, the fences bound the range.
		p := r.fencePrefix
		if len(ukey) < len(p) || string(ukey[:len(p)]) != string(p) {
			if string(ukey) < string(p) {
				return 0
			}
			return len(r.index)
		}
		f := fence(ukey[len(p):])
		lo = fenceLowerBound(r.fences, f)
		hi = lo + fenceLowerBound(r.fences[lo:], f+1)
		if f == ^uint64(0) {
			hi = len(r.fences) // f+1 wrapped: every fence from lo on equals f
		}
		// Separators before lo are below the key and those from hi on above
		// it; the search below returns hi when all of [lo, hi) are below.
	}
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if base.CompareSearch(r.index[m].sep, ukey, trailer) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// GetScratch is the per-lookup working memory of Get (a block iterator and
// its key buffer). Keep one per goroutine, or in a sync.Pool, so that Get
// allocates nothing.
type GetScratch struct {
	it blockIter
}

// MayContain consults the filter for a user key hash. It counts a useful
// negative in the stats.
func (r *Reader) MayContain(hash uint64) bool {
	if r.filter == nil || bloom.MayContain(r.filter, hash) {
		return true
	}
	r.stats.BloomUseful.Add(1)
	return false
}

// Get finds the newest entry for ukey with a sequence number below seqLimit.
// hash is bloom.Hash(ukey); the filter is checked before any data block.
// value is a view into the table's data. Hot path: no allocation.
func (r *Reader) Get(ukey []byte, hash uint64, seqLimit base.SeqNum, s *GetScratch) (value []byte, kind base.Kind, found bool, err error) {
	if !r.MayContain(hash) {
		return nil, 0, false, nil
	}
	trailer := base.MakeTrailer(seqLimit-1, base.KindMax)
	for i := r.findBlock(ukey, trailer); i < len(r.index); i++ {
		b, err := r.dataBlock(i)
		if err != nil {
			return nil, 0, false, err
		}
		it := &s.it
		if err := it.init(b); err != nil {
			return nil, 0, false, r.corrupt(int64(r.index[i].handle.Offset), "data block: %v", err)
		}
		if it.seekGE(ukey, trailer) {
			if !it.keyEqualUser(ukey) {
				break
			}
			return it.val, base.TrailerKind(base.Trailer(it.key)), true, nil
		}
		if it.err != nil {
			return nil, 0, false, r.corrupt(int64(r.index[i].handle.Offset), "data block: %v", it.err)
		}
	}
	if r.filter != nil {
		r.stats.BloomFalsePositive.Add(1)
	}
	return nil, 0, false, nil
}

// Iter is a bidirectional iterator over a table's entries in internal key
// order. Keys and values are views into the table (a key between restart
// points lives in the iterator's buffer and is valid until the next move).
type Iter struct {
	r     *Reader
	block int
	it    blockIter
	err   error
}

// NewIter returns an unpositioned iterator.
func (r *Reader) NewIter() *Iter {
	return &Iter{r: r, block: -1}
}

// Init re-points an iterator at r without allocating.
func (i *Iter) Init(r *Reader) { *i = Iter{r: r, block: -1, it: blockIter{keyBuf: i.it.keyBuf[:0]}} }

// Release drops the iterator's reference to its table (keeping its buffer),
// so a recycled Iter does not keep a closed table's memory reachable.
func (i *Iter) Release() { i.Init(nil) }

func (i *Iter) load(b int) bool {
	i.block = b
	if b < 0 || b >= len(i.r.index) {
		i.it.valid = false
		return false
	}
	data, err := i.r.dataBlock(b)
	if err != nil {
		i.err = err
		i.it.valid = false
		return false
	}
	if err := i.it.init(data); err != nil {
		i.err = i.r.corrupt(int64(i.r.index[b].handle.Offset), "data block: %v", err)
		return false
	}
	return true
}

func (i *Iter) checkBlockErr() bool {
	if i.it.err != nil {
		i.err = i.r.corrupt(int64(i.r.index[i.block].handle.Offset), "data block: %v", i.it.err)
		return true
	}
	return false
}

// Valid reports whether the iterator is at an entry.
func (i *Iter) Valid() bool { return i.err == nil && i.it.valid }

// Key is the current encoded internal key.
func (i *Iter) Key() []byte { return i.it.key }

// Value is the current value.
func (i *Iter) Value() []byte { return i.it.val }

// Error is the first error met (a corruption error naming file and offset).
func (i *Iter) Error() error { return i.err }

// First moves to the first entry.
func (i *Iter) First() bool {
	i.err = nil
	for b := 0; i.load(b); b++ {
		if i.it.first() {
			return true
		}
		if i.checkBlockErr() {
			return false
		}
	}
	return false
}

// Last moves to the last entry.
func (i *Iter) Last() bool {
	i.err = nil
	for b := len(i.r.index) - 1; i.load(b); b-- {
		if i.it.last() {
			return true
		}
		if i.checkBlockErr() {
			return false
		}
	}
	return false
}

// Next moves to the following entry.
func (i *Iter) Next() bool {
	if !i.Valid() {
		return false
	}
	if i.it.next() {
		return true
	}
	if i.checkBlockErr() {
		return false
	}
	for b := i.block + 1; i.load(b); b++ {
		if i.it.first() {
			return true
		}
		if i.checkBlockErr() {
			return false
		}
	}
	return false
}

// Prev moves to the preceding entry.
func (i *Iter) Prev() bool {
	if !i.Valid() {
		return false
	}
	if i.it.prev() {
		return true
	}
	if i.checkBlockErr() {
		return false
	}
	for b := i.block - 1; i.load(b); b-- {
		if i.it.last() {
			return true
		}
		if i.checkBlockErr() {
			return false
		}
	}
	return false
}

// SeekGE moves to the first entry >= (ukey, trailer).
func (i *Iter) SeekGE(ukey []byte, trailer uint64) bool {
	i.err = nil
	for b := i.r.findBlock(ukey, trailer); i.load(b); b++ {
		if i.it.seekGE(ukey, trailer) {
			return true
		}
		if i.checkBlockErr() {
			return false
		}
	}
	return false
}

// SeekLT moves to the last entry < (ukey, trailer).
func (i *Iter) SeekLT(ukey []byte, trailer uint64) bool {
	i.err = nil
	b := i.r.findBlock(ukey, trailer)
	if b == len(i.r.index) {
		return i.Last()
	}
	if i.load(b) && i.it.seekLT(ukey, trailer) {
		return true
	}
	if i.err != nil || i.checkBlockErr() {
		return false
	}
	for b--; i.load(b); b-- {
		if i.it.last() {
			return true
		}
		if i.checkBlockErr() {
			return false
		}
	}
	return false
}
