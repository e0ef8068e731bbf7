package arenaskl

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"unsafe"
)

// ErrArenaFull is returned by Add when the arena has no room for the node.
var ErrArenaFull = errors.New("arenaskl: arena full")

// MaxArenaSize is the largest arena a uint32 offset can address.
const MaxArenaSize = math.MaxUint32

const nodeAlign = 4

// Arena is a fixed-size bump allocator. Allocation is a single atomic add.
type Arena struct {
	used atomic.Uint64
	buf  []byte
}

// NewArena returns an arena over buf (which may hold old data: nothing is
// read before it is written). The first bytes are reserved so that offset 0
// can mean nil.
func NewArena(buf []byte) (*Arena, error) {
	if uint64(len(buf)) > MaxArenaSize {
		return nil, fmt.Errorf("arenaskl: arena of %d bytes exceeds the %d-byte limit of uint32 offsets", len(buf), uint64(MaxArenaSize))
	}
	a := &Arena{buf: buf}
	a.used.Store(nodeAlign)
	return a, nil
}

// Size is the number of bytes allocated so far (including the reserved head
// and bytes of failed allocations).
func (a *Arena) Size() uint64 {
	if u := a.used.Load(); u < uint64(len(a.buf)) {
		return u
	}
	return uint64(len(a.buf))
}

// Capacity is the arena's size in bytes.
func (a *Arena) Capacity() uint64 { return uint64(len(a.buf)) }

// alloc reserves size bytes aligned to nodeAlign and returns their offset.
func (a *Arena) alloc(size uint32) (uint32, error) {
	padded := uint64(size+nodeAlign-1) &^ (nodeAlign - 1)
	end := a.used.Add(padded)
	if end > uint64(len(a.buf)) {
		return 0, ErrArenaFull
	}
	return uint32(end - padded), nil
}

func (a *Arena) u32(off uint32) *uint32 {
	return (*uint32)(unsafe.Pointer(&a.buf[off]))
}

func (a *Arena) bytes(off, n uint32) []byte {
	return a.buf[off : off+n : off+n]
}
