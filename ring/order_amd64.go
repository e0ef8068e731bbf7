package ring

import "sync/atomic"

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

// storeCommit32 stores a frame's length (the commit) and then issues a full
// barrier, so that loads after it (the parked-subscriber count) cannot pass
// it: the sequentially consistent store the commit protocol needs. It is
// not an XCHG on the commit word: a locked instruction needs the frame's
// line in the Modified state when it executes, after the payload and header
// stores have drained, and a subscriber spinning on that line steals it in
// between, so the commit would pay a second ownership transfer (measured in
// ringbench: a 64-byte line written with stores then XCHG ~20 ns slower per
// round trip than the same stores ending in a plain store and a barrier).
// Here the length drains from the store buffer right behind the header, in
// the same ownership; the barrier is a locked add on fence, a word private
// to the caller (never shared, so it costs no transfer).
func storeCommit32(p *uint32, v uint32, fence *uint64) {
	*p = v
	atomic.AddUint64(fence, 1)
}
