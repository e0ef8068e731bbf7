// Package record frames the manifest's version edits in checksummed records.
//
// # Format
//
//	record at offset o:
//	+--------------+----------------+---------------------+
//	| length u32LE | checksum u32LE | payload (length B)  |
//	+--------------+----------------+---------------------+
//
// The checksum is xxh3 of the payload seeded with the record's offset (and
// the length), folded to 32 bits, so a record copied to another offset does
// not verify. Records are appended and the file is synced after each one the
// engine acknowledges.
//
// # Reading back after a crash
//
// A crash can leave the last record incomplete (a torn append). Reader
// distinguishes that from damage in the middle of the log:
//
//   - a header or payload that runs past the end of the file, or a last
//     record (one ending exactly at end of file) whose checksum fails, or a
//     remainder that is all zeros (preallocated space), is a torn tail: Next returns io.EOF and TornTail reports the offset where
//     the valid log ends, so the writer can truncate there;
//   - a record whose checksum fails but that is followed by more bytes is
//     corruption: Next returns a *base.CorruptionError naming the file and
//     the record's offset. Nothing after it is trusted.
//
// # Concurrency
//
// A Writer or Reader belongs to one goroutine.
package record
