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
//   - a record that does not verify (bad length, runs past the end, checksum
//     mismatch, a mix of old and new sectors, zeros) with no verifiable
//     record after it is a torn tail: only the last append, not yet synced,
//     can be in that state. Next returns io.EOF, TornTail reports it and
//     Offset is where the valid log ends;
//   - a record that does not verify followed by a verifiable one (found by
//     trying every later offset: checksums are seeded with the offset, so a
//     match is a record written there) is corruption in the middle of the
//     log: Next returns a *base.CorruptionError naming the file and the
//     damaged record's offset. Nothing after it is trusted.
//
// The search makes reading a damaged log quadratic in the bytes after the
// damage in the worst case; manifests are rolled over at 4 MiB.
//
// # Concurrency
//
// A Reader belongs to one goroutine; Append is a pure function.
package record
