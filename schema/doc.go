// Package schema defines Tapewire's events and the frames that carry them:
// the flatbuffers schema of every event (events.fbs), the fixed frame header,
// a registry of frame types, zero-allocation builders, a verifier that makes
// untrusted payloads safe to read, decoders into plain Go values, and a JSON
// form for tools (shmctl tail/pub, the admin API).
//
// # Frame format
//
// A frame is the unit of a ring, of a WAL record and of an LSM event value:
//
//	 0        4      6       8               16              24
//	+--------+------+-------+---------------+---------------+------------------+
//	| length | type | flags | seq           | publish_ns    | payload ...      |
//	| u32    | u16  | u16   | u64           | i64           | flatbuffer       |
//	+--------+------+-------+---------------+---------------+------------------+
//	little-endian; length counts the header and payload, not ring padding;
//	frames start 8-byte aligned (FrameAlign); length <= MaxFrameBytes.
//
// The payload is a flatbuffer whose root table is the one registered for
// type. Frames of type Padding (0) fill the end of a ring's data area; their
// payload is meaningless and readers skip them.
//
// Payloads written by this package have one canonical layout (any
// flatbuffers reader reads it; the verifier accepts any valid layout, such as
// a C++ or Rust producer's):
//
//	payload offset 0: u32 root offset ──────────────┐
//	4: vtable of the root: u16 vtable size,         │
//	   u16 table size, u16 field offset per slot    │
//	   (zero padding so 8-byte fields align)        │
//	table: i32 soffset to the vtable  <─────────────┘
//	       8-byte fields, then 4-byte fields and uoffsets, then 1-byte fields
//	then, in field order: strings (u32 length, UTF-8, NUL), [ubyte] and
//	struct vectors (u32 count, elements), table vectors (u32 count, uoffsets,
//	then each table with its own vtable), sub-tables.
//
// Every field is written, zero or not, so a canonical table's vtable is a
// constant: the verifier recognises it with one comparison, and the decoders
// then read each scalar at a fixed offset.
//
// # Types
//
// The registry maps a type id to its name and root table; ids are part of the
// format and never change (types.go, events.fbs's type_id attributes, checked
// against each other at compile time):
//
//	 0 Padding            ring filler, not an event
//	 1 Heartbeat          2 Checkpoint
//	10 Tick               11 OrderBookSnapshot  12 OrderBookDelta
//	13 Instrument         14 Kline
//	20 Order              21 Trade              22 Account
//	23 Position           24 Transfer           25 Notify
//	30 UserRegistered     31 AccountBound
//	40 OrderRequest       41 CancelRequest      42 TransferRequest
//
// Type.String, TypeByName, Types and NewEvent expose it. Each event is a Go
// struct (Tick, Order, ...) generated from events.fbs with the field names of
// the schema in Go spelling (instrument_id → InstrumentID); it implements
// Event.
//
// # Building (hot path)
//
// PutEvent writes a complete frame for an event into a caller-provided
// buffer, FrameSize says how many bytes that takes beforehand, and
// AppendEvent appends to a slice. None allocates (testing.AllocsPerRun guards
// every type), none keeps state, and each writes every byte of the frame, so
// a ring can claim FrameSize bytes, build in place over stale data, and
// commit. PutEventUncommitted leaves the length word zero for a ring that
// commits by storing it last; PutPayload writes only the flatbuffer, for a
// ring that writes the header itself. A value that breaks a bound of events.fbs
// (a string or vector over its max_len, invalid UTF-8, an empty required
// string) or a buffer that is too small gives a *FrameError naming the field
// and the limit, and nothing is written.
//
// # Verifying and reading
//
// Go's flatbuffers runtime trusts its input: a malformed payload makes
// flatc's accessors read out of bounds or panic. Verify (a frame) and
// VerifyPayload (a payload) check everything an accessor relies on: see
// Verify for the list. After Verify succeeds, flatc's generated accessors
// (package schema/fb) are safe on those bytes as long as they do not change;
// a reader of bytes that another process may overwrite meanwhile (a ring
// slot) uses DecodeEvent, whose reads stay safe either way. Verify never
// panics and never
// reads outside its input, whatever the input; its errors are *FrameError
// values naming the type, the field path ("Checkpoint.topics[2].topic") and
// the byte offset.
//
// DecodeEvent verifies a frame and decodes it into an event value; it is the
// usual way to read. Decoding into a reused value does not allocate unless a
// string changes or a slice needs to grow (strings equal to the previous
// value's are kept). Reads after verification re-check every offset they
// follow, so bytes overwritten between verification and reading (a lapped
// ring slot) give wrong values, which the ring's sequence check discards, but
// never a panic or an out-of-bounds read.
//
// # JSON
//
// AppendJSON renders a verified frame as one JSON object,
//
//	{"header":{"type":"Tick","seq":7,"publish_ns":1767225600000000000,"flags":0},
//	 "event":{"instrument_id":"SHFE.cu2501","datetime":1767225599999000000,...}}
//
// with the schema's field names (the DIFF names where DIFF has the field),
// every field present, integers (ns times) exact to 64 bits, doubles in the
// shortest form that parses back to the same bits, "NaN", "Infinity" and
// "-Infinity" for the doubles JSON lacks (NaN is how events say "no price":
// an empty book level, an unknown close), enum names ("BUY") or integers for
// unnamed values, and [ubyte] as standard base64. FrameFromJSON parses that
// form back into a frame with number-preserving integer parsing; unknown type
// names, unknown or repeated fields and values of the wrong JSON kind are
// errors naming the field. A frame written by this package survives
// frame → JSON → frame byte for byte (NaN payload bits aside).
//
// # Concurrency
//
// Everything here is a pure function of its arguments: builders, Verify,
// DecodeEvent and AppendJSON may run concurrently on different buffers, and
// Verify, DecodeEvent and AppendJSON concurrently on the same frame. An event
// value must not be decoded into while another goroutine reads or builds
// from it.
//
// # Changing the schema
//
// Edit events.fbs (append fields; never renumber type ids or reorder fields),
// run `go generate ./schema/...` (Debian's flatc 2.0.8 and
// internal/schemagen), and commit schema/fb, events_gen.go and
// events_fb_test.go. TestGeneratedCodeCurrent fails when they are stale.
package schema
