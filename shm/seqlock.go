package shm

import "sync/atomic"

// Seqlock is a sequence lock over a 64-bit word in shared memory, for data
// that one writer updates and many readers copy out without ever blocking
// the writer.
//
// The writer brackets its update with WriteBegin and WriteEnd; the word is odd
// while an update is in progress. A reader calls ReadBegin, copies the data,
// and keeps the copy only if ReadValid says no write overlapped it.
//
// Concurrency: one writer at a time per word (the caller serializes writers);
// any number of readers in any process. On amd64 the atomic add is a full
// barrier, and loads are not reordered with older loads, so a reader that
// sees the same even value before and after its copy read a consistent
// snapshot.
type Seqlock struct{ seq *uint64 }

// NewSeqlock returns a Seqlock over the 8-byte-aligned word at seq.
func NewSeqlock(seq *uint64) Seqlock { return Seqlock{seq: seq} }

// WriteBegin marks the start of an update (the word becomes odd).
func (s Seqlock) WriteBegin() { atomic.AddUint64(s.seq, 1) }

// WriteEnd publishes the update (the word becomes even again) and returns the
// new version: the number of completed updates times two.
func (s Seqlock) WriteEnd() uint64 { return atomic.AddUint64(s.seq, 1) }

// ReadBegin returns the current sequence and whether no write is in progress.
// A reader that gets ok=false should pause and retry.
func (s Seqlock) ReadBegin() (seq uint64, ok bool) {
	v := atomic.LoadUint64(s.seq)
	return v, v&1 == 0
}

// ReadValid reports whether no write started since ReadBegin returned seq.
func (s Seqlock) ReadValid(seq uint64) bool { return atomic.LoadUint64(s.seq) == seq }

// Version returns the current sequence word (even when no write is in
// progress).
func (s Seqlock) Version() uint64 { return atomic.LoadUint64(s.seq) }
