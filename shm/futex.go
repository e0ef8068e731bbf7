package shm

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Futex operations without FUTEX_PRIVATE_FLAG: the words live in a MAP_SHARED
// mapping and the waiter and the waker are different processes, so the kernel
// must key the wait queue on the physical page, not on the address space.
const (
	futexWait = 0 // FUTEX_WAIT
	futexWake = 1 // FUTEX_WAKE
)

// FutexWait sleeps while *addr == val, for at most timeout (0 or less: no
// limit). It returns true when it returned because the timeout expired; a
// wake, a changed value (EAGAIN) or a signal (EINTR) return false, and the
// caller re-checks its condition in every case.
//
// addr must point into shared memory and be 4-byte aligned.
func FutexWait(addr *uint32, val uint32, timeout time.Duration) (timedOut bool, err error) {
	var tsp uintptr
	var ts unix.Timespec
	if timeout > 0 {
		ts = unix.NsecToTimespec(int64(timeout))
		tsp = uintptr(unsafe.Pointer(&ts))
	}
	_, _, errno := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWait, uintptr(val), tsp, 0, 0)
	switch errno {
	case 0, unix.EAGAIN, unix.EINTR:
		return false, nil
	case unix.ETIMEDOUT:
		return true, nil
	default:
		return false, errno
	}
}

// FutexWake wakes at most n waiters sleeping on addr and returns how many it
// woke. It is one system call; callers skip it when their parked count says
// nobody sleeps.
func FutexWake(addr *uint32, n int) (int, error) {
	r, _, errno := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWake, uintptr(n), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}
