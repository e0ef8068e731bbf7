package schema

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// JSON form of a frame, one object per frame:
//
//	{"header":{"type":"Tick","seq":7,"publish_ns":1767225600000000000,"flags":0},
//	 "event":{"instrument_id":"SHFE.cu2501","datetime":1767225599999000000,"last_price":73250, ...}}
//
// Field names are those of events.fbs (the DIFF names where DIFF has the
// field); every field is rendered, absent ones as their zero value. Integers
// (ns times included) are JSON integers, exact to 64 bits. Doubles use the
// shortest form that parses back to the same bits; NaN and the infinities,
// which JSON lacks, are the strings "NaN", "Infinity" and "-Infinity". Enums
// are their names ("BUY"), or integers for values events.fbs does not name.
// [ubyte] fields are standard base64 strings. A Padding frame has only its
// header.

// AppendJSON verifies frame and appends its JSON form to dst. Nothing is
// appended when the frame does not verify. Every field is rendered as it
// is, secrets included: FrameFromJSON of the result rebuilds the frame.
// Output meant for people (tools, the admin API) uses AppendJSONRedacted.
func AppendJSON(dst, frame []byte) ([]byte, error) {
	return appendFrameJSON(dst, frame, false)
}

// AppendJSONRedacted is AppendJSON with every secret string field — one
// whose name ends in "_password" (TransferRequest's future_password and
// bank_password) — rendered as RedactedSecret when it is set (an unset one
// stays ""). What it renders does not rebuild the original frame.
func AppendJSONRedacted(dst, frame []byte) ([]byte, error) {
	return appendFrameJSON(dst, frame, true)
}

// RedactedSecret replaces a secret field's value in AppendJSONRedacted.
const RedactedSecret = "<redacted>"

// isSecretField reports whether a string field holds a secret.
func isSecretField(f *fieldDesc) bool { return strings.HasSuffix(f.name, "_password") }

func appendFrameJSON(dst, frame []byte, redact bool) ([]byte, error) {
	h, err := DecodeHeader(frame)
	if err != nil {
		return dst, err
	}
	var et *eventType
	var r tableRef
	p := frame[HeaderSize:h.Length]
	if h.Type != TypePadding {
		if et = lookupType(h.Type); et == nil {
			return dst, &FrameError{Op: "verify", Type: h.Type, Path: "header", Offset: 4,
				Reason: fmt.Sprintf("unknown frame type %d", uint16(h.Type))}
		}
		if err = verifyRoot(h.Type, et.desc, p, HeaderSize, &r); err != nil {
			return dst, err
		}
	}
	dst = append(dst, `{"header":{"type":`...)
	dst = appendJSONString(dst, h.Type.String())
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, h.Seq, 10)
	dst = append(dst, `,"publish_ns":`...)
	dst = strconv.AppendInt(dst, h.PublishNs, 10)
	dst = append(dst, `,"flags":`...)
	dst = strconv.AppendUint(dst, uint64(h.Flags), 10)
	dst = append(dst, '}')
	if et != nil {
		dst = append(dst, `,"event":`...)
		dst = appendTableJSON(dst, p, r, et.desc, redact)
	}
	return append(dst, '}'), nil
}

func appendTableJSON(dst, p []byte, r tableRef, d *tableDesc, redact bool) []byte {
	dst = append(dst, '{')
	for i := range d.fields {
		f := &d.fields[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, f.name...) // names are [a-z0-9_]: nothing to escape
		dst = append(dst, '"', ':')
		switch f.kind {
		case kindBool:
			dst = strconv.AppendBool(dst, r.boolAt(p, f.slot))
		case kindU8:
			dst = appendU8JSON(dst, r.u8(p, f.slot), f.enum)
		case kindI32:
			dst = strconv.AppendInt(dst, int64(r.i32(p, f.slot)), 10)
		case kindU32:
			dst = strconv.AppendUint(dst, uint64(r.u32(p, f.slot)), 10)
		case kindI64:
			dst = strconv.AppendInt(dst, r.i64(p, f.slot), 10)
		case kindU64:
			dst = strconv.AppendUint(dst, r.u64(p, f.slot), 10)
		case kindF64:
			dst = appendFloatJSON(dst, r.f64(p, f.slot))
		case kindString:
			b := bytesAt(p, r.field(p, f.slot, 4))
			if redact && len(b) > 0 && isSecretField(f) {
				dst = appendJSONString(dst, RedactedSecret)
			} else {
				dst = appendJSONBytes(dst, b)
			}
		case kindBytes:
			dst = append(dst, '"')
			dst = base64.StdEncoding.AppendEncode(dst, bytesAt(p, r.field(p, f.slot, 4)))
			dst = append(dst, '"')
		case kindStructs:
			s := f.strct
			start, n := vectorAt(p, r.field(p, f.slot, 4), s.size)
			dst = append(dst, '[')
			for j := 0; j < n; j++ {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = appendStructJSON(dst, p[start+j*s.size:start+(j+1)*s.size], s)
			}
			dst = append(dst, ']')
		case kindTables:
			start, n := vectorAt(p, r.field(p, f.slot, 4), 4)
			dst = append(dst, '[')
			for j := 0; j < n; j++ {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = appendSubtableJSON(dst, p, start+4*j, f.table, redact)
			}
			dst = append(dst, ']')
		case kindTable:
			dst = appendSubtableJSON(dst, p, r.field(p, f.slot, 4), f.table, redact)
		}
	}
	return append(dst, '}')
}

