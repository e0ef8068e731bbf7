package schema

import (
	"fmt"
	"math"
	"reflect"

	"pgregory.net/rapid"
)

// genEvent draws a random event of type typ within the bounds of events.fbs.
// It walks the generated struct with reflect, taking each field's bounds from
// the descriptor (whose fields are the struct's, in order).
func genEvent(t *rapid.T, typ Type) Event {
	ev, ok := NewEvent(typ)
	if !ok {
		panic(fmt.Sprintf("no event type %v", typ))
	}
	genTable(t, reflect.ValueOf(ev).Elem(), ev.desc(), ev.desc().name)
	return ev
}

// genFloat draws doubles including the values JSON cannot spell. NaN is
// always math.NaN(): JSON keeps NaN but not its payload bits.
func genFloat(t *rapid.T, label string) float64 {
	f := rapid.OneOf(
		rapid.Float64(),
		rapid.Float64Range(-1e6, 1e6),
		rapid.SampledFrom([]float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(),
			math.MaxFloat64, math.SmallestNonzeroFloat64, 73250.5}),
	).Draw(t, label)
	if math.IsNaN(f) {
		return math.NaN()
	}
	return f
}

func genScalar(t *rapid.T, v reflect.Value, k kind, e *enumDesc, label string) {
	switch k {
	case kindBool:
		v.SetBool(rapid.Bool().Draw(t, label))
	case kindU8:
		if e != nil {
			// Mostly named values, sometimes one events.fbs does not name.
			v.SetUint(uint64(rapid.IntRange(0, len(e.values)).Draw(t, label)))
		} else {
			v.SetUint(uint64(rapid.Uint8().Draw(t, label)))
		}
	case kindI32:
		v.SetInt(int64(rapid.Int32().Draw(t, label)))
	case kindU32:
		v.SetUint(uint64(rapid.Uint32().Draw(t, label)))
	case kindI64:
		v.SetInt(rapid.Int64().Draw(t, label))
	case kindU64:
		v.SetUint(rapid.Uint64().Draw(t, label))
	case kindF64:
		v.SetFloat(genFloat(t, label))
	default:
		panic("not a scalar")
	}
}

func genTable(t *rapid.T, v reflect.Value, d *tableDesc, path string) {
	if v.NumField() != len(d.fields) {
		panic(fmt.Sprintf("%s: struct has %d fields, descriptor %d", d.name, v.NumField(), len(d.fields)))
	}
	for i := range d.fields {
		f := &d.fields[i]
		fv := v.Field(i)
		label := path + "." + f.name
		switch f.kind {
		case kindString:
			minLen := 0
			if f.required {
				minLen = 1
			}
			fv.SetString(rapid.StringOfN(rapid.Rune(), minLen, -1, f.maxLen).Draw(t, label))
		case kindBytes:
			fv.SetBytes(rapid.SliceOfN(rapid.Byte(), 0, f.maxLen).Draw(t, label))
		case kindStructs:
			n := rapid.IntRange(0, min(f.maxLen, 6)).Draw(t, label+".len")
			s := reflect.MakeSlice(fv.Type(), n, n)
			for j := 0; j < n; j++ {
				for k, sf := range f.strct.fields {
					genScalar(t, s.Index(j).Field(k), sf.kind, sf.enum, fmt.Sprintf("%s[%d].%s", label, j, sf.name))
				}
			}
			fv.Set(s)
		case kindTables:
			n := rapid.IntRange(0, min(f.maxLen, 4)).Draw(t, label+".len")
			s := reflect.MakeSlice(fv.Type(), n, n)
			for j := 0; j < n; j++ {
				genTable(t, s.Index(j), f.table, fmt.Sprintf("%s[%d]", label, j))
			}
			fv.Set(s)
		case kindTable:
			genTable(t, fv, f.table, label)
		default:
			genScalar(t, fv, f.kind, f.enum, label)
		}
	}
}

