package sim

import (
	"fmt"
	"math"
	"testing"

	"github.com/tapewire/tapewire/schema"
	"pgregory.net/rapid"
)

// mirror keeps the latest state of everything the exchange emitted, the way
// a DIFF client or the appliance's state keys would, and checks each event
// against the rules a futures broker's numbers must obey.
type mirror struct {
	accounts  map[string]schema.Account
	positions map[string]schema.Position
	orders    map[string]schema.Order
	trades    []schema.Trade
	transfers []schema.Transfer
	notifies  []schema.Notify
	errs      []string
}

func newMirror() *mirror {
	return &mirror{accounts: map[string]schema.Account{}, positions: map[string]schema.Position{}, orders: map[string]schema.Order{}}
}

func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-6*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func (m *mirror) failf(format string, args ...any) {
	m.errs = append(m.errs, fmt.Sprintf(format, args...))
}

func (m *mirror) emit(ev schema.Event) {
	switch v := ev.(type) {
	case *schema.Account:
		if !near(v.StaticBalance, v.PreBalance+v.Deposit-v.Withdraw) {
			m.failf("account %s: static_balance %v != pre_balance+deposit-withdraw", v.UserID, v.StaticBalance)
		}
		if !near(v.Balance, v.StaticBalance+v.CloseProfit-v.Commission-v.Premium+v.PositionProfit) {
			m.failf("account %s: balance identity broken: %+v", v.UserID, *v)
		}
		if !near(v.Available, v.Balance-v.Margin-v.FrozenMargin-v.FrozenCommission-v.FrozenPremium) {
			m.failf("account %s: available identity broken: %+v", v.UserID, *v)
		}
		if v.FrozenMargin < -1e-6 || v.FrozenCommission < -1e-6 || v.Margin < -1e-6 {
			m.failf("account %s: negative margin or frozen: %+v", v.UserID, *v)
		}
		m.accounts[v.UserID] = *v
	case *schema.Position:
		if v.VolumeLong != v.VolumeLongToday+v.VolumeLongHis || v.VolumeShort != v.VolumeShortToday+v.VolumeShortHis {
			m.failf("position %s/%s: volume is not today+his: %+v", v.UserID, v.InstrumentID, *v)
		}
		if v.VolumeLongToday < 0 || v.VolumeLongHis < 0 || v.VolumeShortToday < 0 || v.VolumeShortHis < 0 {
			m.failf("position %s/%s: negative volume: %+v", v.UserID, v.InstrumentID, *v)
		}
		if v.VolumeLongFrozenToday < 0 || v.VolumeLongFrozenToday > v.VolumeLongToday ||
			v.VolumeShortFrozenToday < 0 || v.VolumeShortFrozenToday > v.VolumeShortToday ||
			v.VolumeLongFrozenHis < 0 || v.VolumeLongFrozenHis > v.VolumeLongHis {
			m.failf("position %s/%s: frozen lots outside 0..volume: %+v", v.UserID, v.InstrumentID, *v)
		}
		if !near(v.PositionProfit, v.PositionProfitLong+v.PositionProfitShort) || !near(v.Margin, v.MarginLong+v.MarginShort) {
			m.failf("position %s/%s: totals are not long+short: %+v", v.UserID, v.InstrumentID, *v)
		}
		m.positions[v.UserID+"/"+v.InstrumentID] = *v
	case *schema.Order:
		key := v.UserID + "/" + v.OrderID
		if prev, ok := m.orders[key]; ok {
			if prev.Status == schema.OrderStatusFINISHED {
				m.failf("order %s changed after it finished: %+v -> %+v", key, prev, *v)
			}
			if v.VolumeLeft > prev.VolumeLeft {
				m.failf("order %s: volume_left grew %d -> %d", key, prev.VolumeLeft, v.VolumeLeft)
			}
		}
		if v.VolumeLeft < 0 || v.VolumeLeft > v.VolumeOrign {
			m.failf("order %s: volume_left %d outside 0..%d", key, v.VolumeLeft, v.VolumeOrign)
		}
		if v.Status != schema.OrderStatusALIVE && v.Status != schema.OrderStatusFINISHED {
			m.failf("order %s: status %v", key, v.Status)
		}
		m.orders[key] = *v
	case *schema.Trade:
		if _, ok := m.orders[v.UserID+"/"+v.OrderID]; !ok {
			m.failf("trade %s for an order never emitted", v.TradeID)
		}
		if v.Volume <= 0 {
			m.failf("trade %s: volume %d", v.TradeID, v.Volume)
		}
		m.trades = append(m.trades, *v)
	case *schema.Transfer:
		m.transfers = append(m.transfers, *v)
	case *schema.Notify:
		m.notifies = append(m.notifies, *v)
	default:
		m.failf("unexpected event %T", ev)
	}
}

