package schema

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	flatbuffers "github.com/google/flatbuffers/go"
)

// readAll exercises every reader of a verified frame: DecodeEvent, the JSON
// renderer and flatc's generated accessors (which have no checks of their
// own). It reports a panic as an error.
func readAll(frame []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic reading a verified frame: %v", r)
		}
	}()
	h, err := DecodeHeader(frame)
	if err != nil {
		return err
	}
	if h.Type == TypePadding {
		_, err = AppendJSON(nil, frame)
		return err
	}
	ev, ok := NewEvent(h.Type)
	if !ok {
		return fmt.Errorf("verified frame of unknown type %v", h.Type)
	}
	if _, err := DecodeEvent(frame, ev); err != nil {
		return fmt.Errorf("DecodeEvent after Verify: %w", err)
	}
	if _, err := AppendJSON(nil, frame); err != nil {
		return fmt.Errorf("AppendJSON after Verify: %w", err)
	}
	fbCodecs[h.Type].read(frame[HeaderSize:h.Length])
	return nil
}

// verifyOrRead is the guarantee for arbitrary bytes: Verify fails with a
// *FrameError or header error, or it succeeds and every reader works.
func verifyOrRead(frame []byte) error {
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("Verify panicked: %v", r)
			}
		}()
		err = Verify(frame)
	}()
	if err != nil {
		if strings.HasPrefix(err.Error(), "Verify panicked") {
			return err
		}
		return nil
	}
	// The quick path must accept nothing the full walk rejects.
	if h, herr := DecodeHeader(frame); herr == nil && h.Type != TypePadding {
		d := lookupType(h.Type).desc
		p := frame[HeaderSize:h.Length]
		var r tableRef
		if quickVerify(p, d, &r) {
			if _, serr := verifySlow(h.Type, d, p, HeaderSize); serr != nil {
				return fmt.Errorf("quick path accepted what the full walk rejects: %v", serr)
			}
		}
	}
	return readAll(frame)
}

// fbFrame wraps a payload built by flatc's builder in a frame.
func fbFrame(typ Type, ev Event) []byte {
	b := flatbuffers.NewBuilder(256)
	b.Finish(fbCodecs[typ].build(b, ev))
	payload := b.FinishedBytes()
	frame := make([]byte, HeaderSize+len(payload))
	EncodeHeader(frame, Header{Length: uint32(len(frame)), Type: typ, Seq: 1})
	copy(frame[HeaderSize:], payload)
	return frame
}

// corpusFrames returns, for every type, our canonical frame and the same
// event built by flatc (non-canonical layout).
func corpusFrames() map[string][]byte {
	out := map[string][]byte{}
	for typ, frame := range sampleFrames() {
		out[typ.String()] = frame
		ev, _ := NewEvent(typ)
		if _, err := DecodeEvent(frame, ev); err != nil {
			panic(err)
		}
		out[typ.String()+"-flatc"] = fbFrame(typ, ev)
	}
	return out
}

