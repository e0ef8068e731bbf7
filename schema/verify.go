package schema

import (
	"fmt"
	"unicode/utf8"
)

// Bounds of the verifier, beyond those events.fbs declares per field.
const (
	// MaxDepth bounds the nesting of tables in a payload (the root is depth
	// 0). events.fbs nests at most one level; a hostile payload cannot make
	// the verifier recurse deeper than this.
	MaxDepth = 8
	// MaxTables bounds the tables the verifier visits in one payload, so a
	// payload whose vectors all point at one big table cannot make the work
	// quadratic.
	MaxTables = 1 << 16
)

// Verify checks a frame: its header (length within the buffer and within
// MaxFrameBytes, a known type) and its payload, so that every accessor of the
// payload's root table, and every table, string and vector it reaches, reads
// inside the payload. It checks, for every table it reaches:
//
//   - the table, its vtable and every field lie inside the payload, and the
//     fields inside the table's declared size;
//   - the table is 4-byte aligned, the vtable 2-byte aligned, every scalar
//     aligned to its size, vector elements to their own alignment;
//   - every uoffset is non-zero, below 2^31 and lands inside the payload;
//   - strings are NUL-terminated, valid UTF-8 and within their max_len;
//     other vectors within their max_len (elements) and the payload;
//   - required fields are present, and required strings are not empty;
//   - nesting stays within MaxDepth and the tables visited within MaxTables.
//
// A frame of type Padding verifies without its payload being looked at.
// Verify never panics and never reads outside frame, whatever frame holds;
// an error is a *FrameError (or a header error) naming the field and offset.
// Verify does not allocate unless it fails.
func Verify(frame []byte) error {
	typ, n, err := frameBounds(frame)
	if err != nil {
		return err
	}
	if typ == TypePadding {
		return nil
	}
	et := lookupType(typ)
	if et == nil {
		return &FrameError{Op: "verify", Type: typ, Path: "header", Offset: 4,
			Reason: fmt.Sprintf("unknown frame type %d", uint16(typ))}
	}
	var r tableRef
	return verifyRoot(typ, et.desc, frame[HeaderSize:n], HeaderSize, &r)
}

// frameBounds reads the type and length of a frame, checking the length as
// DecodeHeader does.
func frameBounds(frame []byte) (Type, int, error) {
	if len(frame) >= HeaderSize {
		n := int(getU32(frame, 0))
		if n >= HeaderSize && n <= MaxFrameBytes && n <= len(frame) {
			return Type(getU16(frame, 4)), n, nil
		}
	}
	_, err := DecodeHeader(frame)
	return 0, 0, err
}

// VerifyPayload checks a payload (the flatbuffer after the frame header) whose
// root table is the one of type t, as Verify does. Error offsets are relative
// to the payload.
func VerifyPayload(t Type, payload []byte) error {
	et := lookupType(t)
	if et == nil {
		return &FrameError{Op: "verify", Type: t, Path: "payload", Offset: 0,
			Reason: fmt.Sprintf("unknown frame type %d", uint16(t))}
	}
	var r tableRef
	return verifyRoot(t, et.desc, payload, 0, &r)
}

// verifier walks one payload. base is the payload's offset in what the
// caller handed in, for error offsets.
type verifier struct {
	p      []byte
	typ    Type
	base   int
	tables int
}

func (v *verifier) fail(path string, off int, format string, args ...any) error {
	return &FrameError{Op: "verify", Type: v.typ, Path: path, Offset: v.base + off, Reason: fmt.Sprintf(format, args...)}
}

func (v *verifier) fieldFail(d *tableDesc, f *fieldDesc, off int, format string, args ...any) error {
	return v.fail(d.name+"."+f.name, off, format, args...)
}

func verifyRoot(t Type, d *tableDesc, p []byte, base int, r *tableRef) error {
	if quickVerify(p, d, r) {
		return nil
	}
	var err error
	*r, err = verifySlow(t, d, p, base)
	return err
}

