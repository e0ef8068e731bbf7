// Package ring implements Tapewire's topics in shared memory: the log topic
// (one publisher, many subscribers, variable-length frames, reliable or
// lossy) and the last-value topic (latest frame per key under a seqlock).
// Segments are created and validated by package shm; ring lays out their
// bodies. Rings carry frames with schema's 24-byte header and never look at
// payloads: they are payload-agnostic.
//
// Everything below is the wire format a C or Rust client needs to map the
// same files. All integers are little-endian; every offset is from the start
// of the file; "line" is 128 bytes (two 64-byte cache lines, because the
// adjacent-line prefetcher moves them in pairs).
//
// # Log topic file: /dev/shm/tapewire/<namespace>/<topic>.ring (shm kind 1)
//
//	0        4096          header page (package shm), kind parameters at offset 88:
//	                         +0  u64 capacity      data area bytes, power of two, 1 KiB..2 GiB
//	                         +8  u32 max frame     largest frame, header included (<= capacity/4)
//	                         +12 u32 mode          1 reliable, 2 lossy
//	                         +16 u32 slots         subscriber table slots (1..1024)
//	                         +24 u64 control off   4096
//	                         +32 u64 table off     8192
//	                         +40 u64 data off      8192 + roundup(slots*128, 4096)
//	4096     4096          control page, one hot word per line:
//	                         +0    u64 tail          write horizon: the publisher may have written bytes below tail+8
//	                         +128  u64 published     end of the newest committed frame
//	                         +136  u64 published seq next sequence number: LogConfig.FirstSeq (stored before
//	                                                 the header's state word) + frames committed
//	                         +256  u64 durable       advanced by the appliance after its WAL commit
//	                         +384  u64 replicated    advanced by the appliance after replication
//	                         +512  u32 data futex    bumped by the publisher before FUTEX_WAKE
//	                         +640  u32 data parked   subscribers asleep on the data futex
//	                         +768  u32 position futex, +832 u32 parked: waiters on durable/replicated
//	                         +896  u32 progress futex, +960 u32 parked: publisher waiting for room
//	                         +1024 u32 epoch         bumped by every subscriber registration
//	                         +1152 publisher record: u32 state (0 none, 1 live, 2 closed, 3 dead),
//	                               u32 pid, u64 start time, i64 heartbeat (CLOCK_MONOTONIC ns),
//	                               u64 attaches, u64 abandoned claims, u64 back-pressure waits,
//	                               u64 evictions, u64 back-pressure errors, u64 last repair position
//	8192     slots*128     subscriber table, one line per slot:
//	                         +0  u32 state     generation<<8 | status (0 free, 1 active, 2 evicted, 3 closed)
//	                         +4  u32 flags     1 = gating (holds back a reliable publisher)
//	                         +8  u32 pid       +16 u64 start time   +24 i64 heartbeat (CLOCK_MONOTONIC ns)
//	                         +32 u64 position  consumed (ManualRelease: released) up to here, a frame boundary
//	                         +40 u64 frames    +48 u64 lost frames  +56 u64 lost bytes  +64 u64 laps
//	                         +72 i64 registered (Unix ns)
//	data off capacity      data area: frames, contiguous, each 8-byte aligned
//	                       (the file is rounded up to a multiple of 4096 after it)
//
// Positions are 64-bit byte offsets into the never-ending stream; they never
// wrap. A position p lives at data off + (p mod capacity).
//
// # Frames
//
// A frame is schema's header (length u32 | type u16 | flags u16 | seq u64 |
// publish_ns i64) and a payload; it occupies its length rounded up to 8.
// No frame crosses the end of the data area: when the next frame does not
// fit, the publisher writes a padding frame (type 0) over the rest of the
// area and the frame starts at offset 0. A padding frame may be as short as
// 8 bytes: only its first word (length and type, flags 1 = abandoned claim)
// is meaningful. Sequence numbers of non-padding frames are gapless.
//
// # Write horizon and commit protocol
//
// The first 8 bytes of a frame are its commit word. A frame is committed when
// its length becomes non-zero; readers load the word atomically and treat
// length 0 as "not yet".
//
// The tail word is the publisher's write horizon: it may have written any
// byte below tail + 8 and writes nothing at or above that without raising
// tail first. It raises the horizon a chunk at a time (chunk = min(4 KiB,
// capacity/8)), storing the new tail (in a reliable topic with a full
// barrier, see Registration) before it writes anything below it.
//
// Below the horizon the publisher keeps the data area zero from the end of
// the newest commit up to a zeroing mark. After each commit it zeroes, in
// 128-byte steps, up to one chunk past the commit's end: a 64-byte frame
// costs a line or two of zeroing, on lines no caught-up subscriber is
// polling, done while the subscribers read the frame just committed. When
// the mark would pass the horizon it raises the horizon first, never waiting
// for subscribers (in a reliable topic only as far as the slowest gating
// subscriber allows). A claim that needs more zeroes up to its end + 8
// itself (raising the horizon, and in a reliable topic waiting for room, if
// it must). So the commit word after the newest frame reads zero until the
// next frame is committed there — never a stale frame of the previous lap.
// Bytes between the zeroing mark and the horizon may still hold an older
// lap's frames; nobody takes them for frames: subscribers stop at the first
// zero commit word, and lossy readers judge overwrites by the horizon alone.
//
// The caller builds the payload in place between Claim and Commit. Commit
//
//  1. writes the header: type, flags, seq, publish_ns (one burst on the
//     frame's first line);
//  2. stores every other length of the claim (the later frames of a batch,
//     a padding frame), then the length at the claim start last: a plain
//     store followed by a full barrier (on amd64 a locked add on a word
//     private to the publisher). Not a locked store on the commit word: a
//     subscriber spinning on the frame's line takes it away between the
//     header stores and the locked instruction, which then has to win the
//     line back, a second ownership transfer per frame (~20 ns of a round
//     trip here); a plain store drains right behind the header while the
//     publisher still owns the line;
//  3. stores published seq and published, then reads the data-parked count
//     and, only if it is non-zero, bumps the data futex and calls
//     FUTEX_WAKE;
//  4. zeroes ahead (above).
//
// Invariant: the commit word at the published position is zero. A claim
// needs its bytes plus the 8-byte word after it below the zeroing mark (so
// below the horizon).
//
// # Reliable mode
//
// Gating subscribers (reliable topic, not observers) hold the lock byte
// LockSlotBase+slot of the file and store their position after each poll.
// The publisher may write position q only while q < min(gating positions) +
// capacity; it caches that limit and recomputes it when a claim would pass
// it or the epoch changed. When room is missing it spins, yields, then parks
// on the progress futex (subscribers wake it after storing their position);
// every 2 ms it checks whether the slowest subscriber is dead (its slot lock
// is free) or stale (heartbeat older than SubscriberTimeout) and evicts it
// (CAS of the state word, generation included). After BackPressureTimeout it
// fails the claim with ErrBackPressure naming the slot, pid and lag.
//
// A ManualRelease subscriber reads ahead of what it releases: Poll and Next
// never store its position; Release(pos) does (pos between the position
// released last and the end of the newest frame read, 8-aligned), with the
// same full barrier and progress-futex wake. Since the publisher writes only
// below the registered position + capacity, every frame between the
// released and the published position stays intact: views into frames read
// ahead stay valid until they are released. A subscriber that is alive but
// neither polls nor waits (blocked on a disk, say) calls Heartbeat, one
// clock read and one store, to keep its heartbeat younger than the
// publisher's SubscriberTimeout.
//
// Registration: a subscriber takes a free slot lock, writes its start
// position, stores the state active, bumps the epoch (full barrier) and then
// reads tail; the publisher stores a new horizon in tail (full barrier) and
// then re-reads the epoch. One of the two sees the other: either the
// publisher counts the new slot before writing past the old horizon, or the
// subscriber sees a horizon too far ahead of its start position and picks a
// newer one (or, resuming at a fixed position, fails with
// ErrPositionTooOld). Writes below an announced horizon need no check: the
// subscriber's own check covered them.
//
// # Lossy mode and observers
//
// The publisher never waits. A non-gating reader copies a frame out and then
// re-reads tail: if tail + 8 > position + capacity the publisher may have
// written over the bytes it copied, so the copy is discarded (never handed to
// a handler) and the reader jumps to the published position (a frame
// boundary). The frames lost are the gap in sequence numbers at the next
// frame it delivers: exact. Reliable topics accept such observers too
// (shmctl tail), which never hold the publisher back.
//
// # Publisher death
//
// The publisher holds the writer lock (LockWriter) for its lifetime. A
// subscriber that waits and finds the lock free while the record says live
// takes the lock and repairs: it walks from published over frames already
// committed (a batch whose published store never happened), pads the rest up
// to tail (the claim and the bytes after it, zeroed or stale) with padding
// frames flagged abandoned, sets published
// and published seq, marks the record dead, counts an abandoned claim and
// wakes everybody. Subscribers then get ErrPublisherGone from Wait until a
// new publisher attaches (OpenPublisher repairs the same way before it
// starts); no subscriber waits on a dead claim for more than ~20 ms plus
// scheduling.
//
// # Durable and replicated positions
//
// The appliance calls AdvanceDurable/AdvanceReplicated (monotonic CAS) after
// its WAL commit or replication; a producer waits for its frame's end
// position with WaitDurable/WaitReplicated, which spin, then park on the
// position futex. A wait that times out returns the sentinel ErrTimeout
// itself (as does Subscriber.Wait), without allocating, so producers may
// wait in short slices in a loop.
//
// # Replaced segments
//
// The appliance recreates a topic whose segment vanished (host reboot,
// /dev/shm cleared, segments removed by an operator): a process that still
// maps the old file keeps publishing into memory nobody reads. Log.Replaced
// compares the mapped file's device and inode with the file now at the
// topic's path (fstat + lstat, a few microseconds): long-running producers
// call it from a control loop, about once a second or when a wait times
// out, never per frame, and reattach when it says true.
//
// # Cache lines of a round trip
//
// What a request/response pair of topics (64 B frames, busy-spinning Next,
// Offer of the answer) touches per round trip, per side, in the steady
// state:
//
//   - the frame's line, written once (header, payload, commit word: one
//     line when the frame is 64-byte aligned and at most 64 bytes) and read
//     once by the other side: the transfer that carries the message. The
//     subscriber spins on that line's commit word, so the publisher's first
//     store must take the line back from it; the commit is therefore a plain
//     store then a barrier on a private word (see the commit protocol), so
//     the line is owned once per frame, and with DemoteCommitted the line
//     is pushed to the shared cache right after, where the subscriber's
//     next load finds it without snooping the publisher's core;
//   - zero-ahead: on average one line per frame, 4 KiB ahead of the commit,
//     off the critical path (zeroing 2 KiB every 32 frames instead moved
//     the median round trip by nothing measurable);
//   - published and published seq: one control line no Next reader loads,
//     so it stays in the publisher's cache; the tail word once per 4 KiB;
//     the parked count is read, never written while nobody sleeps;
//   - the subscriber's slot line (state checked by Next, position stored
//     at the first empty Next after a frame): written by that subscriber
//     only, read by the publisher only when its cached limit runs out
//     (about every capacity - 12 KiB); removing the per-round position
//     store did not move the round trip either;
//   - clock reads: the subscriber's heartbeat every 1024 empty polls, the
//     publisher's every 4096 commits; none on the frame path.
//
// So the floor of two topics is two lines per round trip, each written by
// one side and spun on by the other; ringbench measures it beside a single
// shared word (bench/results/ring.md).
//
// # Last-value topic file: <topic>.lvc (shm kind 2)
//
//	0        4096          header page, kind parameters at offset 88:
//	                         +0 u32 slots (power of two)  +4 u32 max key bytes (64)
//	                         +8 u32 max value bytes       +12 u32 slot bytes
//	                         +16 u64 slots offset (8192)
//	4096     4096          control page: +0 u64 table version (bumped per update),
//	                         +128 u32 keys in use, +256 writer record (u32 pid, u64 start, i64 heartbeat)
//	8192     slots*slot    slots, each 128 + roundup(max value, 128) bytes:
//	                         +0  u64 seqlock (odd while written; version = seq/2)
//	                         +8  u32 value length   +12 u32 key length (0 = empty, stored last at insert)
//	                         +16 [64]byte key       +128 value bytes
//
// Keys hash (FNV-1a 64) to a slot and probe linearly; a key, once inserted,
// never moves or changes. One writer (holding LockWriter) updates a slot
// under its seqlock and never waits for readers; readers copy the value out
// and retry if the sequence changed, up to a bound (then ErrContended). A
// writer that attaches after one died mid-update finds that slot's sequence
// odd: it stores value length 0xFFFFFFFF ("lost") and closes the sequence,
// so readers get ErrNotFound, never torn bytes, until the key is rewritten.
//
// # Concurrency
//
// One goroutine at a time per Publisher, Subscriber or LastValueWriter,
// except Subscriber.Heartbeat, which another goroutine may call while the
// subscriber is open (not concurrently with Close); LastValueReader and Log
// methods are safe from any goroutine. Hot paths (Claim, ClaimBatch,
// Commit, CommitBatch, Offer, Poll, Next, Release, Heartbeat, Get) do not
// allocate; publishing makes no system call unless a subscriber is parked
// (one FUTEX_WAKE) or a reliable claim has to wait. Next and Offer have a
// fast path for the common case (a committed data frame in a gating
// subscription; a frame that fits in space already zeroed) and fall back to
// the general code for everything else.
package ring