// checkAgainstTrades rebuilds positions, fills and commissions from the trade
// log alone and compares them with the latest emitted state.
func (m *mirror) checkAgainstTrades(t interface{ Fatalf(string, ...any) }) {
	filled := map[string]int64{}
	long := map[string]int64{}
	short := map[string]int64{}
	commission := map[string]float64{}
	for _, tr := range m.trades {
		filled[tr.UserID+"/"+tr.OrderID] += tr.Volume
		pk := tr.UserID + "/" + tr.InstrumentID
		switch {
		case tr.Direction == schema.DirectionBUY && tr.Offset == schema.OffsetOPEN:
			long[pk] += tr.Volume
		case tr.Direction == schema.DirectionSELL && tr.Offset != schema.OffsetOPEN:
			long[pk] -= tr.Volume
		case tr.Direction == schema.DirectionSELL:
			short[pk] += tr.Volume
		default:
			short[pk] -= tr.Volume
		}
		commission[tr.UserID] += tr.Commission
	}
	for key, o := range m.orders {
		if got := o.VolumeOrign - o.VolumeLeft; got != filled[key] {
			t.Fatalf("order %s: volume_orign-volume_left = %d, trades sum to %d", key, got, filled[key])
		}
	}
	for key, p := range m.positions {
		if p.VolumeLong != long[key] || p.VolumeShort != short[key] {
			t.Fatalf("position %s: long %d short %d, trades say %d and %d", key, p.VolumeLong, p.VolumeShort, long[key], short[key])
		}
	}
	for user, a := range m.accounts {
		if !near(a.Commission, commission[user]) {
			t.Fatalf("account %s: commission %v, trades sum to %v", user, a.Commission, commission[user])
		}
		var margin float64
		for _, p := range m.positions {
			if p.UserID == user {
				margin += p.Margin
			}
		}
		if !near(a.Margin, margin) {
			t.Fatalf("account %s: margin %v, positions sum to %v", user, a.Margin, margin)
		}
	}
}

func newTestExchange(t interface{ Fatalf(string, ...any) }, n int, seed uint64) (*Market, *Exchange) {
	ins, prices, err := DefaultInstruments(n)
	if err != nil {
		t.Fatalf("%v", err)
	}
	m, err := NewMarket(ins, prices, seed)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return m, NewExchange(m, Config{})
}

func TestOpenThenCloseBooksSpreadAndCommission(t *testing.T) {
	market, x := newTestExchange(t, 1, 1)
	mir := newMirror()
	var tick schema.Tick
	market.Quote(0, 1, &tick)
	in := market.Instrument(0) // SHFE.cu2501: multiple 5, tick 10
	buy := &schema.OrderRequest{UserID: "u", OrderID: "o1", InstrumentID: in.InstrumentID, Direction: schema.DirectionBUY,
		Offset: schema.OffsetOPEN, Volume: 1, PriceType: schema.PriceTypeLIMIT, LimitPrice: tick.AskPrice1, TimeCondition: schema.TimeConditionGFD}
	x.Submit(buy, 2, mir.emit)
	if o := mir.orders["u/o1"]; o.Status != schema.OrderStatusFINISHED || o.VolumeLeft != 0 {
		t.Fatalf("marketable buy not filled: %+v", o)
	}
	p := mir.positions["u/"+in.InstrumentID]
	if p.VolumeLongToday != 1 || !near(p.OpenPriceLong, tick.AskPrice1) || !near(p.Margin, in.Margin) {
		t.Fatalf("position after buy: %+v", p)
	}
	market.Quote(0, 3, &tick)
	sell := &schema.OrderRequest{UserID: "u", OrderID: "o2", InstrumentID: in.InstrumentID, Direction: schema.DirectionSELL,
		Offset: schema.OffsetCLOSE, Volume: 1, PriceType: schema.PriceTypeLIMIT, LimitPrice: tick.BidPrice1, TimeCondition: schema.TimeConditionIOC}
	x.Submit(sell, 4, mir.emit)
	a := mir.accounts["u"]
	wantProfit := (tick.BidPrice1 - tick.AskPrice1) * float64(in.VolumeMultiple)
	if !near(a.CloseProfit, wantProfit) || !near(a.Commission, 2*in.Commission) {
		t.Fatalf("close_profit %v (want %v), commission %v (want %v)", a.CloseProfit, wantProfit, a.Commission, 2*in.Commission)
	}
	if !near(a.Balance, DefaultInitialBalance+wantProfit-2*in.Commission) || !near(a.Margin, 0) || !near(a.Available, a.Balance) {
		t.Fatalf("flat account: %+v", a)
	}
	if len(mir.errs) > 0 {
		t.Fatal(mir.errs)
	}
}

