package sstable

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tapewire/tapewire/lsm/internal/base"
)

// blockWriter builds one block: prefix-compressed entries and a restart array.
type blockWriter struct {
	restartInterval int
	buf             []byte
	restarts        []uint32
	lastKey         []byte
	entries         int
	sinceRestart    int
}

func (w *blockWriter) reset() {
	w.buf = w.buf[:0]
	w.restarts = w.restarts[:0]
	w.lastKey = w.lastKey[:0]
	w.entries = 0
	w.sinceRestart = 0
}

func (w *blockWriter) add(key, value []byte) {
	shared := 0
	if w.sinceRestart == w.restartInterval || w.entries == 0 {
		w.restarts = append(w.restarts, uint32(len(w.buf)))
		w.sinceRestart = 0
	} else {
		n := min(len(key), len(w.lastKey))
		for shared < n && key[shared] == w.lastKey[shared] {
			shared++
		}
	}
	w.buf = binary.AppendUvarint(w.buf, uint64(shared))
	w.buf = binary.AppendUvarint(w.buf, uint64(len(key)-shared))
	w.buf = binary.AppendUvarint(w.buf, uint64(len(value)))
	w.buf = append(w.buf, key[shared:]...)
	w.buf = append(w.buf, value...)
	w.lastKey = append(w.lastKey[:0], key...)
	w.entries++
	w.sinceRestart++
}

// estimatedSize is the block's size if finished now.
func (w *blockWriter) estimatedSize() int { return len(w.buf) + 4*len(w.restarts) + 4 }

// finish appends the restart array and returns the block contents (valid
// until the next reset).
func (w *blockWriter) finish() []byte {
	for _, r := range w.restarts {
		w.buf = binary.LittleEndian.AppendUint32(w.buf, r)
	}
	return binary.LittleEndian.AppendUint32(w.buf, uint32(len(w.restarts)))
}

// errBlockFormat marks a structurally invalid block; the table reader wraps
// it into a CorruptionError naming the file and offset.
var errBlockFormat = errors.New("malformed block")

// blockIter walks one block. Keys at restart points are stored whole and
// returned as views into the block; keys between restarts are rebuilt in
// keyBuf. Values are always views into the block.
type blockIter struct {
	data        []byte // entries only (restart array excluded)
	restarts    []byte // numRestarts × u32
	numRestarts int
	offset      int // current entry; == len(data) when exhausted forward
	nextOffset  int
	key         []byte
	keyBuf      []byte
	val         []byte
	valid       bool
	err         error
}

// init points the iterator at block contents b (restart array included).
func (i *blockIter) init(b []byte) error {
	if len(b) < 4 {
		return fmt.Errorf("%w: %d bytes is too short for a restart count", errBlockFormat, len(b))
	}
	n := int(binary.LittleEndian.Uint32(b[len(b)-4:]))
	if n == 0 || n > (len(b)-4)/4 {
		return fmt.Errorf("%w: %d restarts in a %d-byte block", errBlockFormat, n, len(b))
	}
	restartsStart := len(b) - 4 - 4*n
	*i = blockIter{data: b[:restartsStart], restarts: b[restartsStart : len(b)-4], numRestarts: n, keyBuf: i.keyBuf[:0]}
	return nil
}

func (i *blockIter) restartOffset(r int) int {
	return int(binary.LittleEndian.Uint32(i.restarts[4*r:]))
}

// decodeAt parses the entry at off, whose predecessor's key is in i.key (used
// for the shared prefix). It sets key, val, nextOffset.
func (i *blockIter) decodeAt(off int) bool {
	if off >= len(i.data) {
		i.valid = false
		i.offset = len(i.data)
		return false
	}
	p := i.data[off:]
	shared, n1 := binary.Uvarint(p)
	unshared, n2 := 0, 0
	var vlen uint64
	var u uint64
	if n1 > 0 {
		u, n2 = binary.Uvarint(p[n1:])
		unshared = int(u)
	}
	var n3 int
	if n1 > 0 && n2 > 0 {
		vlen, n3 = binary.Uvarint(p[n1+n2:])
	}
	if n1 <= 0 || n2 <= 0 || n3 <= 0 {
		return i.fail("bad entry header at %d", off)
	}
	h := n1 + n2 + n3
	if u > uint64(len(p)) || vlen > uint64(len(p)) || uint64(h)+u+vlen > uint64(len(p)) || shared > uint64(len(i.key)) {
		return i.fail("entry at %d overruns the block (shared %d unshared %d value %d)", off, shared, u, vlen)
	}
	delta := p[h : h+unshared]
	if shared == 0 {
		i.key = delta
	} else {
		i.keyBuf = append(append(i.keyBuf[:0], i.key[:shared]...), delta...)
		i.key = i.keyBuf
	}
	if len(i.key) < base.TrailerLen {
		return i.fail("key of %d bytes at %d is shorter than a trailer", len(i.key), off)
	}
	i.val = p[h+unshared : h+unshared+int(vlen)]
	i.offset = off
	i.nextOffset = off + h + unshared + int(vlen)
	i.valid = true
	return true
}

