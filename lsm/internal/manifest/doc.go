// Package manifest holds the LSM's metadata: which tables are live at which
// level (a Version), the atomic changes between versions (VersionEdit) and
// their encoding in the manifest log.
//
// # Manifest files
//
// The database directory holds MANIFEST-<n> files, each a record log
// (lsm/internal/record) of encoded VersionEdits, and CURRENT, which names the
// manifest in use. A new manifest starts with one edit holding the whole
// current version plus the counters; later edits are deltas. CURRENT is
// replaced atomically: write CURRENT.tmp, sync it, rename over CURRENT, sync
// the directory. Recovery reads CURRENT, replays the named manifest's edits
// in order (a torn last record is an edit that was never acknowledged) and
// builds one Version.
//
// # VersionEdit encoding
//
// A sequence of fields, each a uvarint tag and its value:
//
//	1 next file number   uvarint
//	2 last seqnum        uvarint
//	3 last LSN           uvarint   (highest log position covered by tables)
//	4 deleted file       level uvarint, file number uvarint
//	5 added file         level, file number, size, smallest seq, largest seq
//	                     (uvarints), smallest key, largest key (uvarint
//	                     length + encoded internal key)
//
// # Invariants
//
//   - L0 files are ordered by largest seqnum (newest last) and may overlap.
//   - In L1..L6 files are ordered by smallest key and no two share a user key
//     (Apply refuses an edit that would break this), so a point lookup reads
//     at most one file per level, and data in a lower-numbered level is newer
//     than data for the same user key in a higher-numbered one.
//   - A file is referenced by every Version that contains it; when the last
//     such version is released the file is handed to the obsolete callback,
//     and only then may it be deleted.
//
// # Concurrency
//
// A Version is immutable and may be read from any goroutine while the reader
// holds a reference (Ref/Unref are atomic). Edits are built and applied under
// the database mutex.
package manifest
