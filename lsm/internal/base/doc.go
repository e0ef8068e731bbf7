// Package base holds the vocabulary every other part of the LSM shares:
// internal keys, their kinds and sequence numbers, the order on them, and the
// corruption error that names a file and an offset.
//
// # Internal key
//
// Every entry the engine stores is addressed by an internal key: the user key
// followed by an 8-byte little-endian trailer.
//
//	+------------------+--------------------------------------+
//	| user key (n B)   | trailer u64 LE = seqnum<<8 | kind     |
//	+------------------+--------------------------------------+
//
// Internal keys order by user key ascending (bytewise), then by trailer
// descending, so that for one user key the newest version (highest sequence
// number) comes first and a reader positioned at (key, snapshot) meets the
// version it must return before any older one.
//
// Sequence numbers are 56 bits. Seqnum 0 is never assigned to a write; the
// largest value (SeqNumMax) is used only in search keys.
//
// # Concurrency
//
// Everything here is a pure function over values.
package base
