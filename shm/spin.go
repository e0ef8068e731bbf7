package shm

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Pause executes one spin-wait hint (PAUSE on amd64). Call it in every
// iteration of a busy-wait loop.
func Pause() { spinPause(1) }

// PauseN executes n spin-wait hints in one call.
func PauseN(n uint32) { spinPause(n) }

// Yield gives up the CPU to another runnable thread (sched_yield(2)). Unlike
// runtime.Gosched it yields the OS thread, which is what a pinned spinning
// thread must do to let a co-scheduled process run.
func Yield() { _, _, _ = unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }

// DemoteLine hints that the cache line holding addr, just written, should
// leave this core's private caches for the shared last-level cache (CLDEMOTE
// on amd64), so a reader on another core fetches it from there rather than
// snooping this core. A hint only: no ordering, no effect on correctness; a
// no-op where unsupported. A publisher calls it on a frame's line right
// after committing it.
func DemoteLine(addr unsafe.Pointer) { demoteLine(addr) }
