package schema

import "testing"

func benchTick() *Tick {
	return &Tick{InstrumentID: "SHFE.cu2501", Datetime: 1767225599999000000, LastPrice: 73250,
		AskPrice1: 73260, AskVolume1: 5, BidPrice1: 73240, BidVolume1: 7, AskPrice2: 73270, AskVolume2: 9,
		BidPrice2: 73230, BidVolume2: 11, Highest: 73500, Lowest: 73000, Open: 73100, Volume: 123456,
		Amount: 9.1e9, OpenInterest: 200000}
}

func BenchmarkBuildTick(b *testing.B) {
	tick := benchTick()
	buf := make([]byte, 512)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := PutEvent(buf, Header{Seq: uint64(i)}, tick); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyTick(b *testing.B) {
	frame, _ := AppendEvent(nil, Header{}, benchTick())
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyDecodeTick(b *testing.B) {
	frame, _ := AppendEvent(nil, Header{}, benchTick())
	var t Tick
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEvent(frame, &t); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendJSONTick(b *testing.B) {
	frame, _ := AppendEvent(nil, Header{}, benchTick())
	dst := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = AppendJSON(dst[:0], frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyDecodeHeartbeat(b *testing.B) {
	frame, _ := AppendEvent(nil, Header{}, &Heartbeat{Source: "feed-handler-01", IntervalNs: 1e9})
	var hb Heartbeat
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEvent(frame, &hb); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyDecodeOrder(b *testing.B) {
	frame, _ := AppendEvent(nil, Header{}, &Order{Seqno: 7, UserID: "trader-0042", OrderID: "ord-20260101-000123",
		ExchangeID: "SHFE", InstrumentID: "SHFE.cu2501", Direction: DirectionSELL, VolumeOrign: 5, LimitPrice: 73250,
		InsertDateTime: 1767225600000000000, ExchangeOrderID: "      123456", VolumeLeft: 5, LastMsg: "accepted"})
	var o Order
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEvent(frame, &o); err != nil {
			b.Fatal(err)
		}
	}
}
