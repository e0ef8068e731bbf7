package schema_test

import (
	"fmt"

	"github.com/tapewire/tapewire/schema"
)

// A publisher sizes the frame, builds it in place, and a reader verifies and
// decodes it into a value it reuses.
func ExamplePutEvent() {
	tick := &schema.Tick{InstrumentID: "SHFE.cu2501", Datetime: 1767225599500000000, LastPrice: 73250,
		BidPrice1: 73240, BidVolume1: 12, AskPrice1: 73260, AskVolume1: 5}
	n, err := schema.FrameSize(tick)
	if err != nil {
		panic(err)
	}
	buf := make([]byte, schema.AlignedSize(n)) // a ring would claim this much
	if _, err := schema.PutEvent(buf, schema.Header{Seq: 42, PublishNs: 1767225599500001000}, tick); err != nil {
		panic(err)
	}

	var got schema.Tick
	h, err := schema.DecodeEvent(buf, &got)
	if err != nil {
		panic(err)
	}
	fmt.Println(h.Type, h.Seq, got.InstrumentID, got.LastPrice, got.AskVolume1)
	// Output: Tick 42 SHFE.cu2501 73250 5
}

// Verify rejects what is not a valid frame, naming the field and offset.
func ExampleVerify() {
	frame, _ := schema.AppendEvent(nil, schema.Header{}, &schema.CancelRequest{UserID: "u1", OrderID: "o1"})
	frame[len(frame)-1] = 'x' // the last string loses its NUL terminator
	fmt.Println(schema.Verify(frame))
	// Output: schema: verify CancelRequest frame: CancelRequest.order_id at offset 62: string is not NUL-terminated
}

// shmctl tail renders frames as JSON lines; shmctl pub parses them back.
func ExampleAppendJSON() {
	frame, _ := schema.AppendEvent(nil, schema.Header{Seq: 7, PublishNs: 1767225600000000000},
		&schema.CancelRequest{UserID: "trader-0042", OrderID: "ord-1"})
	line, _ := schema.AppendJSON(nil, frame)
	fmt.Println(string(line))

	again, err := schema.FrameFromJSON(line, nil)
	fmt.Println(err, string(again) == string(frame))
	// Output:
	// {"header":{"type":"CancelRequest","seq":7,"publish_ns":1767225600000000000,"flags":0},"event":{"user_id":"trader-0042","order_id":"ord-1"}}
	// <nil> true
}