func appendSubtableJSON(dst, p []byte, fp int, d *tableDesc, redact bool) []byte {
	sub, ok := subtable(p, fp, d)
	if !ok {
		return append(dst, "null"...)
	}
	return appendTableJSON(dst, p, sub, d, redact)
}

func appendStructJSON(dst, b []byte, s *structDesc) []byte {
	dst = append(dst, '{')
	for i, f := range s.fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, f.name...)
		dst = append(dst, '"', ':')
		switch f.kind {
		case kindBool:
			dst = strconv.AppendBool(dst, b[f.offset] != 0)
		case kindU8:
			dst = appendU8JSON(dst, b[f.offset], f.enum)
		case kindI32:
			dst = strconv.AppendInt(dst, int64(getI32(b, f.offset)), 10)
		case kindU32:
			dst = strconv.AppendUint(dst, uint64(getU32(b, f.offset)), 10)
		case kindI64:
			dst = strconv.AppendInt(dst, getI64(b, f.offset), 10)
		case kindU64:
			dst = strconv.AppendUint(dst, getU64(b, f.offset), 10)
		case kindF64:
			dst = appendFloatJSON(dst, getF64(b, f.offset))
		}
	}
	return append(dst, '}')
}

func appendU8JSON(dst []byte, v uint8, e *enumDesc) []byte {
	if e != nil {
		if name := e.nameOf(v); name != "" {
			return appendJSONString(dst, name)
		}
	}
	return strconv.AppendUint(dst, uint64(v), 10)
}

