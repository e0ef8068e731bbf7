package schema

import (
	"encoding/binary"
	"math"
)

// This file holds the descriptors that schemagen derives from events.fbs and
// the byte-level helpers that the generated builders and readers share.
//
// Every table written by this package has its canonical layout: its vtable
// immediately before it, every field present, fields ordered 8-byte, then
// 4-byte, then 1-byte (each group by field id) so the table has no holes, and
// its out-of-line objects (strings, vectors, sub-tables) after it in field
// order. The verifier recognises a canonical vtable with one comparison and
// then knows every scalar's offset; tables from other builders (which omit
// defaults and order fields differently) take the general path.

// kind is how a field is stored.
type kind uint8

const (
	kindBool    kind = iota + 1 // 1 byte, 0 or 1
	kindU8                      // ubyte, and enums over ubyte
	kindI32                     // int
	kindU32                     // uint
	kindI64                     // long
	kindU64                     // ulong
	kindF64                     // double
	kindString                  // uoffset to u32 length, UTF-8 bytes, NUL
	kindBytes                   // uoffset to [ubyte]
	kindStructs                 // uoffset to a vector of structs
	kindTables                  // uoffset to a vector of uoffsets to tables
	kindTable                   // uoffset to a table
)

// isRef reports whether a field of kind k is a uoffset to an object outside
// its table.
func (k kind) isRef() bool { return k >= kindString }

// inlineSize is the bytes a field of kind k takes inside its table or struct.
func (k kind) inlineSize() int {
	switch k {
	case kindBool, kindU8:
		return 1
	case kindI64, kindU64, kindF64:
		return 8
	default:
		return 4
	}
}

func (k kind) String() string {
	switch k {
	case kindBool:
		return "bool"
	case kindU8:
		return "ubyte"
	case kindI32:
		return "int"
	case kindU32:
		return "uint"
	case kindI64:
		return "long"
	case kindU64:
		return "ulong"
	case kindF64:
		return "double"
	case kindString:
		return "string"
	case kindBytes:
		return "[ubyte]"
	case kindStructs:
		return "vector of structs"
	case kindTables:
		return "vector of tables"
	case kindTable:
		return "table"
	}
	return "invalid kind"
}

// enumDesc names the values of an enum; values are dense from 0.
type enumDesc struct {
	name   string
	values []string
}

// name returns the name of value v, or "" when v has none.
func (e *enumDesc) nameOf(v uint8) string {
	if int(v) < len(e.values) {
		return e.values[v]
	}
	return ""
}

// structField is one scalar field of a struct.
type structField struct {
	name   string
	offset int // byte offset within the struct
	kind   kind
	enum   *enumDesc
}

// structDesc describes a fixed-size struct stored inline in vectors.
type structDesc struct {
	name   string
	size   int
	align  int
	fields []structField
}

// fieldDesc is one field of a table.
type fieldDesc struct {
	name     string // the name in events.fbs, which is the JSON (DIFF) name
	slot     int    // field id: its vtable entry is at 4 + 2*slot
	kind     kind
	required bool
	maxLen   int // strings and [ubyte]: bytes; other vectors: elements
	enum     *enumDesc
	strct    *structDesc // kindStructs
	table    *tableDesc  // kindTables, kindTable
	canonOff int         // offset of the field in the canonical table
}

// tableDesc describes a table: its fields in id order and its canonical layout.
type tableDesc struct {
	name   string
	fields []fieldDesc
	// canonVT is the canonical vtable, byte for byte.
	canonVT string
	// canonSize is the canonical table's size, its soffset included.
	canonSize int
	// refs are the indices in fields of the strings, vectors and tables.
	refs []int
	// align8 is set when the table has 8-byte fields: the canonical table then
	// starts at 4 mod 8 so they are aligned.
	align8 bool
}

// Little-endian accessors. The unchecked forms index a slice the caller has
// bounded; the Go bounds check still guards them.

var le = binary.LittleEndian

func getU16(b []byte, i int) int     { return int(le.Uint16(b[i:])) }
func getU32(b []byte, i int) uint32  { return le.Uint32(b[i:]) }
func getI32(b []byte, i int) int32   { return int32(le.Uint32(b[i:])) }
func getU64(b []byte, i int) uint64  { return le.Uint64(b[i:]) }
func getI64(b []byte, i int) int64   { return int64(le.Uint64(b[i:])) }
func getF64(b []byte, i int) float64 { return math.Float64frombits(le.Uint64(b[i:])) }

