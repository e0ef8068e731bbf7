//go:build !amd64

package shm

import (
	"sync/atomic"
	"unsafe"
)

// spinSink defeats elimination of the portable spin loop.
var spinSink uint32

// spinPause is the portable fallback for architectures without the PAUSE
// stub: a short loop of atomic loads, which at least does not starve a
// sibling thread of the memory bus.
func spinPause(n uint32) {
	for i := uint32(0); i < n; i++ {
		atomic.LoadUint32(&spinSink)
	}
}

// demoteLine has no portable equivalent: a no-op.
func demoteLine(addr unsafe.Pointer) {}