// quickVerify accepts the common case, a canonical root table whose
// out-of-line objects are strings, [ubyte] or struct vectors, with the same
// checks as the full walk but no error reporting. Anything else, valid or
// not, goes to verifySlow, which alone reports errors.
func quickVerify(p []byte, d *tableDesc, r *tableRef) bool {
	if len(p) < 8 || len(p) > MaxFrameBytes-HeaderSize {
		return false
	}
	pos := int(getU32(p, 0))
	if pos > len(p)-4 || pos%4 != 0 || (d.align8 && pos%8 != 4) {
		return false
	}
	vt := pos - int(getI32(p, pos))
	vlen := len(d.canonVT)
	if vt < 0 || vt%2 != 0 || vt > len(p)-vlen || pos+d.canonSize > len(p) ||
		string(p[vt:vt+vlen]) != d.canonVT {
		return false
	}
	for _, i := range d.refs {
		f := &d.fields[i]
		fp := pos + f.canonOff
		u := getU32(p, fp)
		t := fp + int(u)
		if u == 0 || u >= 1<<31 || t > len(p)-4 || t%4 != 0 {
			return false
		}
		n := int(getU32(p, t))
		start := t + 4
		if n > f.maxLen {
			return false
		}
		switch f.kind {
		case kindString:
			if start+n >= len(p) || p[start+n] != 0 || (f.required && n == 0) || !validUTF8(p[start:start+n]) {
				return false
			}
		case kindBytes:
			if start+n > len(p) {
				return false
			}
		case kindStructs:
			if start%f.strct.align != 0 || start+n*f.strct.size > len(p) {
				return false
			}
		default:
			return false
		}
	}
	*r = tableRef{pos: pos, vtablePos: vt, vtableLen: vlen, tableLen: d.canonSize, canonical: true}
	return true
}

// verifySlow walks the whole payload and reports the first problem.
func verifySlow(t Type, d *tableDesc, p []byte, base int) (tableRef, error) {
	v := verifier{p: p, typ: t, base: base}
	if len(p) > MaxFrameBytes-HeaderSize {
		return tableRef{}, v.fail(d.name, 0, "payload of %d bytes exceeds the limit of %d", len(p), MaxFrameBytes-HeaderSize)
	}
	if len(p) < 8 {
		return tableRef{}, v.fail(d.name, 0, "payload of %d bytes is shorter than the minimum of 8 (root offset and table)", len(p))
	}
	root := int(getU32(p, 0))
	if root > len(p)-4 {
		return tableRef{}, v.fail(d.name, 0, "root offset %d points outside the payload of %d bytes", root, len(p))
	}
	return v.table(d, root, 0)
}

// table verifies the table of descriptor d at position pos.
func (v *verifier) table(d *tableDesc, pos, depth int) (tableRef, error) {
	p := v.p
	if depth > MaxDepth {
		return tableRef{}, v.fail(d.name, pos, "tables nest deeper than MaxDepth (%d)", MaxDepth)
	}
	if v.tables++; v.tables > MaxTables {
		return tableRef{}, v.fail(d.name, pos, "more than MaxTables (%d) tables in one payload", MaxTables)
	}
	if pos < 0 || pos > len(p)-4 {
		return tableRef{}, v.fail(d.name, pos, "table at %d lies outside the payload of %d bytes", pos, len(p))
	}
	if pos%4 != 0 {
		return tableRef{}, v.fail(d.name, pos, "table is not 4-byte aligned")
	}
	vt := pos - int(getI32(p, pos))
	if vt < 0 || vt > len(p)-4 {
		return tableRef{}, v.fail(d.name, pos, "vtable at %d lies outside the payload of %d bytes", vt, len(p))
	}
	if vt%2 != 0 {
		return tableRef{}, v.fail(d.name, vt, "vtable is not 2-byte aligned")
	}
	r := tableRef{pos: pos, vtablePos: vt, vtableLen: getU16(p, vt), tableLen: getU16(p, vt+2)}
	if r.vtableLen < 4 || r.vtableLen%2 != 0 {
		return tableRef{}, v.fail(d.name, vt, "vtable size %d is not an even number >= 4", r.vtableLen)
	}
	if vt+r.vtableLen > len(p) {
		return tableRef{}, v.fail(d.name, vt, "vtable of %d bytes runs past the payload end %d", r.vtableLen, len(p))
	}
	if r.tableLen < 4 {
		return tableRef{}, v.fail(d.name, vt+2, "table size %d is below 4", r.tableLen)
	}
	if pos+r.tableLen > len(p) {
		return tableRef{}, v.fail(d.name, pos, "table of %d bytes runs past the payload end %d", r.tableLen, len(p))
	}
	r.canonical = r.vtableLen == len(d.canonVT) && string(p[vt:vt+r.vtableLen]) == d.canonVT &&
		(!d.align8 || pos%8 == 4)
	if r.canonical {
		// Every field is present at its canonical offset, inside the table,
		// aligned: only the out-of-line objects remain to check.
		for _, i := range d.refs {
			f := &d.fields[i]
			if err := v.ref(d, f, pos+f.canonOff, depth); err != nil {
				return tableRef{}, err
			}
		}
		return r, nil
	}
	for i := range d.fields {
		f := &d.fields[i]
		e := 4 + 2*f.slot
		o := 0
		if e+2 <= r.vtableLen {
			o = getU16(p, vt+e)
		}
		if o == 0 {
			if f.required {
				return tableRef{}, v.fieldFail(d, f, pos, "required field is missing")
			}
			continue
		}
		size := f.kind.inlineSize()
		if o < 4 || o+size > r.tableLen {
			return tableRef{}, v.fieldFail(d, f, vt+e, "field at table offset %d (%d bytes) lies outside the table's %d bytes", o, size, r.tableLen)
		}
		if (pos+o)%size != 0 {
			return tableRef{}, v.fieldFail(d, f, pos+o, "%s field is not %d-byte aligned", f.kind, size)
		}
		if f.kind.isRef() {
			if err := v.ref(d, f, pos+o, depth); err != nil {
				return tableRef{}, err
			}
		}
	}
	return r, nil
}

