package main

import (
	"fmt"

	flatbuffers "github.com/google/flatbuffers/go"
)

// A minimal reader of flatc's binary schema (reflection.fbs, the "BFBS"
// file that `flatc --binary --schema` writes). Slot numbers are the field ids
// of reflection.fbs; it only ever appends fields, so these stay valid.

const (
	// Schema
	schemaObjects = 0
	schemaEnums   = 1
	// Object
	objectName     = 0
	objectFields   = 1
	objectIsStruct = 2
	objectMinAlign = 3
	objectByteSize = 4
	objectAttrs    = 5
	objectDoc      = 6
	// Field
	fieldName        = 0
	fieldType        = 1
	fieldID          = 2
	fieldOffset      = 3
	fieldDefaultInt  = 4
	fieldDefaultReal = 5
	fieldDeprecated  = 6
	fieldRequired    = 7
	fieldAttrs       = 9
	fieldDoc         = 10
	fieldOptional    = 11
	// Type
	typeBaseType = 0
	typeElement  = 1
	typeIndex    = 2
	// Enum
	enumName       = 0
	enumValues     = 1
	enumIsUnion    = 2
	enumUnderlying = 3
	enumDoc        = 5
	// EnumVal
	enumValName  = 0
	enumValValue = 1
	// KeyValue
	kvKey   = 0
	kvValue = 1
)

// reflection.BaseType
const (
	btBool   = 2
	btUByte  = 4
	btInt    = 7
	btUInt   = 8
	btLong   = 9
	btULong  = 10
	btDouble = 12
	btString = 13
	btVector = 14
	btObj    = 15
)

type tab struct{ t flatbuffers.Table }

func rootTab(buf []byte) (tab, error) {
	if len(buf) < 8 || string(buf[4:8]) != "BFBS" {
		return tab{}, fmt.Errorf("not a binary schema (no BFBS identifier)")
	}
	return tab{flatbuffers.Table{Bytes: buf, Pos: flatbuffers.GetUOffsetT(buf)}}, nil
}

func (t tab) off(slot int) flatbuffers.UOffsetT {
	return flatbuffers.UOffsetT(t.t.Offset(flatbuffers.VOffsetT(4 + 2*slot)))
}

func (t tab) str(slot int) string {
	o := t.off(slot)
	if o == 0 {
		return ""
	}
	return string(t.t.ByteVector(o + t.t.Pos))
}

func (t tab) boolean(slot int) bool {
	o := t.off(slot)
	return o != 0 && t.t.GetBool(o+t.t.Pos)
}

func (t tab) u16(slot int, def uint16) uint16 {
	if o := t.off(slot); o != 0 {
		return t.t.GetUint16(o + t.t.Pos)
	}
	return def
}

func (t tab) i32(slot int, def int32) int32 {
	if o := t.off(slot); o != 0 {
		return t.t.GetInt32(o + t.t.Pos)
	}
	return def
}

func (t tab) i64(slot int, def int64) int64 {
	if o := t.off(slot); o != 0 {
		return t.t.GetInt64(o + t.t.Pos)
	}
	return def
}

func (t tab) f64(slot int) float64 {
	if o := t.off(slot); o != 0 {
		return t.t.GetFloat64(o + t.t.Pos)
	}
	return 0
}

func (t tab) i8(slot int, def int8) int8 {
	if o := t.off(slot); o != 0 {
		return t.t.GetInt8(o + t.t.Pos)
	}
	return def
}

func (t tab) sub(slot int) (tab, bool) {
	o := t.off(slot)
	if o == 0 {
		return tab{}, false
	}
	return tab{flatbuffers.Table{Bytes: t.t.Bytes, Pos: t.t.Indirect(o + t.t.Pos)}}, true
}

func (t tab) tables(slot int) []tab {
	o := t.off(slot)
	if o == 0 {
		return nil
	}
	start := t.t.Vector(o)
	n := t.t.VectorLen(o)
	out := make([]tab, n)
	for i := range out {
		p := start + flatbuffers.UOffsetT(4*i)
		out[i] = tab{flatbuffers.Table{Bytes: t.t.Bytes, Pos: t.t.Indirect(p)}}
	}
	return out
}

func (t tab) strings(slot int) []string {
	o := t.off(slot)
	if o == 0 {
		return nil
	}
	start := t.t.Vector(o)
	n := t.t.VectorLen(o)
	out := make([]string, n)
	for i := range out {
		out[i] = string(t.t.ByteVector(start + flatbuffers.UOffsetT(4*i)))
	}
	return out
}

func (t tab) attrs(slot int) map[string]string {
	m := map[string]string{}
	for _, kv := range t.tables(slot) {
		m[kv.str(kvKey)] = kv.str(kvValue)
	}
	return m
}