func appendFloatJSON(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

func appendJSONString(dst []byte, s string) []byte {
	return appendJSONBytes(dst, []byte(s))
}

const hexDigits = "0123456789abcdef"

// appendJSONBytes appends b as a JSON string. Invalid UTF-8 (which a verified
// frame does not contain) becomes U+FFFD; U+2028 and U+2029 are escaped so
// the output is also valid JavaScript.
func appendJSONBytes(dst, b []byte) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20 || c == 0x7f:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			dst = append(dst, b[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// ---- parsing ----

// errUnknownField is what a generated setJSON returns for a name its table
// does not have.
var errUnknownField = errors.New("unknown field")

// MaxJSONBytes bounds the text FrameFromJSON accepts: the JSON of the
// largest frame (base64 and escapes included) fits with room to spare.
const MaxJSONBytes = 8 * MaxFrameBytes

// FrameFromJSON parses one frame in the JSON form that AppendJSON writes and
// appends the frame to dst. "header.type" and "event" are required; seq,
// publish_ns and flags default to 0, and absent event fields to their zero
// value. Integers are parsed from their text, exact to 64 bits. Unknown type
// names, unknown or repeated fields, JSON values of the wrong kind and values
// that break a bound of events.fbs are errors naming the field.
func FrameFromJSON(line, dst []byte) ([]byte, error) {
	if len(line) > MaxJSONBytes {
		return dst, fmt.Errorf("schema: json frame: %d bytes exceed MaxJSONBytes (%d)", len(line), MaxJSONBytes)
	}
	var h Header
	typeSet := false
	var event []byte
	err := jsonTop(line, func(name string, raw []byte) error {
		switch name {
		case "header":
			return jsonObject(raw, func(name string, raw []byte) error {
				switch name {
				case "type":
					var s string
					if err := jsonString(raw, &s); err != nil {
						return err
					}
					t, ok := TypeByName(s)
					if !ok {
						return fmt.Errorf("unknown event type %q", s)
					}
					h.Type, typeSet = t, true
					return nil
				case "seq":
					return jsonU64(raw, &h.Seq)
				case "publish_ns":
					return jsonI64(raw, &h.PublishNs)
				case "flags":
					var v uint64
					if err := jsonUint(raw, 16, &v); err != nil {
						return err
					}
					h.Flags = Flag(v)
					return nil
				}
				return errUnknownField
			})
		case "event":
			event = raw
			return nil
		}
		return errUnknownField
	})
	if err != nil {
		return dst, fmt.Errorf("schema: json frame: %w", err)
	}
	if !typeSet {
		return dst, errors.New(`schema: json frame: "header" with a "type" is required`)
	}
	if h.Type == TypePadding {
		return dst, errors.New("schema: json frame: Padding is ring filler, not an event: it cannot be built from JSON")
	}
	ev, _ := NewEvent(h.Type)
	if event == nil {
		return dst, fmt.Errorf(`schema: json frame: %v: "event" is required`, h.Type)
	}
	if err := jsonObject(event, ev.setJSON); err != nil {
		return dst, fmt.Errorf("schema: json frame: %v event: %w", h.Type, err)
	}
	return AppendEvent(dst, h, ev)
}

// jsonTop parses a whole document that must be one object.
func jsonTop(doc []byte, set func(name string, raw []byte) error) error {
	dec := json.NewDecoder(bytes.NewReader(doc))
	if err := jsonMembers(dec, doc, set); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("data after the object at byte %d", dec.InputOffset())
	}
	return nil
}

// jsonObject parses raw, which must be a JSON object, calling set for each
// member in order.
func jsonObject(raw []byte, set func(name string, raw []byte) error) error {
	return jsonMembers(json.NewDecoder(bytes.NewReader(raw)), raw, set)
}

func jsonMembers(dec *json.Decoder, raw []byte, set func(name string, raw []byte) error) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("want a JSON object: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("want a JSON object, got %s", jsonKind(raw))
	}
	var seen []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string) // a key is always a string
		for _, s := range seen {
			if s == name {
				return fmt.Errorf("field %q appears twice", name)
			}
		}
		seen = append(seen, name)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return fmt.Errorf("field %q: %w", name, err)
		}
		if err := set(name, val); err != nil {
			if err == errUnknownField {
				return fmt.Errorf("unknown field %q", name)
			}
			return fmt.Errorf("field %q: %w", name, err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return err
	}
	return nil
}

// jsonKind names the kind of JSON value raw holds, for errors.
func jsonKind(raw []byte) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "the number " + string(raw)
}

func isJSONNumber(raw []byte) bool {
	return len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9')
}

func jsonInt(raw []byte, bits int, dst *int64) error {
	if !isJSONNumber(raw) {
		return fmt.Errorf("want an integer, got %s", jsonKind(raw))
	}
	v, err := strconv.ParseInt(string(raw), 10, bits)
	if err != nil {
		return fmt.Errorf("want an integer of %d bits, got %s", bits, raw)
	}
	*dst = v
	return nil
}

func jsonUint(raw []byte, bits int, dst *uint64) error {
	if !isJSONNumber(raw) {
		return fmt.Errorf("want an unsigned integer, got %s", jsonKind(raw))
	}
	v, err := strconv.ParseUint(string(raw), 10, bits)
	if err != nil {
		return fmt.Errorf("want an unsigned integer of %d bits, got %s", bits, raw)
	}
	*dst = v
	return nil
}

func jsonI64(raw []byte, dst *int64) error { return jsonInt(raw, 64, dst) }

func jsonU64(raw []byte, dst *uint64) error { return jsonUint(raw, 64, dst) }

func jsonI32(raw []byte, dst *int32) error {
	var v int64
	err := jsonInt(raw, 32, &v)
	*dst = int32(v)
	return err
}

func jsonU32(raw []byte, dst *uint32) error {
	var v uint64
	err := jsonUint(raw, 32, &v)
	*dst = uint32(v)
	return err
}

func jsonU8(raw []byte, dst *uint8) error {
	var v uint64
	err := jsonUint(raw, 8, &v)
	*dst = uint8(v)
	return err
}

