//go:build !amd64

package ring

import "sync/atomic"

// storeRelease64 stores v at p with (at least) release ordering. Without
// x86-TSO guarantees the portable choice is a sequentially consistent store.
func storeRelease64(p *uint64, v uint64) { atomic.StoreUint64(p, v) }

// storeRelease32 is storeRelease64 for a 32-bit word.
func storeRelease32(p *uint32, v uint32) { atomic.StoreUint32(p, v) }

// storeCommit32 stores a frame's length, sequentially consistent (see the
// amd64 version for why it is not simply that there).
func storeCommit32(p *uint32, v uint32, fence *uint64) { atomic.StoreUint32(p, v) }
