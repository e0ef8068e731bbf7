// Package tune places Tapewire's threads on CPUs: it reads the CPUs the process
// may run on, pins the calling goroutine's OS thread to one CPU, and optionally
// raises it to SCHED_FIFO.
//
// Hot loops (the ring→WAL committer, benchmark publishers and subscribers) call
// Pin at start-up and keep the returned Pinned for their lifetime; everything
// else stays on the housekeeping CPUs the operator leaves free.
//
// Concurrency: Pin acts on the calling goroutine only. It locks that goroutine
// to its OS thread (runtime.LockOSThread), so the pinned goroutine must be the
// one that calls Release, and must not hand its work to other goroutines and
// expect them to inherit the placement.
//
// tune is a leaf package: it imports nothing of Tapewire.
package tune