// target follows the uoffset at fp and checks that it lands inside the
// payload with room for a length word.
func (v *verifier) target(d *tableDesc, f *fieldDesc, fp int) (int, error) {
	u := getU32(v.p, fp)
	if u == 0 || u >= 1<<31 {
		return 0, v.fieldFail(d, f, fp, "offset %d is zero or not below 2^31", u)
	}
	t := fp + int(u)
	if t > len(v.p)-4 {
		return 0, v.fieldFail(d, f, fp, "offset %d points to %d, outside the payload of %d bytes", u, t, len(v.p))
	}
	if t%4 != 0 {
		return 0, v.fieldFail(d, f, t, "%s is not 4-byte aligned", f.kind)
	}
	return t, nil
}

// ref verifies the string, vector or table that field f's uoffset at fp
// points to.
func (v *verifier) ref(d *tableDesc, f *fieldDesc, fp, depth int) error {
	p := v.p
	t, err := v.target(d, f, fp)
	if err != nil {
		return err
	}
	if f.kind == kindTable {
		_, err := v.table(f.table, t, depth+1)
		if err != nil {
			return nestedVerifyError(d, f, -1, err)
		}
		return nil
	}
	n := int(getU32(p, t))
	if n > f.maxLen {
		return v.fieldFail(d, f, t, "%s of %d %s exceeds the limit of %d", f.kind, n, unitOf(f.kind), f.maxLen)
	}
	start := t + 4
	switch f.kind {
	case kindString:
		if start+n >= len(p) {
			return v.fieldFail(d, f, t, "string of %d bytes and its NUL run past the payload end %d", n, len(p))
		}
		if p[start+n] != 0 {
			return v.fieldFail(d, f, start+n, "string is not NUL-terminated")
		}
		s := p[start : start+n]
		if f.required && n == 0 {
			return v.fieldFail(d, f, t, "required string is empty")
		}
		if !validUTF8(s) {
			return v.fieldFail(d, f, start, "string is not valid UTF-8")
		}
	case kindBytes:
		if start+n > len(p) {
			return v.fieldFail(d, f, t, "vector of %d bytes runs past the payload end %d", n, len(p))
		}
	case kindStructs:
		s := f.strct
		if start%s.align != 0 {
			return v.fieldFail(d, f, start, "%s elements are not %d-byte aligned", s.name, s.align)
		}
		if start+n*s.size > len(p) {
			return v.fieldFail(d, f, t, "vector of %d %s (%d bytes each) runs past the payload end %d", n, s.name, s.size, len(p))
		}
	case kindTables:
		if start+4*n > len(p) {
			return v.fieldFail(d, f, t, "vector of %d table offsets runs past the payload end %d", n, len(p))
		}
		for i := 0; i < n; i++ {
			ep := start + 4*i
			u := getU32(p, ep)
			if u == 0 || u >= 1<<31 || ep+int(u) > len(p)-4 {
				return nestedVerifyError(d, f, i, v.fail(f.table.name, ep, "offset %d is zero, not below 2^31 or points outside the payload of %d bytes", u, len(p)))
			}
			if _, err := v.table(f.table, ep+int(u), depth+1); err != nil {
				return nestedVerifyError(d, f, i, err)
			}
		}
	}
	return nil
}

// validUTF8 is utf8.Valid with a fast path for the short ASCII strings that
// events mostly carry (utf8.Valid's set-up dominates below ~16 bytes).
func validUTF8(b []byte) bool {
	s := b
	for len(s) >= 8 {
		if le.Uint64(s)&0x8080808080808080 != 0 {
			return utf8.Valid(b)
		}
		s = s[8:]
	}
	for _, c := range s {
		if c >= utf8.RuneSelf {
			return utf8.Valid(b)
		}
	}
	return true
}

func unitOf(k kind) string {
	if k == kindString || k == kindBytes {
		return "bytes"
	}
	return "elements"
}

func nestedVerifyError(d *tableDesc, f *fieldDesc, i int, err error) error {
	for j := range d.fields {
		if &d.fields[j] == f {
			return nestedError(d, j, i, err)
		}
	}
	return err
}