func putU32(b []byte, i int, v uint32)  { le.PutUint32(b[i:], v) }
func putI32(b []byte, i int, v int32)   { le.PutUint32(b[i:], uint32(v)) }
func putU64(b []byte, i int, v uint64)  { le.PutUint64(b[i:], v) }
func putI64(b []byte, i int, v int64)   { le.PutUint64(b[i:], uint64(v)) }
func putF64(b []byte, i int, v float64) { le.PutUint64(b[i:], math.Float64bits(v)) }

func putBool(b []byte, i int, v bool) {
	if v {
		b[i] = 1
	} else {
		b[i] = 0
	}
}

// ---- layout arithmetic shared by the generated size and encode functions ----

func align4(n int) int { return (n + 3) &^ 3 }

// tableStart places a table whose vtable is d.canonVT at the first free byte
// at: the vtable at the next even position, then the table at the next
// position that aligns its fields.
func tableStart(at int, d *tableDesc) (vtablePos, tablePos int) {
	vtablePos = (at + 1) &^ 1
	end := vtablePos + len(d.canonVT)
	if d.align8 {
		tablePos = end + (12-end%8)%8 // end + k with (end+k) % 8 == 4
	} else {
		tablePos = align4(end)
	}
	return vtablePos, tablePos
}

// vectorStart is where a vector whose elements need elemAlign goes at free
// byte at: its length word 4-aligned and its first element aligned.
func vectorStart(at, elemAlign int) int {
	p := align4(at)
	if elemAlign == 8 && p%8 == 0 {
		p += 4
	}
	return p
}

// Size helpers: each returns the free position after the object.
func stringEnd(at, n int) int { return align4(at) + 4 + n + 1 }
func bytesEnd(at, n int) int  { return align4(at) + 4 + n }
func structsEnd(at, n int, s *structDesc) int {
	return vectorStart(at, s.align) + 4 + n*s.size
}
func tablesHeadEnd(at, n int) int { return align4(at) + 4 + 4*n }

// Encode helpers. p is the whole payload; positions are payload offsets.