func TestFlatcFramesVerify(t *testing.T) {
	for name, frame := range corpusFrames() {
		if err := Verify(frame); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if err := readAll(frame); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestTruncateEveryLength: a frame cut anywhere is rejected, whether the
// header still claims the full length or is rewritten to the cut length.
func TestTruncateEveryLength(t *testing.T) {
	for name, frame := range corpusFrames() {
		canonical := !strings.HasSuffix(name, "-flatc")
		for n := 0; n < len(frame); n++ {
			if err := Verify(frame[:n]); err == nil {
				t.Fatalf("%s cut to %d bytes (header length %d): verified", name, n, len(frame))
			}
			if n < HeaderSize {
				continue
			}
			cut := append([]byte(nil), frame[:n]...)
			putU32(cut, 0, uint32(n))
			err := verifyOrRead(cut)
			if err != nil {
				t.Fatalf("%s with payload cut to %d bytes: %v", name, n-HeaderSize, err)
			}
			// Our layout ends with its last object: any cut breaks it.
			if canonical && Verify(cut) == nil {
				t.Fatalf("%s with payload cut to %d bytes: verified", name, n-HeaderSize)
			}
		}
	}
}

// TestFlipEveryBit: a frame with any one bit flipped is rejected, or it
// verifies and every reader reads it without panicking.
func TestFlipEveryBit(t *testing.T) {
	for name, frame := range corpusFrames() {
		rejected := 0
		for i := 0; i < 8*len(frame); i++ {
			f := append([]byte(nil), frame...)
			f[i/8] ^= 1 << (i % 8)
			if err := verifyOrRead(f); err != nil {
				t.Fatalf("%s with bit %d flipped: %v", name, i, err)
			}
			if Verify(f) != nil {
				rejected++
			}
		}
		if rejected == 0 {
			t.Errorf("%s: no bit flip was rejected", name)
		}
	}
}

// payloadOf returns a copy of the payload of a sample frame of typ, and the
// position of its root table.
func payloadOf(typ Type) ([]byte, int) {
	frame := sampleFrames()[typ]
	p := append([]byte(nil), frame[HeaderSize:]...)
	return p, int(getU32(p, 0))
}

func fieldIndex(d *tableDesc, name string) int {
	for i := range d.fields {
		if d.fields[i].name == name {
			return i
		}
	}
	panic("no field " + name)
}

func TestVerifyRejects(t *testing.T) {
	tickOff := descTick.fields[fieldIndex(&descTick, "instrument_id")].canonOff
	bidsOff := descOrderBookSnapshot.fields[fieldIndex(&descOrderBookSnapshot, "bids")].canonOff
	cases := []struct {
		name   string
		typ    Type
		mutate func(p []byte, root int) []byte
		want   string
	}{
		{"root outside", TypeTick, func(p []byte, _ int) []byte { putU32(p, 0, 1<<20); return p },
			"Tick at offset 24: root offset 1048576 points outside the payload"},
		{"root misaligned", TypeTick, func(p []byte, root int) []byte { putU32(p, 0, uint32(root+2)); return p },
			"not 4-byte aligned"},
		{"vtable outside", TypeTick, func(p []byte, root int) []byte { putI32(p, root, -1<<20); return p },
			"vtable at"},
		{"vtable odd size", TypeTick, func(p []byte, root int) []byte {
			vt := root - int(getI32(p, root))
			p[vt] = 7
			return p
		}, "vtable size 7 is not an even number"},
		{"table runs past the end", TypeTick, func(p []byte, root int) []byte {
			vt := root - int(getI32(p, root))
			putU16(p, vt+2, 0xfff0)
			return p
		}, "table of 65520 bytes runs past the payload end"},
		{"field outside its table", TypeTick, func(p []byte, root int) []byte {
			vt := root - int(getI32(p, root))
			putU16(p, vt+2, 100) // table claims 100 bytes: fields beyond it
			return p
		}, "lies outside the table's 100 bytes"},
		{"misaligned double", TypeTick, func(p []byte, root int) []byte {
			vt := root - int(getI32(p, root))
			putU16(p, vt+4+2*2, 6) // last_price at table offset 6
			return p
		}, "Tick.last_price at offset"},
		{"required string missing", TypeTick, func(p []byte, root int) []byte {
			vt := root - int(getI32(p, root))
			putU16(p, vt+4, 0)
			return p
		}, "Tick.instrument_id at offset 108: required field is missing"},
		{"string offset zero", TypeTick, func(p []byte, root int) []byte { putU32(p, root+tickOff, 0); return p },
			"Tick.instrument_id"},
		{"string offset outside", TypeTick, func(p []byte, root int) []byte { putU32(p, root+tickOff, 1<<30); return p },
			"outside the payload"},
		{"string not NUL-terminated", TypeTick, func(p []byte, root int) []byte { p[len(p)-1] = 'x'; return p },
			"string is not NUL-terminated"},
		{"string over max_len", TypeTick, func(p []byte, root int) []byte {
			fp := root + tickOff
			putU32(p, fp+int(getU32(p, fp)), 65)
			return p
		}, "Tick.instrument_id at offset"},
		{"string not UTF-8", TypeTick, func(p []byte, root int) []byte {
			fp := root + tickOff
			p[fp+int(getU32(p, fp))+4] = 0xff
			return p
		}, "string is not valid UTF-8"},
		{"vector count huge", TypeOrderBookSnapshot, func(p []byte, root int) []byte {
			fp := root + bidsOff
			putU32(p, fp+int(getU32(p, fp)), 1000)
			return p
		}, "runs past the payload end"},
		{"vector over max_len", TypeOrderBookSnapshot, func(p []byte, root int) []byte {
			fp := root + bidsOff
			putU32(p, fp+int(getU32(p, fp)), 1025)
			return p
		}, "exceeds the limit of 1024"},
		{"payload too short", TypeTick, func(p []byte, _ int) []byte { return p[:6] },
			"shorter than the minimum of 8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, root := payloadOf(c.typ)
			p = c.mutate(p, root)
			frame := make([]byte, HeaderSize+len(p))
			EncodeHeader(frame, Header{Length: uint32(len(frame)), Type: c.typ})
			copy(frame[HeaderSize:], p)
			err := Verify(frame)
			var fe *FrameError
			if err == nil || !errors.As(err, &fe) || fe.Op != "verify" || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a verify FrameError containing %q", err, c.want)
			}
			if _, jerr := AppendJSON(nil, frame); jerr == nil {
				t.Errorf("AppendJSON rendered a frame that does not verify")
			}
			if _, derr := DecodeEvent(frame, mustNew(c.typ)); derr == nil {
				t.Errorf("DecodeEvent decoded a frame that does not verify")
			}
		})
	}
}

