package sim

import (
	"math"
	"strings"
	"testing"

	"github.com/tapewire/tapewire/schema"
)

func TestDefaultInstrumentsBounds(t *testing.T) {
	if len(templates) != MaxInstruments {
		t.Fatalf("MaxInstruments %d but %d templates", MaxInstruments, len(templates))
	}
	for _, n := range []int{0, -1, MaxInstruments + 1} {
		if _, _, err := DefaultInstruments(n); err == nil || !strings.Contains(err.Error(), "between 1 and 20") {
			t.Errorf("DefaultInstruments(%d): %v, want an error naming the range", n, err)
		}
	}
	ins, prices, err := DefaultInstruments(MaxInstruments)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for k, in := range ins {
		if seen[in.InstrumentID] || !strings.HasPrefix(in.InstrumentID, in.ExchangeID+".") || in.Code == "" {
			t.Errorf("instrument %d: bad or duplicate id %q", k, in.InstrumentID)
		}
		seen[in.InstrumentID] = true
		if !(in.LowerLimit < prices[k] && prices[k] < in.UpperLimit) || !onTick(prices[k], in.PriceTick) {
			t.Errorf("%s: start %v not on tick inside %v..%v", in.InstrumentID, prices[k], in.LowerLimit, in.UpperLimit)
		}
	}
}

// TestWalkStaysSane steps every instrument many times and checks each quote:
// prices on the tick grid, a one-tick spread, levels ordered, inside the
// limits, statistics monotone.
func TestWalkStaysSane(t *testing.T) {
	ins, prices, _ := DefaultInstruments(MaxInstruments)
	m, err := NewMarket(ins, prices, 99)
	if err != nil {
		t.Fatal(err)
	}
	var tick schema.Tick
	lastVolume := make([]int64, len(ins))
	for s := 0; s < 20_000; s++ {
		i := s % len(ins)
		in := &ins[i]
		m.Step(i, int64(s), &tick)
		bids := []float64{tick.BidPrice1, tick.BidPrice2, tick.BidPrice3, tick.BidPrice4, tick.BidPrice5}
		asks := []float64{tick.AskPrice1, tick.AskPrice2, tick.AskPrice3, tick.AskPrice4, tick.AskPrice5}
		if !near(tick.AskPrice1-tick.BidPrice1, in.PriceTick) {
			t.Fatalf("%s: spread %v, want one tick %v", in.InstrumentID, tick.AskPrice1-tick.BidPrice1, in.PriceTick)
		}
		for l := 0; l < BookLevels; l++ {
			if !onTick(bids[l], in.PriceTick) || !onTick(asks[l], in.PriceTick) {
				t.Fatalf("%s: level %d off the tick grid: %v / %v", in.InstrumentID, l, bids[l], asks[l])
			}
			if bids[l] < in.LowerLimit || asks[l] > in.UpperLimit {
				t.Fatalf("%s: level %d outside limits", in.InstrumentID, l)
			}
			if l > 0 && (bids[l] >= bids[l-1] || asks[l] <= asks[l-1]) {
				t.Fatalf("%s: levels out of order: %v %v", in.InstrumentID, bids, asks)
			}
		}
		if tick.Volume < lastVolume[i] {
			t.Fatalf("%s: volume went backwards", in.InstrumentID)
		}
		lastVolume[i] = tick.Volume
		if tick.Volume > 0 && (tick.Highest < tick.Lowest || tick.LastPrice > tick.Highest || tick.LastPrice < tick.Lowest) {
			t.Fatalf("%s: last %v outside low %v / high %v", in.InstrumentID, tick.LastPrice, tick.Lowest, tick.Highest)
		}
		if !math.IsNaN(tick.Close) || !math.IsNaN(tick.Settlement) {
			t.Fatalf("close/settlement known during the session")
		}
	}
	for i := range ins {
		if lastVolume[i] == 0 {
			t.Errorf("%s never traded in 1000 steps", ins[i].InstrumentID)
		}
	}
}

func TestTakeConsumesBookBestFirst(t *testing.T) {
	ins, prices, _ := DefaultInstruments(1)
	m, _ := NewMarket(ins, prices, 5)
	var tick schema.Tick
	m.Quote(0, 0, &tick)
	avail := m.Available(0, schema.DirectionBUY, tick.AskPrice2)
	if avail != tick.AskVolume1+tick.AskVolume2 {
		t.Fatalf("available through ask2 = %d, want %d", avail, tick.AskVolume1+tick.AskVolume2)
	}
	var fills []float64
	got := m.Take(0, schema.DirectionBUY, tick.AskPrice2, avail+100, func(price float64, volume int64) { fills = append(fills, price) })
	if got != avail || len(fills) != 2 || fills[0] != tick.AskPrice1 || fills[1] != tick.AskPrice2 {
		t.Fatalf("took %d at %v, want %d at ask1 then ask2", got, fills, avail)
	}
	if m.Available(0, schema.DirectionBUY, tick.AskPrice2) != 0 {
		t.Fatal("liquidity taken is still in the book")
	}
	if m.Last(0) != tick.AskPrice2 {
		t.Fatalf("last %v after trading through ask2", m.Last(0))
	}
}

func TestNewMarketRejectsBadReferenceData(t *testing.T) {
	ins, prices, _ := DefaultInstruments(1)
	bad := ins[0]
	bad.PriceTick = 0
	if _, err := NewMarket([]schema.Instrument{bad}, prices, 1); err == nil {
		t.Fatal("zero price tick accepted")
	}
	if _, err := NewMarket(ins, []float64{ins[0].UpperLimit * 2}, 1); err == nil {
		t.Fatal("start price outside the limits accepted")
	}
	if _, err := NewMarket(ins, nil, 1); err == nil {
		t.Fatal("missing start prices accepted")
	}
}
