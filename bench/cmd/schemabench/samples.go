package main

import (
	"reflect"
	"strings"

	"github.com/tapewire/tapewire/schema"
)

// sampleEvent returns a realistic event of type typ: plausible identifiers,
// finite prices (encoding/json cannot encode NaN), ns timestamps, five book
// levels, a few nested elements. The same value feeds both systems.
func sampleEvent(typ schema.Type) schema.Event {
	if typ == schema.TypeTick {
		return &schema.Tick{InstrumentID: "SHFE.cu2501", Datetime: 1767225599500000000, LastPrice: 73250,
			AskPrice1: 73260, AskVolume1: 5, BidPrice1: 73250, BidVolume1: 12,
			AskPrice2: 73270, AskVolume2: 8, BidPrice2: 73240, BidVolume2: 20,
			AskPrice3: 73280, AskVolume3: 31, BidPrice3: 73230, BidVolume3: 7,
			AskPrice4: 73290, AskVolume4: 2, BidPrice4: 73220, BidVolume4: 15,
			AskPrice5: 73300, AskVolume5: 44, BidPrice5: 73210, BidVolume5: 9,
			Highest: 73480, Lowest: 72950, Open: 73010, Close: 73250, Average: 73198.37,
			Volume: 184220, Amount: 67432183250, OpenInterest: 201833, PreOpenInterest: 200117,
			PreClose: 72990, PreSettlement: 73005, Settlement: 73120}
	}
	ev, _ := schema.NewEvent(typ)
	fill(reflect.ValueOf(ev).Elem(), 1)
	return ev
}

// fill sets every field of the struct v from its name.
func fill(v reflect.Value, seed int) {
	t := v.Type()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		name := t.Field(i).Name
		n := seed*31 + i
		switch f.Kind() {
		case reflect.String:
			f.SetString(sampleString(name, n))
		case reflect.Bool:
			f.SetBool(n%2 == 0)
		case reflect.Uint8:
			f.SetUint(uint64(n % 2)) // a valid value of every enum
		case reflect.Int32, reflect.Uint32:
			if f.CanInt() {
				f.SetInt(int64(n))
			} else {
				f.SetUint(uint64(n))
			}
		case reflect.Int64:
			if strings.HasSuffix(name, "Ns") || strings.Contains(name, "Time") || name == "Datetime" {
				f.SetInt(1767225600000000000 + int64(n)*1_000_000)
			} else {
				f.SetInt(int64(n) * 137)
			}
		case reflect.Uint64:
			f.SetUint(uint64(n) * 1_000_003)
		case reflect.Float64:
			f.SetFloat(73250 + float64(n)*0.5)
		case reflect.Slice:
			if f.Type().Elem().Kind() == reflect.Uint8 {
				b := make([]byte, 32)
				for j := range b {
					b[j] = byte(n + j)
				}
				f.SetBytes(b)
				continue
			}
			s := reflect.MakeSlice(f.Type(), 5, 5)
			for j := 0; j < 5; j++ {
				fill(s.Index(j), n+j)
			}
			f.Set(s)
		case reflect.Struct:
			fill(f, n)
		}
	}
}

func sampleString(field string, n int) string {
	switch field {
	case "InstrumentID":
		return "SHFE.cu2501"
	case "ExchangeID":
		return "SHFE"
	case "Code":
		return "cu2501"
	case "UserID", "AccountID":
		return "trader-0042"
	case "OrderID":
		return "ord-20260101-000123"
	case "Currency":
		return "CNY"
	case "Topic":
		return "market/ticks"
	}
	return strings.Repeat("x", 8+n%24)
}
