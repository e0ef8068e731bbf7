// Package vfs is the file-system seam of Tapewire's storage: every file
// operation of the WAL (and of the LSM) goes through the FS interface, so
// tests can replace the disk with one that crashes or fails on demand.
//
// Implementations:
//
//   - OS (Default): the real file system. FlagDirect opens with O_DIRECT
//     (no page cache; buffer addresses, offsets and lengths aligned, see
//     BlockSize and AlignedBuffer); where open(2) refuses O_DIRECT with
//     EINVAL it falls back to buffered I/O, logs that once and counts it,
//     and File.Direct reports false. FlagDSync opens with O_DSYNC: a write
//     returns once durable. Sync is fdatasync, Preallocate is fallocate,
//     Lock is flock.
//   - CrashFS: in memory; tracks per file the durable content apart from
//     the current one (4 KiB block granularity) and per directory the
//     entries made durable by SyncDir. A crash — at a chosen operation
//     number or on demand — freezes it; Image returns what a reboot finds:
//     durable state plus, for each unsynced block, old content, new content
//     or a mix of old and new 512-byte sectors (a torn write), and each
//     directory as of its last sync or as it was. Direct files enforce
//     4 KiB alignment, stricter than the kernel, so alignment bugs surface
//     in memory.
//   - ErrorFS: wraps an FS and fails exactly the n-th operation, for
//     sweeps over every error path of a workload.
//
// Durability rules the storage code relies on (and CrashFS models): data is
// durable after a FlagDSync write returns or after File.Sync; a file's name
// (creation, rename, removal) after SyncDir of its directory.
//
// Alignment and durability tests must run on a disk file system:
// tmpfs accepts unaligned O_DIRECT and makes sync free. FileSystemType
// tells them apart; tests fail, not skip, when they find only tmpfs.
//
// Concurrency: every FS and File is safe for concurrent use; ReadAt and
// WriteAt at different offsets may run in parallel.
package vfs
