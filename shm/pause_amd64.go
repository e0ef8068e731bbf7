package shm

// spinPause executes the x86 PAUSE instruction n times. PAUSE tells the core
// it is in a spin-wait loop: it saves power, yields pipeline resources to a
// hyperthread sibling, and avoids the memory-order mis-speculation flush when
// the awaited cache line finally changes.
//
//go:noescape
func spinPause(n uint32)
