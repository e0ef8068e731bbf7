package shm

import "unsafe"

// spinPause executes the x86 PAUSE instruction n times. PAUSE tells the core
// it is in a spin-wait loop: it saves power, yields pipeline resources to a
// hyperthread sibling, and avoids the memory-order mis-speculation flush when
// the awaited cache line finally changes.
//
//go:noescape
func spinPause(n uint32)

// demoteLine executes CLDEMOTE on the cache line holding addr: a hint that
// moves the line from this core's private caches to the shared last-level
// cache, so the next core to read it finds it there instead of snooping this
// core. A NOP on processors without CLDEMOTE.
//
//go:noescape
func demoteLine(addr unsafe.Pointer)