func mustNew(t Type) Event {
	ev, ok := NewEvent(t)
	if !ok {
		panic(t)
	}
	return ev
}

func putU16(b []byte, i int, v uint16) { le.PutUint16(b[i:], v) }

func TestVerifyNestedPath(t *testing.T) {
	ck := &Checkpoint{Topics: []TopicPosition{{Topic: "a", Seq: 1}, {Topic: "b", Seq: 2}}}
	frame, err := AppendEvent(nil, Header{}, ck)
	if err != nil {
		t.Fatal(err)
	}
	// The second topic's string is the last object: break its NUL.
	frame[len(frame)-1] = 'x'
	err = Verify(frame)
	if err == nil || !strings.Contains(err.Error(), "Checkpoint.topics[1].topic") {
		t.Fatalf("got %v, want the path Checkpoint.topics[1].topic", err)
	}
}

func TestVerifyHeader(t *testing.T) {
	frame := sampleFrames()[TypeTick]
	unknown := append([]byte(nil), frame...)
	putU16(unknown, 4, 999)
	if err := Verify(unknown); err == nil || !strings.Contains(err.Error(), "unknown frame type 999") {
		t.Errorf("unknown type: %v", err)
	}
	padding := make([]byte, 64)
	EncodeHeader(padding, Header{Length: 64, Type: TypePadding})
	if err := Verify(padding); err != nil {
		t.Errorf("padding: %v", err)
	}
	if err := VerifyPayload(Type(999), frame[HeaderSize:]); err == nil {
		t.Errorf("VerifyPayload accepted an unknown type")
	}
	if err := VerifyPayload(TypeTick, frame[HeaderSize:]); err != nil {
		t.Errorf("VerifyPayload: %v", err)
	}
}

