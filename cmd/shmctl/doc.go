// Command shmctl inspects and operates Tapewire's shared-memory topics
// without the appliance: it maps the segments under
// <base>/<namespace>/ (default /dev/shm/tapewire/default) directly.
//
//	shmctl list [--json]                      topics with kind, size, publisher liveness, positions
//	shmctl info TOPIC [--json]                header, counters, publisher record, subscriber table
//	shmctl tail TOPIC [-f] [--from POS] [-n N] frames as JSON lines (schema.AppendJSONRedacted: passwords hidden)
//	shmctl top [--interval D] [--count N]     live per-topic rates and lag, refreshed in place
//	shmctl lvc get TOPIC KEY                  latest value of KEY as a JSON line (a value schema
//	                                          cannot render: its bytes, only the header if it may hold secrets)
//	shmctl lvc list TOPIC [--json]            keys with slot and version
//	shmctl gc [--dry-run]                     remove segments whose creator is dead and nobody maps
//	shmctl pub TOPIC                          publish frames read as JSON lines from stdin
//
// Global flags: --base DIR, --namespace NAME.
//
// tail reads as an observer: it takes no subscriber slot and never holds a
// reliable publisher back; frames it is lapped past are counted on stderr.
// Without --from it starts at the oldest frame boundary it can know: 0 while
// the ring has not wrapped, else the oldest subscriber position still in the
// ring, else the newest published position.
//
// Exit codes, for scripts:
//
//	0  success
//	1  the operation failed (I/O, back-pressure, a bad input line, ...)
//	2  usage: unknown command, bad flag or argument
//	3  not found: no such topic or key
//	4  the segment is not usable: corrupt, truncated, other layout version,
//	   other owner or mode, half-initialized
//
// Errors go to stderr as one line "shmctl: <what>: <why>".
package main