func (i *blockIter) fail(format string, args ...any) bool {
	i.err = fmt.Errorf("%w: "+format, append([]any{errBlockFormat}, args...)...)
	i.valid = false
	return false
}

// decodeRestart positions at restart r (a whole key).
func (i *blockIter) decodeRestart(r int) bool {
	off := i.restartOffset(r)
	if off > len(i.data) {
		return i.fail("restart %d points to %d beyond %d", r, off, len(i.data))
	}
	i.key = nil
	return i.decodeAt(off)
}

// restartKey returns the whole key stored at restart r, or nil on damage.
func (i *blockIter) restartKey(r int) []byte {
	off := i.restartOffset(r)
	if off >= len(i.data) {
		return nil
	}
	p := i.data[off:]
	shared, n1 := binary.Uvarint(p)
	if n1 <= 0 || shared != 0 {
		return nil
	}
	unshared, n2 := binary.Uvarint(p[n1:])
	if n2 <= 0 {
		return nil
	}
	_, n3 := binary.Uvarint(p[n1+n2:])
	if n3 <= 0 {
		return nil
	}
	h := n1 + n2 + n3
	if unshared > uint64(len(p)-h) || unshared < base.TrailerLen {
		return nil
	}
	return p[h : h+int(unshared)]
}

func (i *blockIter) first() bool { return i.decodeRestart(0) }

func (i *blockIter) next() bool {
	if !i.valid {
		return false
	}
	return i.decodeAt(i.nextOffset)
}

func (i *blockIter) last() bool {
	if !i.decodeRestart(i.numRestarts - 1) {
		return false
	}
	for i.nextOffset < len(i.data) {
		if !i.decodeAt(i.nextOffset) {
			return false
		}
	}
	return true
}

// prev moves to the entry before the current one by rescanning from the
// nearest earlier restart point.
func (i *blockIter) prev() bool {
	if !i.valid {
		return false
	}
	target := i.offset
	if target == 0 {
		i.valid = false
		return false
	}
	// The last restart strictly before target.
	lo, hi := 0, i.numRestarts
	for lo < hi {
		m := (lo + hi) / 2
		if i.restartOffset(m) < target {
			lo = m + 1
		} else {
			hi = m
		}
	}
	r := lo - 1
	if r < 0 {
		return i.fail("no restart point before entry at %d", target)
	}
	if !i.decodeRestart(r) {
		return false
	}
	for i.nextOffset < target {
		if !i.decodeAt(i.nextOffset) {
			return false
		}
	}
	return true
}

// searchRestarts returns the last restart whose key is < (ukey, trailer), or
// 0 if none is.
func (i *blockIter) searchRestarts(ukey []byte, trailer uint64) (int, bool) {
	lo, hi := 0, i.numRestarts
	for lo < hi {
		m := (lo + hi) / 2
		k := i.restartKey(m)
		if k == nil {
			i.fail("damaged restart %d", m)
			return 0, false
		}
		if base.CompareSearch(k, ukey, trailer) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo > 0 {
		lo--
	}
	return lo, true
}

// seekGE moves to the first entry >= (ukey, trailer). Hot path.
func (i *blockIter) seekGE(ukey []byte, trailer uint64) bool {
	r, ok := i.searchRestarts(ukey, trailer)
	if !ok || !i.decodeRestart(r) {
		return false
	}
	for base.CompareSearch(i.key, ukey, trailer) < 0 {
		if !i.decodeAt(i.nextOffset) {
			return false
		}
	}
	return true
}

// seekLT moves to the last entry < (ukey, trailer).
func (i *blockIter) seekLT(ukey []byte, trailer uint64) bool {
	if i.seekGE(ukey, trailer) {
		return i.prev()
	}
	if i.err != nil {
		return false
	}
	return i.last()
}

// keyEqualUser reports whether the current entry's user key is ukey.
func (i *blockIter) keyEqualUser(ukey []byte) bool {
	return bytes.Equal(base.UserKey(i.key), ukey)
}
