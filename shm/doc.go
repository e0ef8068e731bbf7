// Package shm manages named shared-memory segments for Tapewire: files under
// a tmpfs directory (default /dev/shm/tapewire/<namespace>/) that several
// processes map MAP_SHARED. It knows nothing of rings or frames; package ring
// lays its structures out inside a segment.
//
// # Segment header
//
// Every segment begins with a 4096-byte header page. All integers are
// little-endian. The header is immutable after creation except the state
// word.
//
//	offset size field
//	0      8    magic          "TAPEWIRE"
//	8      2    layout major   1: readers refuse any other major
//	10     2    layout minor   0: readers accept any minor of their major
//	12     4    kind           1 log ring, 2 last-value table (package ring)
//	16     4    header bytes   4096
//	20     4    flags          0 (reserved)
//	24     8    segment bytes  total file size; the file must be exactly this long
//	32     8    schema id      id of the payload schema the creator used
//	40     4    creator pid
//	44     4    creator uid
//	48     8    creator start  clock ticks after boot (/proc/PID/stat field 22)
//	56     16   boot id        /proc/sys/kernel/random/boot_id, binary
//	72     8    created ns     Unix ns
//	80     4    create mode    permission bits requested at creation
//	84     4    reserved       0
//	88     128  kind params    immutable parameters of the kind
//	216    4    crc            CRC-32C (Castagnoli) of bytes [0, 216)
//	220    4    state          0 initializing, 0x59444552 ("REDY") ready; stored last
//	224    3872 reserved       0
//
// Create writes every field and the CRC, lets the kind initialize its area,
// and only then stores the state word (an atomic store, which is a release
// on every architecture Go supports). A reader that sees "ready" therefore
// sees the whole header. A file left with state 0 by a creator that died is
// reported as ErrInitializing and can be removed by gc once the creator is
// gone.
//
// # Validation
//
// Open refuses, with an error that wraps one of the Err values: a symlink
// (O_NOFOLLOW), a non-regular file, another owner (ErrOwner, unless listed
// in Options.AllowUIDs), permission bits beyond 0600 (0660 with
// Options.Group) (ErrMode), a file shorter than its header says
// (ErrTruncated), bad magic (ErrNotSegment), another layout major
// (ErrLayout), a state word other than ready (ErrInitializing, ErrCorrupt),
// a CRC mismatch (ErrCorrupt) and another kind (ErrKind). ParseHeader is a
// pure function over bytes and is fuzzed. Access to a mapping whose file may
// have been truncated by someone else goes through Guard, which turns the
// resulting SIGBUS into ErrFault (debug.SetPanicOnFault).
//
// Files are created O_CREAT|O_EXCL|O_NOFOLLOW with mode 0600 (0660 and the
// group of Options.Group when set), and the mode is set again with fchmod so
// the umask cannot narrow or widen it.
//
// # Mapping
//
// Segments are mapped MAP_SHARED, read-write. Options.Populate adds
// MAP_POPULATE, Options.Lock mlocks the mapping, Options.HugePages advises
// MADV_HUGEPAGE. Huge pages on /dev/shm need the tmpfs to be mounted with
// huge=always or huge=advise (or shmem_enabled set in
// /sys/kernel/mm/transparent_hugepage); on the default mount the advice is
// silently a no-op.
//
// # Liveness
//
// A pid alone is not liveness: pids are reused. A Process is a pid, its
// start time and the boot id; Alive checks all three. Roles are also held as
// open-file-description locks (F_OFD_SETLK) on single bytes of the segment
// file: LockMapped (shared, every opener), LockWriter (exclusive, the one
// writer), LockSlotBase+i (exclusive, owner of table slot i). The kernel
// drops them when the process dies, however it dies, so LockHeld is the
// authoritative liveness check; pid, start time and heartbeats (stamped with
// Nanotime, CLOCK_MONOTONIC, the same clock in every process) tell tools who
// and how long ago.
//
// # Waiting
//
// FutexWait and FutexWake operate on 32-bit words in the shared mapping,
// without FUTEX_PRIVATE_FLAG, so a waiter in one process is woken by another.
// Pause executes the PAUSE instruction (a small assembly stub on amd64, a
// portable loop elsewhere) for spin loops; Yield is sched_yield(2). Seqlock
// is the one-writer, many-reader sequence lock used by last-value tables.
//
// # Concurrency
//
// Create, Open, Close, Remove, List and InUse are safe from any goroutine.
// A Segment's lock methods act on its own open file description: locks are
// per open, not per goroutine.
package shm
