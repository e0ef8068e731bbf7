package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// The model of events.fbs that the generator emits code from. It accepts only
// the subset of flatbuffers that schema/ supports and says why it rejects
// anything else.

type kind int

const (
	kBool kind = iota + 1
	kU8
	kI32
	kU32
	kI64
	kU64
	kF64
	kString
	kBytes
	kStructs
	kTables
	kTable
)

var kindNames = map[kind]string{
	kBool: "kindBool", kU8: "kindU8", kI32: "kindI32", kU32: "kindU32", kI64: "kindI64",
	kU64: "kindU64", kF64: "kindF64", kString: "kindString", kBytes: "kindBytes",
	kStructs: "kindStructs", kTables: "kindTables", kTable: "kindTable",
}

func (k kind) scalar() bool { return k <= kF64 }

func (k kind) inlineSize() int {
	switch k {
	case kBool, kU8:
		return 1
	case kI64, kU64, kF64:
		return 8
	}
	return 4
}

type enumM struct {
	name   string
	values []string
	doc    []string
}

type structField struct {
	name, goName string
	offset       int
	kind         kind
	enum         *enumM
	doc          []string
}

type structM struct {
	name   string
	size   int
	align  int
	fields []*structField
	doc    []string
}

type fieldM struct {
	name, goName string
	id           int
	kind         kind
	required     bool
	maxLen       int
	enum         *enumM
	strct        *structM
	table        *tableM
	doc          []string
	canonOff     int
}

type tableM struct {
	name      string
	typeID    int // 0 for tables that are not frame roots
	fields    []*fieldM
	numSlots  int
	canonSize int
	canonVT   []byte
	align8    bool
	doc       []string
}

type model struct {
	enums   []*enumM
	structs []*structM
	tables  []*tableM // sorted: events by type id, then the others by name
}

func trimNS(s string) string {
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func docLines(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, strings.TrimPrefix(s, " "))
	}
	return out
}

