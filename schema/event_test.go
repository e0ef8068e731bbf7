package schema

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	flatbuffers "github.com/google/flatbuffers/go"
	"pgregory.net/rapid"
)

// TestRoundTripProperties: random values of every type → frame → verify →
// decode equal; flatc's generated readers see the same values; frames built
// by flatc's builder (defaults omitted, another field order) verify and
// decode equal; frame → JSON → frame is byte-equal.
func TestRoundTripProperties(t *testing.T) {
	for _, typ := range Types() {
		t.Run(typ.String(), func(t *testing.T) {
			rapid.Check(t, func(rt *rapid.T) {
				ev := genEvent(rt, typ)
				h := Header{Flags: Flag(rapid.Uint16().Draw(rt, "flags")), Seq: rapid.Uint64().Draw(rt, "seq"),
					PublishNs: rapid.Int64().Draw(rt, "publish_ns")}
				frame, err := AppendEvent(nil, h, ev)
				if err != nil {
					rt.Fatalf("build: %v", err)
				}
				if n, _ := FrameSize(ev); n != len(frame) {
					rt.Fatalf("FrameSize %d, frame %d bytes", n, len(frame))
				}
				if err := Verify(frame); err != nil {
					rt.Fatalf("verify: %v", err)
				}
				got, _ := NewEvent(typ)
				gh, err := DecodeEvent(frame, got)
				if err != nil {
					rt.Fatalf("decode: %v", err)
				}
				if gh.Seq != h.Seq || gh.PublishNs != h.PublishNs || gh.Flags != h.Flags || gh.Type != typ || int(gh.Length) != len(frame) {
					rt.Fatalf("header %+v, want %+v", gh, h)
				}
				if d := diffEvents(ev, got); d != "" {
					rt.Fatalf("decode differs: %s", d)
				}

				// flatc's readers agree with our layout.
				payload := frame[HeaderSize:]
				if d := diffEvents(ev, fbCodecs[typ].read(payload)); d != "" {
					rt.Fatalf("flatc reader differs: %s", d)
				}

				// Frames from flatc's builder take the non-canonical path.
				b := flatbuffers.NewBuilder(256)
				b.Finish(fbCodecs[typ].build(b, ev))
				fbPayload := b.FinishedBytes()
				if err := VerifyPayload(typ, fbPayload); err != nil {
					rt.Fatalf("verify flatc-built payload: %v", err)
				}
				got2, _ := NewEvent(typ)
				if err := DecodePayload(fbPayload, got2); err != nil {
					rt.Fatalf("decode flatc-built payload: %v", err)
				}
				if d := diffEventsLoose(ev, got2); d != "" {
					rt.Fatalf("decode of flatc-built payload differs: %s", d)
				}

				// JSON round trip, byte for byte.
				js, err := AppendJSON(nil, frame)
				if err != nil {
					rt.Fatalf("json: %v", err)
				}
				back, err := FrameFromJSON(js, nil)
				if err != nil {
					rt.Fatalf("from json: %v\n%s", err, js)
				}
				if !bytes.Equal(back, frame) {
					rt.Fatalf("json round trip changed the frame\n%s", js)
				}
			})
		})
	}
}

// TestDecodeReusesValue: decoding into a used value overwrites every field,
// including slices that were longer before.
func TestDecodeReusesValue(t *testing.T) {
	for _, typ := range Types() {
		t.Run(typ.String(), func(t *testing.T) {
			rapid.Check(t, func(rt *rapid.T) {
				a, b := genEvent(rt, typ), genEvent(rt, typ)
				fa, err := AppendEvent(nil, Header{}, a)
				if err != nil {
					rt.Fatal(err)
				}
				fb, err := AppendEvent(nil, Header{}, b)
				if err != nil {
					rt.Fatal(err)
				}
				v, _ := NewEvent(typ)
				for _, step := range []struct {
					frame []byte
					want  Event
				}{{fa, a}, {fb, b}, {fa, a}} {
					if _, err := DecodeEvent(step.frame, v); err != nil {
						rt.Fatal(err)
					}
					if d := diffEvents(step.want, v); d != "" {
						rt.Fatalf("reused decode differs: %s", d)
					}
				}
			})
		})
	}
}

