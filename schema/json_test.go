package schema

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
)

// badJSON are lines FrameFromJSON must reject, with the error they get.
var badJSON = []struct {
	line string
	want string
}{
	{``, "want a JSON object"},
	{`[]`, "want a JSON object, got an array"},
	{`{"event":{}}`, `"header" with a "type" is required`},
	{`{"header":{"type":"Tik"},"event":{}}`, `field "header": field "type": unknown event type "Tik"`},
	{`{"header":{"type":"Tick"}}`, `Tick: "event" is required`},
	{`{"header":{"type":"Padding"},"event":{}}`, "Padding is ring filler"},
	{`{"header":{"type":"Tick","color":1},"event":{}}`, `unknown field "color"`},
	{`{"header":{"type":"Tick"},"event":{"instrument_id":"X.y","colour":1}}`, `Tick event: unknown field "colour"`},
	{`{"header":{"type":"Tick"},"event":{"instrument_id":7}}`, `field "instrument_id": want a string, got the number 7`},
	{`{"header":{"type":"Tick"},"event":{"instrument_id":"X.y","volume":1.5}}`, `field "volume": want an integer of 64 bits, got 1.5`},
	{`{"header":{"type":"Tick"},"event":{"instrument_id":"X.y","volume":9223372036854775808}}`, `want an integer of 64 bits`},
	{`{"header":{"type":"Tick"},"event":{"instrument_id":"X.y","last_price":"cheap"}}`, `field "last_price": want a number`},
	{`{"header":{"type":"Tick"},"event":{"instrument_id":"X.y","last_price":null}}`, `want a number, got null`},
	{`{"header":{"type":"Tick"},"event":{}}`, "Tick.instrument_id: required string is empty"},
	{`{"header":{"type":"Tick"},"event":{"instrument_id":"X.y","instrument_id":"X.z"}}`, `field "instrument_id" appears twice`},
	{`{"header":{"type":"Tick"},"event":{"instrument_id":"X.y"}} {}`, "data after the object"},
	{`{"header":{"type":"Tick","seq":-1},"event":{"instrument_id":"X.y"}}`, `field "seq": want an unsigned integer`},
	{`{"header":{"type":"Tick","flags":65536},"event":{"instrument_id":"X.y"}}`, `unsigned integer of 16 bits`},
	{`{"header":{"type":"Order"},"event":{"user_id":"u","order_id":"o","direction":"UP"}}`, `"UP" is not a Direction`},
	{`{"header":{"type":"Order"},"event":{"user_id":"u","order_id":"o","direction":300}}`, `unsigned integer of 8 bits`},
	{`{"header":{"type":"UserRegistered"},"event":{"user_id":"u","password_hash":"!!"}}`, `want standard base64`},
	{`{"header":{"type":"UserRegistered"},"event":{"user_id":"u","disabled":1}}`, `want true or false`},
	{`{"header":{"type":"UserRegistered"},"event":{"user_id":"u","kdf":{"time":1,"pepper":2}}}`, `field "kdf": unknown field "pepper"`},
	{`{"header":{"type":"OrderBookSnapshot"},"event":{"instrument_id":"X.y","bids":{}}}`, `field "bids": want an array`},
	{`{"header":{"type":"OrderBookSnapshot"},"event":{"instrument_id":"X.y","bids":[{"price":1,"volume":2,"side":0}]}}`, `element 0: unknown field "side"`},
	{`{"header":{"type":"Checkpoint"},"event":{"topics":[{"topic":"t"},{"seq":1}]}}`, "Checkpoint.topics[1].topic: required string is empty"},
	{`{"header":{"type":"Instrument"},"event":{"instrument_id":"X.y","trading_sessions":[` + strings.Repeat(`{},`, 16) + `{}]}}`,
		`field "trading_sessions": more than the limit of 16 elements`},
}