// goName turns snake_case into an exported Go name, spelling initialisms as
// Go does.
func goName(s string) string {
	initialisms := map[string]string{"id": "ID", "oi": "OI", "lsn": "LSN", "kib": "KiB"}
	var b strings.Builder
	for _, part := range strings.Split(s, "_") {
		if part == "" {
			continue
		}
		if v, ok := initialisms[part]; ok {
			b.WriteString(v)
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// flatcName is the name flatc's Go generator gives a field's accessor.
func flatcName(s string) string {
	var b strings.Builder
	for _, part := range strings.Split(s, "_") {
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

func buildModel(root tab) (*model, error) {
	objs := root.tables(schemaObjects)
	enums := root.tables(schemaEnums)
	m := &model{}

	enumByIdx := make([]*enumM, len(enums))
	for i, e := range enums {
		name := trimNS(e.str(enumName))
		if e.boolean(enumIsUnion) {
			return nil, fmt.Errorf("union %s: unions are not supported", name)
		}
		ut, _ := e.sub(enumUnderlying)
		if bt := ut.i8(typeBaseType, 0); bt != btUByte {
			return nil, fmt.Errorf("enum %s: underlying type must be ubyte", name)
		}
		em := &enumM{name: name, doc: docLines(e.strings(enumDoc))}
		for j, v := range e.tables(enumValues) {
			if v.i64(enumValValue, 0) != int64(j) {
				return nil, fmt.Errorf("enum %s: values must be dense from 0 (%s)", name, v.str(enumValName))
			}
			em.values = append(em.values, v.str(enumValName))
		}
		enumByIdx[i] = em
		m.enums = append(m.enums, em)
	}

	structByIdx := make([]*structM, len(objs))
	tableByIdx := make([]*tableM, len(objs))
	for i, o := range objs {
		name := trimNS(o.str(objectName))
		if o.boolean(objectIsStruct) {
			structByIdx[i] = &structM{name: name, size: int(o.i32(objectByteSize, 0)),
				align: int(o.i32(objectMinAlign, 0)), doc: docLines(o.strings(objectDoc))}
			m.structs = append(m.structs, structByIdx[i])
		} else {
			tableByIdx[i] = &tableM{name: name, doc: docLines(o.strings(objectDoc))}
			m.tables = append(m.tables, tableByIdx[i])
		}
	}

	for i, o := range objs {
		fields := o.tables(objectFields)
		sort.Slice(fields, func(a, b int) bool { return fields[a].u16(fieldID, 0) < fields[b].u16(fieldID, 0) })
		if s := structByIdx[i]; s != nil {
			for _, f := range fields {
				ty, _ := f.sub(fieldType)
				k, err := scalarKind(ty.i8(typeBaseType, 0))
				if err != nil {
					return nil, fmt.Errorf("struct %s field %s: %v", s.name, f.str(fieldName), err)
				}
				sf := &structField{name: f.str(fieldName), goName: goName(f.str(fieldName)),
					offset: int(f.u16(fieldOffset, 0)), kind: k, doc: docLines(f.strings(fieldDoc))}
				if idx := ty.i32(typeIndex, -1); idx >= 0 {
					sf.enum = enumByIdx[idx]
				}
				s.fields = append(s.fields, sf)
			}
			continue
		}
		t := tableByIdx[i]
		attrs := o.attrs(objectAttrs)
		if v, ok := attrs["type_id"]; ok {
			id, err := strconv.Atoi(v)
			if err != nil || id <= 0 || id > 0xffff {
				return nil, fmt.Errorf("table %s: type_id %q is not in 1..65535", t.name, v)
			}
			t.typeID = id
		}
		for _, f := range fields {
			id := int(f.u16(fieldID, 0))
			if id+1 > t.numSlots {
				t.numSlots = id + 1
			}
			fname := f.str(fieldName)
			where := fmt.Sprintf("table %s field %s", t.name, fname)
			if f.boolean(fieldDeprecated) {
				continue
			}
			if f.i64(fieldDefaultInt, 0) != 0 || f.f64(fieldDefaultReal) != 0 {
				return nil, fmt.Errorf("%s: non-zero defaults are not supported (absent must read as zero)", where)
			}
			if int(f.u16(fieldOffset, 0)) != 4+2*id {
				return nil, fmt.Errorf("%s: vtable offset %d is not 4+2*id", where, f.u16(fieldOffset, 0))
			}
			ty, _ := f.sub(fieldType)
			fm := &fieldM{name: fname, goName: goName(fname), id: id, required: f.boolean(fieldRequired),
				doc: docLines(f.strings(fieldDoc))}
			bt := ty.i8(typeBaseType, 0)
			idx := ty.i32(typeIndex, -1)
			switch bt {
			case btString:
				fm.kind = kString
			case btVector:
				switch el := ty.i8(typeElement, 0); {
				case el == btUByte && idx < 0:
					fm.kind = kBytes
				case el == btObj && structByIdx[idx] != nil:
					fm.kind, fm.strct = kStructs, structByIdx[idx]
				case el == btObj:
					fm.kind, fm.table = kTables, tableByIdx[idx]
				default:
					return nil, fmt.Errorf("%s: vectors of base type %d are not supported", where, el)
				}
			case btObj:
				if structByIdx[idx] != nil {
					return nil, fmt.Errorf("%s: inline structs in tables are not supported", where)
				}
				fm.kind, fm.table = kTable, tableByIdx[idx]
			default:
				k, err := scalarKind(bt)
				if err != nil {
					return nil, fmt.Errorf("%s: %v", where, err)
				}
				fm.kind = k
				if f.boolean(fieldOptional) {
					return nil, fmt.Errorf("%s: optional scalars are not supported", where)
				}
				if idx >= 0 {
					fm.enum = enumByIdx[idx]
				}
			}
			fattrs := f.attrs(fieldAttrs)
			if !fm.kind.scalar() && fm.kind != kTable {
				v, ok := fattrs["max_len"]
				n, err := strconv.Atoi(v)
				if !ok || err != nil || n <= 0 {
					return nil, fmt.Errorf("%s: strings and vectors need (max_len: N) with N > 0", where)
				}
				fm.maxLen = n
			} else if _, ok := fattrs["max_len"]; ok {
				return nil, fmt.Errorf("%s: max_len applies to strings and vectors only", where)
			}
			t.fields = append(t.fields, fm)
		}
	}

	for _, t := range m.tables {
		if err := checkAcyclic(t, nil); err != nil {
			return nil, err
		}
		layout(t)
	}
	sort.SliceStable(m.tables, func(a, b int) bool {
		ta, tb := m.tables[a], m.tables[b]
		if (ta.typeID == 0) != (tb.typeID == 0) {
			return ta.typeID != 0
		}
		if ta.typeID != tb.typeID {
			return ta.typeID < tb.typeID
		}
		return ta.name < tb.name
	})
	for i := 1; i < len(m.tables); i++ {
		if id := m.tables[i].typeID; id != 0 && id == m.tables[i-1].typeID {
			return nil, fmt.Errorf("tables %s and %s share type_id %d", m.tables[i-1].name, m.tables[i].name, id)
		}
	}
	return m, nil
}

func scalarKind(bt int8) (kind, error) {
	switch bt {
	case btBool:
		return kBool, nil
	case btUByte:
		return kU8, nil
	case btInt:
		return kI32, nil
	case btUInt:
		return kU32, nil
	case btLong:
		return kI64, nil
	case btULong:
		return kU64, nil
	case btDouble:
		return kF64, nil
	}
	return 0, fmt.Errorf("base type %d is not supported (use bool, ubyte, int, uint, long, ulong, double)", bt)
}

func checkAcyclic(t *tableM, stack []*tableM) error {
	for _, s := range stack {
		if s == t {
			return fmt.Errorf("table %s contains itself: recursive tables are not supported", t.name)
		}
	}
	for _, f := range t.fields {
		if f.table != nil {
			if err := checkAcyclic(f.table, append(stack, t)); err != nil {
				return err
			}
		}
	}
	return nil
}

// layout computes the canonical table: 8-byte fields, then 4-byte, then
// 1-byte, each group by id, after the 4-byte soffset.
func layout(t *tableM) {
	fs := append([]*fieldM(nil), t.fields...)
	sort.SliceStable(fs, func(a, b int) bool { return fs[a].kind.inlineSize() > fs[b].kind.inlineSize() })
	off := 4
	for _, f := range fs {
		f.canonOff = off
		off += f.kind.inlineSize()
		if f.kind.inlineSize() == 8 {
			t.align8 = true
		}
	}
	t.canonSize = off
	vt := make([]byte, 4+2*t.numSlots)
	put16 := func(i, v int) { vt[i] = byte(v); vt[i+1] = byte(v >> 8) }
	put16(0, len(vt))
	put16(2, off)
	for _, f := range t.fields {
		put16(4+2*f.id, f.canonOff)
	}
	t.canonVT = vt
}