func TestRejectionsSayWhy(t *testing.T) {
	market, x := newTestExchange(t, 2, 7)
	in := market.Instrument(0)
	var tick schema.Tick
	market.Quote(0, 1, &tick)
	base := schema.OrderRequest{UserID: "u", InstrumentID: in.InstrumentID, Direction: schema.DirectionBUY, Offset: schema.OffsetOPEN,
		Volume: 1, PriceType: schema.PriceTypeLIMIT, LimitPrice: tick.BidPrice1, TimeCondition: schema.TimeConditionGFD}
	cases := []struct {
		name   string
		mutate func(r *schema.OrderRequest)
		want   string
	}{
		{"unknown instrument", func(r *schema.OrderRequest) { r.InstrumentID = "SHFE.xx9999" }, `unknown instrument "SHFE.xx9999"`},
		{"off tick", func(r *schema.OrderRequest) { r.LimitPrice += in.PriceTick / 2 }, "not a multiple of the price tick"},
		{"above limit", func(r *schema.OrderRequest) { r.LimitPrice = in.UpperLimit + in.PriceTick }, "outside the price limits"},
		{"volume zero", func(r *schema.OrderRequest) { r.Volume = 0 }, "outside the order volume limits 1..500"},
		{"volume too big", func(r *schema.OrderRequest) { r.Volume = 501 }, "outside the order volume limits 1..500"},
		{"close nothing", func(r *schema.OrderRequest) { r.Offset = schema.OffsetCLOSE }, "insufficient position to close: 0 lots closable, 1 ordered"},
		{"no money", func(r *schema.OrderRequest) { r.Volume = 400 }, "insufficient available funds"},
		{"wrong exchange", func(r *schema.OrderRequest) { r.ExchangeID = "DCE" }, "trades on SHFE, not DCE"},
	}
	for k, c := range cases {
		mir := newMirror()
		req := base
		req.OrderID = fmt.Sprintf("r%d", k)
		c.mutate(&req)
		x.Submit(&req, 2, mir.emit)
		o := mir.orders["u/"+req.OrderID]
		if o.Status != schema.OrderStatusFINISHED || o.VolumeLeft != req.Volume || !contains(o.LastMsg, c.want) {
			t.Errorf("%s: order %+v, want FINISHED with last_msg containing %q", c.name, o, c.want)
		}
	}
	mir := newMirror()
	dup := base
	dup.OrderID = "r0"
	x.Submit(&dup, 3, mir.emit)
	if len(mir.orders) != 0 || len(mir.notifies) != 1 || mir.notifies[0].Level != schema.NotifyLevelERROR {
		t.Fatalf("duplicate order id: orders %v notifies %v, want one ERROR notify and no order", mir.orders, mir.notifies)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestRestingOrderFillsWhenMarketComesAndCancelReleases(t *testing.T) {
	market, x := newTestExchange(t, 1, 3)
	mir := newMirror()
	in := market.Instrument(0)
	var tick schema.Tick
	market.Quote(0, 1, &tick)
	// A buy 3 ticks under the bid rests; a cancel releases its freeze.
	req := schema.OrderRequest{UserID: "u", OrderID: "rest", InstrumentID: in.InstrumentID, Direction: schema.DirectionBUY, Offset: schema.OffsetOPEN,
		Volume: 2, PriceType: schema.PriceTypeLIMIT, LimitPrice: tick.BidPrice1 - 3*in.PriceTick, TimeCondition: schema.TimeConditionGFD}
	x.Submit(&req, 2, mir.emit)
	if o := mir.orders["u/rest"]; o.Status != schema.OrderStatusALIVE || o.VolumeLeft != 2 {
		t.Fatalf("order did not rest: %+v", o)
	}
	if a := mir.accounts["u"]; !near(a.FrozenMargin, 2*in.Margin) || !near(a.FrozenCommission, 2*in.Commission) {
		t.Fatalf("resting order froze %v margin and %v commission", a.FrozenMargin, a.FrozenCommission)
	}
	x.Cancel(&schema.CancelRequest{UserID: "u", OrderID: "rest"}, 3, mir.emit)
	if a := mir.accounts["u"]; a.FrozenMargin != 0 || a.FrozenCommission != 0 || !near(a.Available, DefaultInitialBalance) {
		t.Fatalf("cancel did not release: %+v", a)
	}
	x.Cancel(&schema.CancelRequest{UserID: "u", OrderID: "rest"}, 4, mir.emit)
	if len(mir.notifies) != 1 {
		t.Fatalf("second cancel: %d notifies, want 1", len(mir.notifies))
	}
	// A sell at the current bid + 2 ticks rests until the walk reaches it.
	market.Quote(0, 5, &tick)
	sell := schema.OrderRequest{UserID: "u", OrderID: "s", InstrumentID: in.InstrumentID, Direction: schema.DirectionSELL, Offset: schema.OffsetOPEN,
		Volume: 1, PriceType: schema.PriceTypeLIMIT, LimitPrice: tick.AskPrice1 + in.PriceTick, TimeCondition: schema.TimeConditionGFD}
	x.Submit(&sell, 6, mir.emit)
	for step := int64(0); step < 100_000 && mir.orders["u/s"].Status == schema.OrderStatusALIVE; step++ {
		market.Step(0, 7+step, &tick)
		x.OnTick(0, 7+step, mir.emit)
	}
	if o := mir.orders["u/s"]; o.Status != schema.OrderStatusFINISHED || o.VolumeLeft != 0 {
		t.Fatalf("resting sell never filled: %+v", o)
	}
	if p := mir.positions["u/"+in.InstrumentID]; p.VolumeShort != 1 || !near(p.OpenPriceShort, sell.LimitPrice) {
		t.Fatalf("short position %+v, want 1 lot opened at %v (never worse than the limit)", p, sell.LimitPrice)
	}
	mir.checkAgainstTrades(t)
	if len(mir.errs) > 0 {
		t.Fatal(mir.errs)
	}
}

func TestTransfers(t *testing.T) {
	_, x := newTestExchange(t, 1, 1)
	mir := newMirror()
	x.Transfer(&schema.TransferRequest{UserID: "u", Amount: 500}, 1, mir.emit)
	x.Transfer(&schema.TransferRequest{UserID: "u", Amount: -200}, 2, mir.emit)
	x.Transfer(&schema.TransferRequest{UserID: "u", Amount: -1e12}, 3, mir.emit)
	x.Transfer(&schema.TransferRequest{UserID: "u", Amount: 1, Currency: "USD"}, 4, mir.emit)
	x.Transfer(&schema.TransferRequest{UserID: "u", Amount: math.NaN()}, 5, mir.emit)
	a := mir.accounts["u"]
	if a.Deposit != 500 || a.Withdraw != 200 || !near(a.StaticBalance, DefaultInitialBalance+300) {
		t.Fatalf("account after transfers: %+v", a)
	}
	errs := 0
	for k, tr := range mir.transfers {
		if tr.Serial != int64(k+1) {
			t.Fatalf("transfer serials not consecutive: %+v", mir.transfers)
		}
		if tr.ErrorID != 0 {
			errs++
		}
	}
	if errs != 3 {
		t.Fatalf("%d transfers refused, want 3: %+v", errs, mir.transfers)
	}
}

// TestRandomFlowKeepsIdentities drives the exchange with random ticks,
// orders (good and bad), cancels and transfers, and checks after every event
// that DIFF's identities hold, and at the end that positions, fills and
// commissions agree with the trade log.
func TestRandomFlowKeepsIdentities(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(1, 4).Draw(rt, "instruments")
		market, x := newTestExchange(rt, n, rapid.Uint64().Draw(rt, "seed"))
		mir := newMirror()
		users := []string{"alice", "bob", "carol"}
		var tick schema.Tick
		now := int64(1)
		orderIDs := 0
		steps := rapid.IntRange(1, 300).Draw(rt, "steps")
		for s := 0; s < steps; s++ {
			now++
			i := rapid.IntRange(0, n-1).Draw(rt, "instrument")
			in := market.Instrument(i)
			user := rapid.SampledFrom(users).Draw(rt, "user")
			switch rapid.IntRange(0, 9).Draw(rt, "action") {
			case 0, 1, 2:
				market.Step(i, now, &tick)
				x.OnTick(i, now, mir.emit)
			case 3, 4, 5, 6:
				market.Quote(i, now, &tick)
				orderIDs++
				req := schema.OrderRequest{
					UserID:          user,
					OrderID:         fmt.Sprintf("o%d", orderIDs),
					InstrumentID:    in.InstrumentID,
					Direction:       schema.Direction(rapid.IntRange(0, 1).Draw(rt, "dir")),
					Offset:          schema.Offset(rapid.IntRange(0, 2).Draw(rt, "offset")),
					Volume:          rapid.Int64Range(0, 30).Draw(rt, "volume"),
					PriceType:       schema.PriceType(rapid.IntRange(0, 3).Draw(rt, "price_type")),
					LimitPrice:      tick.BidPrice1 + float64(rapid.IntRange(-6, 7).Draw(rt, "ticks_from_bid"))*in.PriceTick,
					TimeCondition:   rapid.SampledFrom([]schema.TimeCondition{schema.TimeConditionIOC, schema.TimeConditionGFD}).Draw(rt, "tc"),
					VolumeCondition: rapid.SampledFrom([]schema.VolumeCondition{schema.VolumeConditionANY, schema.VolumeConditionALL}).Draw(rt, "vc"),
				}
				x.Submit(&req, now, mir.emit)
			case 7, 8:
				id := fmt.Sprintf("o%d", rapid.IntRange(0, orderIDs+1).Draw(rt, "cancel"))
				x.Cancel(&schema.CancelRequest{UserID: user, OrderID: id}, now, mir.emit)
			case 9:
				amount := float64(rapid.IntRange(-2_000_000, 2_000_000).Draw(rt, "amount"))
				x.Transfer(&schema.TransferRequest{UserID: user, Amount: amount}, now, mir.emit)
			}
			if len(mir.errs) > 0 {
				rt.Fatalf("step %d: %v", s, mir.errs)
			}
		}
		mir.checkAgainstTrades(rt)
	})
}

func TestSameSeedSameEvents(t *testing.T) {
	run := func() []string {
		market, x := newTestExchange(t, 3, 42)
		var log []string
		out := func(ev schema.Event) { log = append(log, fmt.Sprintf("%T %+v", ev, ev)) }
		var tick schema.Tick
		for s := int64(0); s < 2000; s++ {
			i := int(s % 3)
			market.Step(i, s, &tick)
			x.OnTick(i, s, out)
			if s%7 == 0 {
				req := schema.OrderRequest{UserID: "u", OrderID: fmt.Sprint(s), InstrumentID: market.Instrument(i).InstrumentID,
					Direction: schema.Direction(s % 2), Offset: schema.OffsetOPEN, Volume: 1 + s%5, PriceType: schema.PriceTypeLIMIT,
					LimitPrice: tick.BidPrice1, TimeCondition: schema.TimeConditionGFD}
				x.Submit(&req, s, out)
			}
		}
		return log
	}
	a, b := run(), run()
	if len(a) != len(b) || len(a) < 100 {
		t.Fatalf("runs emitted %d and %d events", len(a), len(b))
	}
	for k := range a {
		if a[k] != b[k] {
			t.Fatalf("event %d differs:\n%s\n%s", k, a[k], b[k])
		}
	}
}
