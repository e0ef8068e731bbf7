package shm

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Guard runs f with debug.SetPanicOnFault set on the calling goroutine, so a
// SIGBUS from touching a page of a mapped file that has been truncated under
// us becomes an error wrapping ErrFault instead of a crash. Open and the
// tools read mapped headers and tables through Guard; the ring hot paths do
// not (a segment only shrinks if someone attacks it, and the cost is a
// deferred call per access).
func Guard(f func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			if re, ok := r.(runtime.Error); ok {
				if _, isAddr := r.(interface{ Addr() uintptr }); isAddr {
					err = fmt.Errorf("%w: %v", ErrFault, re)
					return
				}
			}
			panic(r)
		}
	}()
	return f()
}