// TestVerifyBoundsDepthAndCount: the depth and table-count bounds hold for a
// descriptor that nests itself, which events.fbs cannot express.
func TestVerifyBoundsDepthAndCount(t *testing.T) {
	node := tableDesc{name: "Node", fields: []fieldDesc{{name: "next", slot: 0, kind: kindTable}}, refs: []int{0}}
	node.fields[0].table = &node
	// A chain of 12 tables, each: vtable (6 bytes, padded to 8), table
	// (soffset + uoffset to the next).
	const links = 12
	var p []byte
	p = append(p, 0, 0, 0, 0)
	for i := 0; i < links; i++ {
		vt := len(p)
		p = append(p, 6, 0, 8, 0, 4, 0, 0, 0) // vtable: size 6, table 8, next at 4; 2 bytes pad
		tp := len(p)
		if i == 0 {
			putU32(p, 0, uint32(tp))
		}
		p = append(p, 0, 0, 0, 0, 0, 0, 0, 0)
		putI32(p, tp, int32(tp-vt))
		if i < links-1 {
			putU32(p, tp+4, 12) // next table starts 12 bytes on: after this one's 4 bytes and the next vtable
		} else {
			putU16(p, vt+4, 0) // the last has no next
		}
	}
	var r tableRef
	err := verifyRoot(TypeTick, &node, p, 0, &r)
	if err == nil || !strings.Contains(err.Error(), "deeper than MaxDepth") {
		t.Fatalf("chain of %d tables: got %v, want the MaxDepth error", links, err)
	}
	v := verifier{p: p, typ: TypeTick, tables: MaxTables}
	if _, err := v.table(&node, int(getU32(p, 0)), 0); err == nil || !strings.Contains(err.Error(), "MaxTables") {
		t.Fatalf("got %v, want the MaxTables error", err)
	}
}

func TestVerifyNeverReadsOutside(t *testing.T) {
	// The verifier sees only frame[:Length]; bytes after it must not matter.
	frame := sampleFrames()[TypeTick]
	big := append(append([]byte(nil), frame...), bytes.Repeat([]byte{0xff}, 64)...)
	if err := Verify(big); err != nil {
		t.Fatalf("frame followed by other bytes: %v", err)
	}
}

// TestReadsSurviveChangesAfterVerify: a ring reader verifies a frame in
// place, and a lapping publisher may overwrite it before the reader is done.
// Reads through the stale verification result must then give wrong values
// (the ring's sequence check discards them) but never panic or read outside
// the payload.
func TestReadsSurviveChangesAfterVerify(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for name, frame := range corpusFrames() {
		h, _ := DecodeHeader(frame)
		d := lookupType(h.Type).desc
		for i := 0; i < 300; i++ {
			p := append([]byte(nil), frame[HeaderSize:]...)
			var r tableRef
			if err := verifyRoot(h.Type, d, p, HeaderSize, &r); err != nil {
				t.Fatal(err)
			}
			for k := rng.IntN(8) + 1; k > 0; k-- {
				p[rng.IntN(len(p))] = byte(rng.Uint32())
			}
			if rng.IntN(2) == 0 { // or overwrite a whole run, as a new frame would
				start := rng.IntN(len(p))
				for j := start; j < len(p) && j < start+16; j++ {
					p[j] = byte(rng.Uint32())
				}
			}
			func() {
				defer func() {
					if x := recover(); x != nil {
						t.Fatalf("%s: read after the payload changed panicked: %v", name, x)
					}
				}()
				ev, _ := NewEvent(h.Type)
				ev.decode(p, r)
				appendTableJSON(nil, p, r, d, true)
			}()
		}
	}
}

func TestValidUTF8(t *testing.T) {
	for _, s := range []string{"", "a", "SHFE.cu2501", "exactly8", "sixteen-bytes-ok", "铜", "abcdefgh铜", "abcdefg\xff",
		"\xff", "abcdefghijklmno\xc3", "abcdefghi\xc3\xa9", "\xed\xa0\x80"} {
		if got, want := validUTF8([]byte(s)), utf8.ValidString(s); got != want {
			t.Errorf("validUTF8(%q) = %v, want %v", s, got, want)
		}
	}
}
