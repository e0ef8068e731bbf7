package ring

// storeRelease64 stores v at p with release ordering: every store the caller
// made before it is visible to a reader that loads v. On amd64 (x86-TSO)
// every plain store already has release semantics, and the Go compiler keeps
// stores to memory in program order, so a plain store suffices and avoids the
// full barrier (XCHG) of atomic.Store. The word lives in a shared mapping, not
// the Go heap, so the race detector does not see it; readers load it with
// sync/atomic.
func storeRelease64(p *uint64, v uint64) { *p = v }

// storeRelease32 is storeRelease64 for a 32-bit word.
func storeRelease32(p *uint32, v uint32) { *p = v }