func TestFrameFromJSONErrors(t *testing.T) {
	for _, c := range badJSON {
		frame, err := FrameFromJSON([]byte(c.line), []byte("keep"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s\n  got error %v\n  want one containing %q", c.line, err, c.want)
		}
		if string(frame) != "keep" {
			t.Errorf("%s: dst changed on error", c.line)
		}
	}
}

func TestFrameFromJSONAccepts(t *testing.T) {
	// Defaults, enum names and numbers, the spellings of special doubles,
	// integers beyond 2^53, base64, nested objects, member order.
	line := `{"event":{"user_id":"u1","kdf":{"salt":"c2FsdA==","threads":4,"time":3,"memory_kib":65536},` +
		`"password_hash":"AAEC","created_ns":1767225600123456789,"disabled":true},` +
		`"header":{"seq":18446744073709551615,"type":"UserRegistered"}}`
	frame, err := FrameFromJSON([]byte(line), nil)
	if err != nil {
		t.Fatal(err)
	}
	var u UserRegistered
	h, err := DecodeEvent(frame, &u)
	if err != nil {
		t.Fatal(err)
	}
	if h.Seq != 1<<64-1 || u.CreatedNs != 1767225600123456789 || !u.Disabled || u.Kdf.MemoryKiB != 65536 ||
		u.Kdf.Threads != 4 || string(u.Kdf.Salt) != "salt" || !bytes.Equal(u.PasswordHash, []byte{0, 1, 2}) {
		t.Fatalf("decoded %+v %+v", h, u)
	}

	order := `{"header":{"type":"Order"},"event":{"user_id":"u","order_id":"o","direction":1,"offset":"CLOSETODAY",` +
		`"limit_price":"-Infinity","status":7}}`
	frame, err = FrameFromJSON([]byte(order), nil)
	if err != nil {
		t.Fatal(err)
	}
	var o Order
	if _, err := DecodeEvent(frame, &o); err != nil {
		t.Fatal(err)
	}
	if o.Direction != DirectionSELL || o.Offset != OffsetCLOSETODAY || o.Status.String() != "OrderStatus(7)" {
		t.Fatalf("decoded %+v", o)
	}
	js, err := AppendJSON(nil, frame)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"direction":"SELL"`, `"offset":"CLOSETODAY"`, `"limit_price":"-Infinity"`, `"status":7`, `"last_msg":""`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("JSON lacks %s: %s", want, js)
		}
	}
}

// TestJSONIsValidJSON: every rendering parses with encoding/json, and
// strings needing escapes survive.
func TestJSONIsValidJSON(t *testing.T) {
	for typ, frame := range sampleFrames() {
		js, err := AppendJSON(nil, frame)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.Unmarshal(js, &v); err != nil {
			t.Errorf("%v: %v\n%s", typ, err, js)
		}
	}
	n := &Notify{Content: "quote \" backslash \\ newline \n tab \t nul \x00 del \x7f ls \u2028 han 铜"}
	frame, err := AppendEvent(nil, Header{}, n)
	if err != nil {
		t.Fatal(err)
	}
	js, err := AppendJSON(nil, frame)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Event struct {
			Content string `json:"content"`
		} `json:"event"`
	}
	if err := json.Unmarshal(js, &v); err != nil || v.Event.Content != n.Content {
		t.Fatalf("content %q (err %v), want %q\n%s", v.Event.Content, err, n.Content, js)
	}
	if !bytes.Contains(js, []byte(`\u2028`)) {
		t.Errorf("U+2028 not escaped: %s", js)
	}
}

func TestAppendJSONPadding(t *testing.T) {
	frame := make([]byte, 40)
	EncodeHeader(frame, Header{Length: 40, Type: TypePadding, Seq: 3})
	js, err := AppendJSON([]byte("x"), frame)
	if err != nil {
		t.Fatal(err)
	}
	if want := `x{"header":{"type":"Padding","seq":3,"publish_ns":0,"flags":0}}`; string(js) != want {
		t.Fatalf("got %s, want %s", js, want)
	}
}

func TestAppendJSONRejectsBadFrames(t *testing.T) {
	frame := sampleFrames()[TypeTick]
	if out, err := AppendJSON([]byte("x"), frame[:len(frame)-1]); err == nil || string(out) != "x" {
		t.Errorf("truncated frame: %v, %q", err, out)
	}
}

func TestRegistry(t *testing.T) {
	types := Types()
	if len(types) != len(eventTypes) || len(types) < 17 {
		t.Fatalf("Types() has %d types", len(types))
	}
	for i, typ := range types {
		if i > 0 && types[i-1] >= typ {
			t.Errorf("Types() not in id order at %v", typ)
		}
		got, ok := TypeByName(typ.String())
		if !ok || got != typ {
			t.Errorf("TypeByName(%q) = %v, %v", typ.String(), got, ok)
		}
		ev, ok := NewEvent(typ)
		if !ok || ev.EventType() != typ || ev.desc().name != typ.String() {
			t.Errorf("NewEvent(%v) = %T", typ, ev)
		}
		if !typ.Known() {
			t.Errorf("%v not Known", typ)
		}
	}
	if TypePadding.String() != "Padding" || !TypePadding.Known() {
		t.Errorf("Padding: %q", TypePadding.String())
	}
	if p, ok := TypeByName("Padding"); !ok || p != TypePadding {
		t.Errorf("TypeByName(Padding)")
	}
	if Type(999).String() != "Type(999)" || Type(999).Known() || Type(3).Known() {
		t.Errorf("unknown types")
	}
	if _, ok := TypeByName("tick"); ok {
		t.Errorf("TypeByName is case-sensitive")
	}
	if _, ok := NewEvent(TypePadding); ok {
		t.Errorf("NewEvent(Padding) made an event")
	}
	want := map[Type]string{TypeHeartbeat: "Heartbeat", TypeCheckpoint: "Checkpoint", TypeTick: "Tick",
		TypeOrderBookSnapshot: "OrderBookSnapshot", TypeOrderBookDelta: "OrderBookDelta", TypeInstrument: "Instrument",
		TypeKline: "Kline", TypeOrder: "Order", TypeTrade: "Trade", TypeAccount: "Account", TypePosition: "Position",
		TypeTransfer: "Transfer", TypeNotify: "Notify", TypeUserRegistered: "UserRegistered",
		TypeAccountBound: "AccountBound", TypeOrderRequest: "OrderRequest", TypeCancelRequest: "CancelRequest",
		TypeTransferRequest: "TransferRequest"}
	for typ, name := range want {
		if typ.String() != name {
			t.Errorf("%d: %q, want %q", uint16(typ), typ.String(), name)
		}
	}
	if DirectionBUY.String() != "BUY" || TimeConditionGFA.String() != "GFA" || Direction(9).String() != "Direction(9)" {
		t.Errorf("enum names")
	}
}

// AppendJSONRedacted hides the passwords of a TransferRequest (an unset one
// stays empty) and renders everything else exactly as AppendJSON; events
// without secrets render identically.
func TestAppendJSONRedacted(t *testing.T) {
	req := TransferRequest{UserID: "alice", FutureAccount: "acc", FuturePassword: "hunter2", BankID: "b1", Currency: "CNY", Amount: 100}
	frame, err := AppendEvent(nil, Header{Seq: 3}, &req)
	if err != nil {
		t.Fatal(err)
	}
	full, err := AppendJSON(nil, frame)
	if err != nil {
		t.Fatal(err)
	}
	red, err := AppendJSONRedacted(nil, frame)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(red, []byte("hunter2")) {
		t.Fatalf("redacted JSON shows the password: %s", red)
	}
	var got map[string]map[string]any
	if err := json.Unmarshal(red, &got); err != nil {
		t.Fatalf("redacted JSON does not parse: %v: %s", err, red)
	}
	ev := got["event"]
	if ev["future_password"] != RedactedSecret || ev["bank_password"] != "" {
		t.Fatalf("future_password %q, bank_password %q; want %q and empty", ev["future_password"], ev["bank_password"], RedactedSecret)
	}
	if ev["user_id"] != "alice" || ev["future_account"] != "acc" || ev["amount"] != 100.0 {
		t.Fatalf("other fields changed: %s", red)
	}
	if want := bytes.Replace(full, []byte(`"hunter2"`), []byte(`"`+RedactedSecret+`"`), 1); !bytes.Equal(red, want) {
		t.Fatalf("redacted\n%s\nwant\n%s", red, want)
	}
	tick := Tick{InstrumentID: "SHFE.cu2501", LastPrice: 1}
	if frame, err = AppendEvent(nil, Header{}, &tick); err != nil {
		t.Fatal(err)
	}
	a, _ := AppendJSON(nil, frame)
	b, _ := AppendJSONRedacted(nil, frame)
	if !bytes.Equal(a, b) {
		t.Fatalf("a Tick renders differently redacted:\n%s\n%s", a, b)
	}
}

func TestMayHoldSecrets(t *testing.T) {
	frameOf := func(typ Type) []byte {
		f := make([]byte, HeaderSize)
		binary.LittleEndian.PutUint32(f[0:4], HeaderSize)
		binary.LittleEndian.PutUint16(f[4:6], uint16(typ))
		return f
	}
	for _, typ := range Types() {
		want := typ == TypeTransferRequest
		if got := MayHoldSecrets(frameOf(typ)); got != want {
			t.Errorf("MayHoldSecrets(%v) = %v, want %v", typ, got, want)
		}
	}
	if MayHoldSecrets(frameOf(TypePadding)) {
		t.Error("a padding frame may hold secrets")
	}
	if !MayHoldSecrets(frameOf(Type(250))) {
		t.Error("a frame of an unknown type (a damaged header) is said to hold no secrets")
	}
	if !MayHoldSecrets([]byte{1, 2, 3}) {
		t.Error("a frame too short to name its type is said to hold no secrets")
	}
}
