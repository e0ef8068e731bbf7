// Package wal is Tapewire's write-ahead log: an O_DIRECT, group-committed,
// pipelined log of records that never loses an acknowledged record, and
// whose recovery tells a torn tail (recover) from corruption (refuse) by an
// explicit decision table.
//
// The appliance's committer appends batches of ring frames (AppendAsync,
// allocation-free) and advances the ring's durable position from Notify or
// DurableLSN; other callers use Append, which returns once the records are
// durable. The LSM replays the log from the LSN its manifest records
// (NewReader) and, once its SSTables cover a prefix, calls TruncateBefore.
// `appliance wal verify` and `appliance wal dump` inspect a log offline.
//
// # Files
//
// A log is a directory of segment files named by id, 0000000000000001.wal,
// 0000000000000002.wal, …, plus LOCK (flock held by the open Log). Segments
// are preallocated to Options.SegmentSizeBytes (64 MiB) and written with
// zeros, or recycled from segments removed by TruncateBefore, by a
// background goroutine, under a temporary name (prep-*.tmp, recycle-*.tmp),
// renamed into place and made durable with a directory sync before the
// commit path ever sees them: a commit never grows a file, allocates an
// extent or converts an unwritten extent (which would cost an ext4 journal
// commit per O_DSYNC write). Their header block stays zero until the
// segment becomes active. Open removes leftover *.tmp files.
//
//	segment file (SegmentSizeBytes, a multiple of 4096)
//	+----------------+---------+-----+---------+-----+---------+------------+
//	| segment header | frame 1 | pad | frame 2 | pad | frame 3 | zero ...   |
//	|   block 0      | block 1 ...   | next block ...      |            |
//	+----------------+---------+-----+---------+-----+---------+------------+
//	every frame starts on a 4096-byte boundary
//
// Segment header (first 64 bytes of block 0, the rest zero):
//
//	 0       8      12     16               32          40          48          56   60    64
//	+-------+---+--+------+----------------+-----------+-----------+-----------+----+-----+
//	|"TWWALSEG"|ver|rsv|blk |  log UUID (16)  | segment id| first LSN | seg size  |rsv |CRC32C|
//	+-------+---+--+------+----------------+-----------+-----------+-----------+----+-----+
//	CRC32C (Castagnoli) of bytes 0..59, seeded with the segment id.
//
// Frame (one per commit group; 64-byte header then records):
//
//	 0      4     6      8           16          24      28       32                40        48        60    64
//	+------+-----+------+-----------+-----------+-------+--------+-----------------+---------+---------+-----+
//	|"TWFR"| ver |flags | segment id| first LSN | count | length | durable-through | log tag | reserved|CRC32C|
//	+------+-----+------+-----------+-----------+-------+--------+-----------------+---------+---------+-----+
//	| record | record | ... (length bytes in all, header included) | zero padding to the next 4096 boundary
//
//	flags: 1 = close frame (written by Close: no records, durable-through = last LSN)
//	count: records hold LSNs first .. first+count-1
//	durable-through: every LSN <= it had been acknowledged when this frame was built
//	log tag: first 8 bytes of the log UUID
//	CRC32C over bytes 0..59 and the records, seeded with CRC32C(segment id, file
//	offset of the frame): a frame read from any other place (misdirected write,
//	recycled segment, frame copied between segments) fails its check.
//
// Record (8-byte aligned inside the frame, so payloads can be read in place):
//
//	 0        4      6       8        16
//	+--------+------+-------+--------+------------------+-----------+
//	| length | type | rsv   |  LSN   | payload (length) | pad to 8  |
//	+--------+------+-------+--------+------------------+-----------+
//
// The first frame of a segment is written in the same write as the segment
// header (block 0 + the frame): a segment becomes part of the log exactly
// when that write completes.
//
// # Commit pipeline
//
// Appenders copy their records into the filling group (one aligned buffer,
// under the log's mutex, LSNs assigned in order). A group is sealed into a
// frame — its offset fixed, the durable-through promise taken — when one of
// MaxInFlightFrames pipeline slots is free and one of these holds:
//
//   - nothing is in flight;
//   - the group holds PipelineFillBytes (every frame costs at least one
//     4 KiB write, so small frames in parallel would spend the device's
//     write rate on padding);
//   - its cohort is complete: every appender the last two acknowledgements
//     woke has appended again since (closed-loop writers come back within
//     microseconds of their wake-up; waiting longer would only delay them
//     by a whole write, and no later arrival is expected). At most one
//     group per acknowledgement is sealed this way, so frames do not split
//     into ever smaller ones: the number in flight settles at the number
//     of cohorts the writers form (measured with 124-byte records: 16
//     synchronous writers went from 1 frame in flight to 1.85 on average,
//     64 from 1.9 to 2.2);
//   - an appender is waiting because its records do not fit in the group.
//
// A synchronous caller that finds the group ready writes its frame itself;
// otherwise one of MaxInFlightFrames flusher goroutines does, woken only
// when a group is ready (never to find nothing to do). Each frame is one
// pwrite with O_DIRECT|O_DSYNC from the aligned buffer, to its own offset;
// up to MaxInFlightFrames run at once. Completions are acknowledged
// strictly in LSN order: the durable LSN advances over a frame only when
// every earlier frame has completed, then Notify is called and DurableLSN
// (one atomic load) moves, all under the mutex; the waiters at or below the
// new durable LSN are then taken off the ring and woken after the mutex is
// released, so they do not queue on it. Nothing on this path sleeps on a
// timer. Metrics.FrameWriteNanos and InFlightAtSealSum give the mean write
// latency and depth the frames actually saw, to set beside the device's.
//
// Frames are written with pwrite, one blocked thread per frame in flight.
// Submitting them through io_uring (completions read from an eventfd by the
// netpoller) was built and measured slower on the VM this was tuned on:
// with O_DSYNC and no FUA the completion takes a kernel worker (the cache
// flush) and a task_work hop back to the submitting thread, where a
// blocked pwrite finishes the flush in place (bench/results/wal.md).
//
// # Invariants
//
//   - A block holding acknowledged data is never written again: the next
//     frame starts at the next 4096-byte boundary after the previous one,
//     so the partially filled last block of a frame is left as is, padding
//     and all. (Rewriting it would risk a torn write destroying records
//     already acknowledged.) Recovery after a crash may write zeros only
//     over frames that were never acknowledged.
//   - Records are acknowledged only when they and every record before them
//     are durable; LSNs are contiguous from the log's first LSN.
//   - Any write or sync error is fatal: the log refuses every later append
//     and reports the error to every waiter and to Notify. An fsync is
//     never retried (after a failed fsync the kernel may have dropped the
//     dirty pages; a retry that succeeds proves nothing). Reopen recovers.
//   - A segment is removed by TruncateBefore only if it is not active and
//     its successor's first frame is durable, so the oldest segment always
//     has a valid header and the log's first LSN is always known.
//   - Each regular frame leaves one block free at the end of its segment so
//     the close frame always fits.
//
// Space: a frame occupies whole 4096-byte blocks, so the bytes written per
// payload byte depend on the group size. Each record costs a 16-byte header
// and padding to 8 bytes (a 124-byte payload takes 144 bytes); each frame a
// 64-byte header and padding to the next 4096 boundary. Measured with
// walbench (124-byte records, default options): a lone synced writer
// writes one 4096-byte block per record, 33× its payload; 16 concurrent
// writers group ~8 records per frame, ~4.2×; 64 writers ~27 per frame,
// ~2.0× (cohorts of more than 28 records take two blocks); batched
// appends of 1000 records write 1.19× the payload. This is the price of
// never rewriting a sector and of one-write commits; the space is
// reclaimed when the LSM truncates the log.
//
// # Reading
//
// Recovery and Readers read segments front to back through a read-ahead
// ring (readahead.go): 256 KiB O_DIRECT reads, up to 8 in flight, into a
// ring of 4 MiB; once a segment has been requested to its end the reads
// run on into the next one, so a segment boundary does not drain the
// device's queue. A range that wraps around the ring is made contiguous by
// copying its first part into 1 MiB of headroom in front of the ring; a
// frame longer than that (MaxGroupBytes above its default) is read on its
// own. Per frame the decoder checks the header and one CRC32C (hardware)
// over the frame; per record it checks the length and LSN against the
// frame and slices the payload in place.
//
// # Recovery
//
// Open (and Inspect, which changes nothing) scans every segment (but see
// deferred verification below): every
// block that can start a frame is checked (magic, segment id, length, CRC).
// The recovered log is the longest chain of valid frames from the oldest
// segment's header onward in which each frame sits right after the
// previous one and starts at the next LSN; it continues into the next
// segment when that segment's header is valid, of the same log, and starts
// at the next LSN. (The log's UUID is that of the first valid segment
// header, even one past the chain: a new log that crashed with frames of
// several segments in flight may have only a later header written.) The
// chain ends at the "end position". Recovery then
// gathers evidence (TailEvidence) and applies the decision table
// (Classify, a pure function; the tests enumerate all 64 cases):
//
//	row  end kind          last is close  outside frames  promise beyond end  outside continues  verdict
//	1    short             any            any             any                 any                corrupt
//	2    any               any            any             yes                 any                corrupt
//	3    any               any            any             any                 yes                corrupt
//	4    zero, foreign     yes            no              no                  no                 clean
//	5    zero, torn, foreign  any         any             no                  no                 torn tail
//
//	end kind: what the block at the end position holds — zero bytes (or no
//	room left in a full segment); torn (our magic and segment id but a bad
//	length or CRC: a partial write); foreign (non-zero bytes that are not a
//	frame of this segment: old data of a recycled segment); short (a segment
//	file is shorter than its preallocated size: truncation).
//	outside frames: valid frames not in the recovered log.
//	promise beyond end: a valid frame anywhere promises durable an LSN past
//	the recovered log's last — so an acknowledged frame is missing.
//	outside continues: a valid frame (or segment header) outside the log
//	starts at or below last LSN + 1 — the log goes on past a damaged frame.
//	The first frame of a segment whose header is invalid does not count:
//	header and first frame are one write, so a torn header means that frame
//	was never acknowledged.
//
// With pipelining, frames that were in flight at a crash can land in any
// order, so a valid frame after an invalid one is not in itself proof of
// corruption; its durable-through promise is. Frames in flight at a crash
// carry promises below the records they follow; a frame written after an
// acknowledged one carries a promise covering it. So: an invalid frame
// followed by a valid later frame whose promise covers it, or which
// continues the LSN sequence, is corruption; one followed only by frames
// whose promises do not reach it is a torn tail. After a reopen the first
// frame promises everything recovered, which makes damage to the old tail
// detectable from then on; after a clean Close the close frame's promise
// covers the whole log. What no format can do: tell damage to the last few
// frames of a crashed log (at most MaxInFlightFrames, none acknowledged
// later) from a torn write.
//
// Deferred verification (Options.DeferSealedVerification, the
// appliance's choice): reading a whole log at Open and again in the
// owner's replay costs two reads of it, so Open may scan only the tail.
// It reads every segment's header (one block each), then scans segments
// in full from the newest backwards until the older ones are all sealed —
// valid headers of this log, consecutive ids, each successor starting at
// a higher LSN, full size — and every LSN in them is at or below the
// highest durable-through promise of a valid frame of this log in the
// scanned ones. Those older segments are taken to hold exactly LSNs
// FirstLSN(i) .. FirstLSN(i+1)-1 (Report.DeferredSegments,
// SegmentInfo.Deferred). No torn write can be there (every record was
// acknowledged), so damage there is corruption by row 2 of the table, and
// the Reader that reaches it returns the *CorruptionError (segment,
// offset; no valid frame with the next LSN where it should be, or a bad
// record in a frame). The verdict on the tail is the one the full scan
// gives (TestDeferredVerificationSweep damages every sector of a log and
// checks both decide alike; the crash tests check every crash state). Not
// examined: blocks of a sealed segment after its last frame, which no
// Reader reads either; and segments no Reader reads at all (before the
// owner's replay start) — Inspect (`appliance wal verify`) reads
// everything. An owner that refuses to start on such an error calls Fail
// before Close, so no close frame is written.
//
// Torn tail: Open zeroes the valid frames found after the end in the end
// segment (never acknowledged; zeroing keeps any later recovery from seeing
// them), deletes later segments except clean prepared spares, and appends
// from the end position. Corrupt: Open returns a *CorruptionError naming
// the segment, the byte offset and the evidence, and writes nothing.
// Clean: Recovery().Decision.Verdict == Clean.
//
// # Concurrency
//
// Every method of Log is safe for concurrent use. Append blocks until
// durable (or ctx ends: the records may still become durable; a caller
// that writes its group's frame itself returns when that write does);
// AppendAsync blocks only while the group buffers are full. Notify runs on
// the commit path with the log's mutex held: it must be quick and must not
// call the Log. A Reader belongs to one goroutine (its read-ahead runs in
// goroutines of its own, which Close stops, as does dropping the Reader);
// a Reader of a live Log returns only durable records and may be called
// again after io.EOF.
// Close waits for every accepted record, writes the close frame and
// releases the directory; it is not to be called concurrently with itself.
//
// # Limits (Options, defaults)
//
//	SegmentSizeBytes   64 MiB    size of every new segment
//	MaxGroupBytes      1 MiB     bytes of one frame; an Append needing more is refused
//	MaxRecordBytes     MaxGroupBytes − 80   payload of one record; larger is refused
//	MaxInFlightFrames  8 (1..16) frames written and not yet acknowledged
//	PipelineFillBytes  8192      group size that starts a frame while others are in flight
//	MaxWaiters         4096      callers blocked in Append/WaitDurable; one more is refused
//	PreparedSegments   1         zeroed segments kept ready
//	RecycledSegments   2         truncated segments kept for reuse
//
// Errors name the input and the limit, e.g. "record 3 of 10 has 2000000
// payload bytes, over the limit Options.MaxRecordBytes = 1048496".
//
// The file system is reached only through vfs.FS, so tests crash it
// (vfs.CrashFS) and fail any operation (vfs.ErrorFS). Where O_DIRECT is
// refused the log runs buffered with O_DSYNC; Metrics().WriteMode says so.
package wal
