package shm

import "golang.org/x/sys/unix"

// Pause executes one spin-wait hint (PAUSE on amd64). Call it in every
// iteration of a busy-wait loop.
func Pause() { spinPause(1) }

// PauseN executes n spin-wait hints in one call.
func PauseN(n uint32) { spinPause(n) }

// Yield gives up the CPU to another runnable thread (sched_yield(2)). Unlike
// runtime.Gosched it yields the OS thread, which is what a pinned spinning
// thread must do to let a co-scheduled process run.
func Yield() { _, _, _ = unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }
