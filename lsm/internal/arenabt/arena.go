package arenabt

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"unsafe"
)

// ErrArenaFull is returned (wrapped, with the sizes) by Add when the arena
// has no room for the entry and the index nodes its insertion needs.
var ErrArenaFull = errors.New("arenabt: arena full")

// MaxArenaSize is the largest arena a uint32 offset can address.
const MaxArenaSize = math.MaxUint32

const (
	entryAlign = 4  // entries: 4-byte aligned from the front
	nodeAlign  = 64 // nodes: cache-line aligned from the back
)

// Arena is a fixed-size allocator with two bump pointers: entries (key and
// value) grow up from the front, index nodes grow down from the back, so
// every node is cache-line aligned without padding and every entry is
// 4-byte aligned. It is full when the two meet. Only the Tree's writer
// (under the Tree's mutex) allocates; Size may be read from any goroutine.
type Arena struct {
	buf  []byte
	base unsafe.Pointer // &buf[0]
	next uint64         // next free entry offset (writer only)
	// front is next rounded up to a frontStep, for Size: publishing it in
	// steps keeps an atomic store (a locked instruction on amd64) off the
	// insert path.
	front atomic.Uint64
	back  atomic.Uint64 // lowest allocated node offset
	start uint64        // next at creation
	top   uint64        // back at creation
}

// frontStep is the granularity in which entry space shows in Size.
const frontStep = 64 << 10

// NewArena returns an arena over buf (which may hold old data: nothing is
// read before it is written). Offset 0 is reserved as nil; a few bytes at
// either end may be left unused to align entries and nodes.
func NewArena(buf []byte) (*Arena, error) {
	if uint64(len(buf)) > MaxArenaSize {
		return nil, fmt.Errorf("arenabt: arena of %d bytes exceeds the %d-byte limit of uint32 offsets", len(buf), uint64(MaxArenaSize))
	}
	if len(buf) < 2*nodeAlign+entryAlign {
		return nil, fmt.Errorf("arenabt: arena of %d bytes is below the %d-byte minimum", len(buf), 2*nodeAlign+entryAlign)
	}
	a := &Arena{buf: buf, base: unsafe.Pointer(&buf[0])}
	addr := uint64(uintptr(a.base))
	// The first entry offset: at least entryAlign (0 is nil), aligned by
	// address so 4-byte fields are naturally aligned.
	start := (addr+entryAlign+entryAlign-1)&^(entryAlign-1) - addr
	top := (addr+uint64(len(buf)))&^(nodeAlign-1) - addr
	a.start, a.top = start, top
	a.next = start
	a.front.Store(start)
	a.back.Store(top)
	return a, nil
}

// Size is the number of bytes allocated so far, including the unused bytes
// at either end. While entries are being added it may run ahead of the
// exact figure by less than 64 KiB (see frontStep); it never exceeds
// Capacity.
func (a *Arena) Size() uint64 {
	return min(a.front.Load()+uint64(len(a.buf))-a.back.Load(), uint64(len(a.buf)))
}

// exactSize is Size without the step (writer only).
func (a *Arena) exactSize() uint64 { return a.next + uint64(len(a.buf)) - a.back.Load() }

// Capacity is the arena's size in bytes.
func (a *Arena) Capacity() uint64 { return uint64(len(a.buf)) }

// arenaMark is a saved allocation state; rollback returns to it.
type arenaMark struct{ front, back uint64 }

func (a *Arena) mark() arenaMark { return arenaMark{a.next, a.back.Load()} }

// rollback frees everything allocated since m. Only for allocations that
// were never published to readers.
func (a *Arena) rollback(m arenaMark) {
	a.next = m.front
	a.back.Store(m.back)
}

// allocEntry reserves size bytes (a multiple of entryAlign) at the front.
func (a *Arena) allocEntry(size uint64) (uint32, bool) {
	f := a.next
	if f+size > a.back.Load() {
		return 0, false
	}
	a.next = f + size
	if a.next > a.front.Load() {
		a.front.Store((a.next + frontStep - 1) &^ (frontStep - 1))
	}
	return uint32(f), true
}

// allocNode reserves size bytes (a multiple of nodeAlign) at the back.
func (a *Arena) allocNode(size uint64) (uint32, bool) {
	b := a.back.Load()
	if b < size || b-size < a.next {
		return 0, false
	}
	a.back.Store(b - size)
	return uint32(b - size), true
}

func (a *Arena) u16(off uint32) *uint16 { return (*uint16)(unsafe.Add(a.base, off)) }
func (a *Arena) u32(off uint32) *uint32 { return (*uint32)(unsafe.Add(a.base, off)) }
func (a *Arena) u64(off uint32) *uint64 { return (*uint64)(unsafe.Add(a.base, off)) }

func (a *Arena) bytes(off, n uint32) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(a.base, off)), n)
}