func jsonF64(raw []byte, dst *float64) error {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		switch s {
		case "NaN":
			*dst = math.NaN()
		case "Infinity":
			*dst = math.Inf(1)
		case "-Infinity":
			*dst = math.Inf(-1)
		default:
			return fmt.Errorf(`want a number (or "NaN", "Infinity", "-Infinity"), got the string %q`, s)
		}
		return nil
	}
	if !isJSONNumber(raw) {
		return fmt.Errorf("want a number, got %s", jsonKind(raw))
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return fmt.Errorf("number %s does not fit a double", raw)
	}
	*dst = v
	return nil
}

func jsonBool(raw []byte, dst *bool) error {
	switch string(raw) {
	case "true":
		*dst = true
	case "false":
		*dst = false
	default:
		return fmt.Errorf("want true or false, got %s", jsonKind(raw))
	}
	return nil
}

func jsonString(raw []byte, dst *string) error {
	if len(raw) == 0 || raw[0] != '"' {
		return fmt.Errorf("want a string, got %s", jsonKind(raw))
	}
	return json.Unmarshal(raw, dst)
}

func jsonBytes(raw []byte, dst *[]byte) error {
	var s string
	if err := jsonString(raw, &s); err != nil {
		return fmt.Errorf("%w (base64)", err)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("want standard base64: %w", err)
	}
	*dst = b
	return nil
}

func jsonEnum(raw []byte, e *enumDesc, dst *uint8) error {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		for i, name := range e.values {
			if name == s {
				*dst = uint8(i)
				return nil
			}
		}
		return fmt.Errorf("%q is not a %s (one of %q)", s, e.name, e.values)
	}
	if isJSONNumber(raw) {
		return jsonU8(raw, dst)
	}
	return fmt.Errorf("want a %s name or an integer, got %s", e.name, jsonKind(raw))
}

// jsonSettable is a pointer to a generated table or struct type.
type jsonSettable[T any] interface {
	*T
	setJSON(name string, raw []byte) error
}

// jsonVector parses an array of objects into dst, at most maxLen of them; it
// stops reading at the first element past the limit.
func jsonVector[T any, PT jsonSettable[T]](raw []byte, maxLen int, dst *[]T) error {
	if len(raw) == 0 || raw[0] != '[' {
		return fmt.Errorf("want an array, got %s", jsonKind(raw))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // the opening bracket
		return err
	}
	var out []T
	for i := 0; dec.More(); i++ {
		if i == maxLen {
			return fmt.Errorf("more than the limit of %d elements", maxLen)
		}
		var elem json.RawMessage
		if err := dec.Decode(&elem); err != nil {
			return fmt.Errorf("element %d: %w", i, err)
		}
		var x T
		if err := jsonObject(elem, PT(&x).setJSON); err != nil {
			return fmt.Errorf("element %d: %w", i, err)
		}
		out = append(out, x)
	}
	*dst = out
	return nil
}

// enumString names v, or spells it Name(v) when e has no name for it.
func enumString(e *enumDesc, v uint8) string {
	if name := e.nameOf(v); name != "" {
		return name
	}
	return e.name + "(" + strconv.Itoa(int(v)) + ")"
}

// MayHoldSecrets reports whether frame's bytes may contain the value of a
// secret field (see AppendJSONRedacted), so that tools showing raw bytes —
// a quarantined frame, which does not verify and so cannot be rendered
// field by field — know to withhold them. It is true for a type with a
// secret string field at any depth, and for a frame too short to name its
// type or naming a type events.fbs does not define: a damaged header could
// belong to any type. Padding frames carry no fields.
func MayHoldSecrets(frame []byte) bool {
	if len(frame) < 6 {
		return true
	}
	t := Type(binary.LittleEndian.Uint16(frame[4:6]))
	if t == TypePadding {
		return false
	}
	et := lookupType(t)
	return et == nil || tableHasSecret(et.desc, 0)
}

// tableHasSecret reports whether d or a table nested in it has a secret
// field; depth bounds a (hypothetical) recursive schema.
func tableHasSecret(d *tableDesc, depth int) bool {
	if d == nil || depth > 16 {
		return depth > 16
	}
	for i := range d.fields {
		f := &d.fields[i]
		if f.kind == kindString && isSecretField(f) {
			return true
		}
		if f.table != nil && tableHasSecret(f.table, depth+1) {
			return true
		}
	}
	return false
}