// TestHotPathAllocs: building into a buffer, verifying and decoding into a
// reused value allocate nothing, for every type.
func TestHotPathAllocs(t *testing.T) {
	frames := sampleFrames()
	for _, typ := range Types() {
		frame := frames[typ]
		ev, _ := NewEvent(typ)
		if _, err := DecodeEvent(frame, ev); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(frame))
		h := Header{Seq: 1, PublishNs: 2}
		if a := testing.AllocsPerRun(100, func() {
			if _, err := PutEvent(buf, h, ev); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("PutEvent(%v): %v allocs/op, want 0", typ, a)
		}
		if a := testing.AllocsPerRun(100, func() {
			if _, err := PutEventUncommitted(buf, h, ev); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("PutEventUncommitted(%v): %v allocs/op, want 0", typ, a)
		}
		if a := testing.AllocsPerRun(100, func() {
			if _, err := PutPayload(buf, ev); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("PutPayload(%v): %v allocs/op, want 0", typ, a)
		}
		dst := make([]byte, 0, 2*len(frame))
		if a := testing.AllocsPerRun(100, func() {
			var err error
			if dst, err = AppendEvent(dst[:0], h, ev); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("AppendEvent(%v): %v allocs/op, want 0", typ, a)
		}
		if a := testing.AllocsPerRun(100, func() {
			if err := Verify(frame); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("Verify(%v): %v allocs/op, want 0", typ, a)
		}
		if a := testing.AllocsPerRun(100, func() {
			if _, err := DecodeEvent(frame, ev); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("DecodeEvent(%v) into a reused value: %v allocs/op, want 0", typ, a)
		}
		js := make([]byte, 0, 4096)
		if a := testing.AllocsPerRun(100, func() {
			var err error
			if js, err = AppendJSON(js[:0], frame); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("AppendJSON(%v) into a buffer with room: %v allocs/op, want 0", typ, a)
		}
	}
}

func TestPutEventWritesEveryByte(t *testing.T) {
	frames := sampleFrames()
	for _, typ := range Types() {
		ev, _ := NewEvent(typ)
		if _, err := DecodeEvent(frames[typ], ev); err != nil {
			t.Fatal(err)
		}
		clean := make([]byte, len(frames[typ]))
		dirty := bytes.Repeat([]byte{0xa5}, len(frames[typ]))
		h, _ := DecodeHeader(frames[typ])
		n1, err1 := PutEvent(clean, h, ev)
		n2, err2 := PutEvent(dirty, h, ev)
		if err1 != nil || err2 != nil || n1 != n2 || !bytes.Equal(clean, dirty) {
			t.Errorf("%v: frame written over stale bytes differs from one written over zeros", typ)
		}
		if !bytes.Equal(clean, frames[typ]) {
			t.Errorf("%v: PutEvent and AppendEvent disagree", typ)
		}
		if _, err := PutEventUncommitted(dirty, h, ev); err != nil || getU32(dirty, 0) != 0 || !bytes.Equal(dirty[4:], clean[4:]) {
			t.Errorf("%v: PutEventUncommitted must write all but a zero length word", typ)
		}
		payload := bytes.Repeat([]byte{0x5a}, len(clean)-HeaderSize)
		if n, err := PutPayload(payload, ev); err != nil || n != len(payload) || !bytes.Equal(payload, clean[HeaderSize:]) {
			t.Errorf("%v: PutPayload wrote other bytes than PutEvent's payload (%v)", typ, err)
		}
		if _, err := PutPayload(payload[:len(payload)-1], ev); err == nil || !strings.Contains(err.Error(), "payload needs") {
			t.Errorf("%v: PutPayload into a short buffer: %v", typ, err)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	long := strings.Repeat("x", 65)
	cases := []struct {
		name string
		ev   Event
		want string
	}{
		{"missing required string", &Tick{}, "schema: build Tick: Tick.instrument_id: required string is empty"},
		{"string over max_len", &Tick{InstrumentID: long}, "Tick.instrument_id: string of 65 bytes exceeds the limit of 64"},
		{"invalid UTF-8", &Tick{InstrumentID: "SHFE.\xff"}, "Tick.instrument_id: string is not valid UTF-8"},
		{"vector over max_len", &OrderBookSnapshot{InstrumentID: "X.y", Bids: make([]PriceLevel, 1025)},
			"OrderBookSnapshot.bids: 1025 elements exceed the limit of 1024"},
		{"bytes over max_len", &UserRegistered{UserID: "u", PasswordHash: make([]byte, 129)},
			"UserRegistered.password_hash: 129 bytes exceed the limit of 128"},
		{"nested table", &UserRegistered{UserID: "u", Kdf: Argon2idParams{Salt: make([]byte, 65)}},
			"UserRegistered.kdf.salt: 65 bytes exceed the limit of 64"},
		{"element of a table vector", &Checkpoint{Topics: []TopicPosition{{Topic: "a"}, {}}},
			"Checkpoint.topics[1].topic: required string is empty"},
	}
	for _, c := range cases {
		_, err := AppendEvent(nil, Header{}, c.ev)
		var fe *FrameError
		if err == nil || !errors.As(err, &fe) || !strings.Contains(err.Error(), c.want) || fe.Op != "build" {
			t.Errorf("%s: got %v, want a build FrameError containing %q", c.name, err, c.want)
		}
	}
	tick := &Tick{InstrumentID: "SHFE.cu2501"}
	n, _ := FrameSize(tick)
	buf := make([]byte, n-1)
	if _, err := PutEvent(buf, Header{}, tick); err == nil || !strings.Contains(err.Error(), "frame needs") {
		t.Errorf("short buffer: got %v", err)
	}
	if !bytes.Equal(buf, make([]byte, n-1)) {
		t.Errorf("a failed PutEvent wrote into the buffer")
	}
}

func TestDecodeTypeMismatch(t *testing.T) {
	frame := sampleFrames()[TypeTick]
	if _, err := DecodeEvent(frame, &Order{}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("decoding a Tick frame as an Order: got %v", err)
	}
}

// TestTickSemantics pins a concrete Tick: NaN book levels, exact int64
// nanoseconds above 2^53, and the JSON spelling of both.
func TestTickSemantics(t *testing.T) {
	tick := &Tick{InstrumentID: "SHFE.cu2501", Datetime: 1767225599999999999, LastPrice: 73250,
		AskPrice1: 73260, AskVolume1: 5, BidPrice1: math.NaN(), Close: math.Inf(1), Volume: 1 << 62}
	frame, err := AppendEvent(nil, Header{Seq: 9, PublishNs: 1767225600000000001}, tick)
	if err != nil {
		t.Fatal(err)
	}
	js, err := AppendJSON(nil, frame)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{"header":{"type":"Tick","seq":9,"publish_ns":1767225600000000001,"flags":0},"event":{"instrument_id":"SHFE.cu2501"`,
		`"datetime":1767225599999999999`, `"last_price":73250`, `"bid_price1":"NaN"`, `"close":"Infinity"`,
		`"volume":4611686018427387904`,
	} {
		if !strings.Contains(string(js), want) {
			t.Errorf("JSON lacks %s:\n%s", want, js)
		}
	}
	var got Tick
	if _, err := DecodeEvent(frame, &got); err != nil {
		t.Fatal(err)
	}
	if got.Datetime != tick.Datetime || !math.IsNaN(got.BidPrice1) || got.Volume != 1<<62 {
		t.Errorf("decoded %+v", got)
	}
}