// diffValues returns "" when a and b hold the same event, comparing doubles
// by their bits and treating nil and empty slices alike, else the path of
// the first difference.
//
// With loose, -0 equals +0: flatc's builder omits a field equal to its
// default and -0 == 0, so it writes -0 as absent, which reads as +0.
func diffValues(a, b reflect.Value, path string, loose bool) string {
	switch a.Kind() {
	case reflect.Pointer:
		return diffValues(a.Elem(), b.Elem(), path, loose)
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if d := diffValues(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name, loose); d != "" {
				return d
			}
		}
		return ""
	case reflect.Slice:
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: length %d != %d", path, a.Len(), b.Len())
		}
		for i := 0; i < a.Len(); i++ {
			if d := diffValues(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i), loose); d != "" {
				return d
			}
		}
		return ""
	case reflect.Float64:
		if loose && a.Float() == 0 && b.Float() == 0 {
			return ""
		}
		if math.Float64bits(a.Float()) != math.Float64bits(b.Float()) {
			return fmt.Sprintf("%s: %v != %v", path, a.Float(), b.Float())
		}
		return ""
	}
	if !a.Equal(b) {
		return fmt.Sprintf("%s: %#v != %#v", path, a.Interface(), b.Interface())
	}
	return ""
}

func diffEvents(a, b Event) string {
	if a.EventType() != b.EventType() {
		return fmt.Sprintf("types %v != %v", a.EventType(), b.EventType())
	}
	return diffValues(reflect.ValueOf(a), reflect.ValueOf(b), a.EventType().String(), false)
}

// diffEventsLoose is diffEvents with -0 equal to +0.
func diffEventsLoose(a, b Event) string {
	return diffValues(reflect.ValueOf(a), reflect.ValueOf(b), a.EventType().String(), true)
}

// sampleFrames returns one frame of every event type, with every string,
// vector and nested table non-empty, deterministic.
func sampleFrames() map[Type][]byte {
	out := map[Type][]byte{}
	for i, typ := range Types() {
		ev, _ := NewEvent(typ)
		fillSample(reflect.ValueOf(ev).Elem(), ev.desc(), i)
		frame, err := AppendEvent(nil, Header{Seq: uint64(100 + i), PublishNs: 1767225600123456789, Flags: 1}, ev)
		if err != nil {
			panic(err)
		}
		out[typ] = frame
	}
	return out
}

func fillSample(v reflect.Value, d *tableDesc, seed int) {
	for i := range d.fields {
		f := &d.fields[i]
		fv := v.Field(i)
		n := seed + i + 1
		switch f.kind {
		case kindBool:
			fv.SetBool(true)
		case kindU8:
			if f.enum != nil {
				fv.SetUint(uint64(n % len(f.enum.values)))
			} else {
				fv.SetUint(uint64(n))
			}
		case kindI32, kindI64:
			fv.SetInt(int64(n) * 1_000_000_007)
		case kindU32, kindU64:
			fv.SetUint(uint64(n) * 3)
		case kindF64:
			fv.SetFloat(float64(n) + 0.25)
		case kindString:
			fv.SetString(fmt.Sprintf("SHFE.cu25%02d-%s", n%100, f.name)[:min(f.maxLen, 12+len(f.name))])
		case kindBytes:
			fv.SetBytes([]byte(fmt.Sprintf("bytes-%d", n))[:min(f.maxLen, 7)])
		case kindStructs:
			s := reflect.MakeSlice(fv.Type(), 2, 2)
			for j := 0; j < 2; j++ {
				for k, sf := range f.strct.fields {
					e := s.Index(j).Field(k)
					switch sf.kind {
					case kindF64:
						e.SetFloat(float64(n*10+j) + 0.5)
					case kindI64:
						e.SetInt(int64(n*10 + j))
					case kindU8:
						e.SetUint(uint64(j))
					}
				}
			}
			fv.Set(s)
		case kindTables:
			s := reflect.MakeSlice(fv.Type(), 2, 2)
			for j := 0; j < 2; j++ {
				fillSample(s.Index(j), f.table, n+j)
			}
			fv.Set(s)
		case kindTable:
			fillSample(fv, f.table, n)
		}
	}
}