func zero(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

// beginTable writes the padding, the canonical vtable and the soffset of a
// table at free byte at, and returns the table's position.
func beginTable(p []byte, at int, d *tableDesc) int {
	vt, tp := tableStart(at, d)
	zero(p[at:vt])
	copy(p[vt:], d.canonVT)
	zero(p[vt+len(d.canonVT) : tp])
	putI32(p, tp, int32(tp-vt))
	return tp
}

// setOffset points the uoffset at fieldPos to target.
func setOffset(p []byte, fieldPos, target int) { putU32(p, fieldPos, uint32(target-fieldPos)) }

// putString writes s at free byte at for the uoffset at fieldPos.
func putString(p []byte, fieldPos, at int, s string) int {
	sp := align4(at)
	zero(p[at:sp])
	setOffset(p, fieldPos, sp)
	putU32(p, sp, uint32(len(s)))
	copy(p[sp+4:], s)
	p[sp+4+len(s)] = 0
	return sp + 4 + len(s) + 1
}

// putBytes writes b as a [ubyte] at free byte at for the uoffset at fieldPos.
func putBytes(p []byte, fieldPos, at int, b []byte) int {
	sp := align4(at)
	zero(p[at:sp])
	setOffset(p, fieldPos, sp)
	putU32(p, sp, uint32(len(b)))
	copy(p[sp+4:], b)
	return sp + 4 + len(b)
}

// beginVector writes the padding and length word of an n-element vector at
// free byte at for the uoffset at fieldPos, and returns its first element's
// position.
func beginVector(p []byte, fieldPos, at, n, elemAlign int) int {
	vp := vectorStart(at, elemAlign)
	zero(p[at:vp])
	setOffset(p, fieldPos, vp)
	putU32(p, vp, uint32(n))
	return vp + 4
}

// ---- reading a verified table ----

// tableRef locates a table that the verifier accepted. Reads through it stay
// inside the payload even if the bytes change after verification (a ring
// slot overwritten by a lapping publisher): every offset read from the
// payload is checked again, and a failed check reads as the zero value.
type tableRef struct {
	pos       int // the table
	vtablePos int
	vtableLen int
	tableLen  int
	canonical bool
}

// resolveTable locates the table at pos, checking only what keeps reads in
// bounds. The verifier has checked the rest.
func resolveTable(p []byte, pos int, d *tableDesc) (tableRef, bool) {
	if pos < 0 || pos+4 > len(p) {
		return tableRef{}, false
	}
	vt := pos - int(getI32(p, pos))
	if vt < 0 || vt+4 > len(p) {
		return tableRef{}, false
	}
	r := tableRef{pos: pos, vtablePos: vt, vtableLen: getU16(p, vt), tableLen: getU16(p, vt+2)}
	if vt+r.vtableLen > len(p) || pos+r.tableLen > len(p) || r.vtableLen < 4 || r.tableLen < 4 {
		return tableRef{}, false
	}
	r.canonical = r.vtableLen == len(d.canonVT) && string(p[vt:vt+r.vtableLen]) == d.canonVT &&
		(!d.align8 || pos%8 == 4)
	return r, true
}

// field returns the position of the field in slot with inline size size, or
// -1 when it is absent (or no longer fits).
func (r *tableRef) field(p []byte, slot, size int) int {
	e := 4 + 2*slot
	if e+2 > r.vtableLen {
		return -1
	}
	o := getU16(p, r.vtablePos+e)
	if o == 0 || o+size > r.tableLen {
		return -1
	}
	return r.pos + o
}

func (r *tableRef) boolAt(p []byte, slot int) bool {
	if f := r.field(p, slot, 1); f >= 0 {
		return p[f] != 0
	}
	return false
}

func (r *tableRef) u8(p []byte, slot int) uint8 {
	if f := r.field(p, slot, 1); f >= 0 {
		return p[f]
	}
	return 0
}

func (r *tableRef) i32(p []byte, slot int) int32 {
	if f := r.field(p, slot, 4); f >= 0 {
		return getI32(p, f)
	}
	return 0
}

func (r *tableRef) u32(p []byte, slot int) uint32 {
	if f := r.field(p, slot, 4); f >= 0 {
		return getU32(p, f)
	}
	return 0
}

func (r *tableRef) i64(p []byte, slot int) int64 {
	if f := r.field(p, slot, 8); f >= 0 {
		return getI64(p, f)
	}
	return 0
}

func (r *tableRef) u64(p []byte, slot int) uint64 {
	if f := r.field(p, slot, 8); f >= 0 {
		return getU64(p, f)
	}
	return 0
}

func (r *tableRef) f64(p []byte, slot int) float64 {
	if f := r.field(p, slot, 8); f >= 0 {
		return getF64(p, f)
	}
	return 0
}

// target follows the uoffset at position f; -1 when it leaves the payload.
func target(p []byte, f int) int {
	if f < 0 || f+4 > len(p) {
		return -1
	}
	t := f + int(getU32(p, f))
	if t+4 > len(p) {
		return -1
	}
	return t
}

// vectorAt returns the first element position and length of the vector that
// the uoffset at f points to, with elements of elemSize bytes.
func vectorAt(p []byte, f, elemSize int) (start, n int) {
	t := target(p, f)
	if t < 0 {
		return 0, 0
	}
	n = int(getU32(p, t)) // below 2^32: n*elemSize cannot overflow an int
	if n*elemSize > len(p)-t-4 {
		return 0, 0
	}
	return t + 4, n
}

// bytesAt returns the bytes of the string or [ubyte] that the uoffset at f
// points to.
func bytesAt(p []byte, f int) []byte {
	s, n := vectorAt(p, f, 1)
	return p[s : s+n]
}

// stringAt returns the string that the uoffset at f points to, reusing old
// when the bytes equal it, so decoding a stream of events for the same
// instrument into one value does not allocate.
func stringAt(p []byte, f int, old string) string {
	b := bytesAt(p, f)
	if string(b) == old {
		return old
	}
	return string(b)
}

// bytesInto copies the [ubyte] that the uoffset at f points to into dst's
// storage.
func bytesInto(p []byte, f int, dst []byte) []byte {
	if f < 0 {
		return dst[:0]
	}
	return append(dst[:0], bytesAt(p, f)...)
}

// subtable resolves the table that the uoffset at f points to.
func subtable(p []byte, f int, d *tableDesc) (tableRef, bool) {
	t := target(p, f)
	if t < 0 {
		return tableRef{}, false
	}
	return resolveTable(p, t, d)
}

// resize returns s with length n, reusing its storage (and the values in it,
// so their strings can be reused) when it has the capacity.
func resize[T any](s []T, n int) []T {
	if n <= cap(s) {
		return s[:n]
	}
	return append(s[:cap(s)], make([]T, n-cap(s))...)
}
