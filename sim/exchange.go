package sim

import (
	"fmt"
	"math"
	"strconv"

	"github.com/tapewire/tapewire/schema"
)

// Config sets the simulated exchange's accounts.
type Config struct {
	// Currency of every account (DIFF accounts/<currency>). Default "CNY".
	Currency string
	// InitialBalance is the pre_balance of an account the exchange opens the
	// first time a user sends a request. Default 10,000,000.
	InitialBalance float64
}

// Defaults for Config's zero fields.
const (
	DefaultCurrency       = "CNY"
	DefaultInitialBalance = 10_000_000
)

// Emit receives each event the exchange produces. The event is valid only
// during the call: the exchange reuses its state, so a receiver that keeps an
// event copies it (building a frame from it is the usual thing to do).
type Emit func(ev schema.Event)

// Exchange matches orders of simulated users against the Market's book and
// keeps their accounts and positions as a futures broker would, emitting
// Order, Trade, Position, Account, Transfer and Notify events whose numbers
// obey DIFF's identities after every event:
//
//	static_balance = pre_balance + deposit − withdraw
//	balance        = static_balance + close_profit − commission − premium + position_profit
//	available      = balance − margin − frozen_margin − frozen_commission − frozen_premium
//	risk_ratio     = 1 − available / balance
//
// Positions are valued at average cost: opening adds price × lots × multiple
// to the cost of its side; closing removes the average cost of the lots
// closed and books the difference to the closing price as close_profit.
// Everything opened in the simulation is "today"; CLOSE closes history lots
// first, then today's (exchanges that insist on CLOSETODAY are not modelled).
// Open orders freeze margin and commission; close orders freeze commission
// and the position lots they will close.
//
// An Exchange is not safe for concurrent use: one goroutine feeds it ticks
// and requests.
type Exchange struct {
	market    *Market
	cfg       Config
	accounts  map[string]*account
	byOpening []*account // accounts in the order they opened, for deterministic event order
	orders    map[orderKey]*order
	resting   [][]*order // alive orders per instrument, in arrival order
	exchSeq   int64      // exchange order ids
	tradeSeq  int64      // exchange trade ids
	transfers int64      // transfer serials
}

type orderKey struct{ user, orderID string }

type account struct {
	v         schema.Account
	positions map[int]*position
	byOpening []*position // positions in the order they opened: sums in a fixed order
	seqno     int64       // per-user order and trade sequence
	alive     []*order    // alive orders, in arrival order
}

type position struct {
	v schema.Position
}

type order struct {
	v                schema.Order
	instrument       int
	frozenMargin     float64
	frozenCommission float64
	frozenHis        int64 // position lots frozen by a close order
	frozenToday      int64
}

// NewExchange returns an exchange trading the market's instruments.
func NewExchange(market *Market, cfg Config) *Exchange {
	if cfg.Currency == "" {
		cfg.Currency = DefaultCurrency
	}
	if cfg.InitialBalance == 0 {
		cfg.InitialBalance = DefaultInitialBalance
	}
	return &Exchange{
		market:   market,
		cfg:      cfg,
		accounts: make(map[string]*account),
		orders:   make(map[orderKey]*order),
		resting:  make([][]*order, market.Len()),
	}
}

// Account opens userID's account if it has none (emitting it) and returns
// its current state. The result is valid until the next call.
func (x *Exchange) Account(userID string, out Emit) *schema.Account {
	return &x.account(userID, out).v
}

func (x *Exchange) account(userID string, out Emit) *account {
	a := x.accounts[userID]
	if a != nil {
		return a
	}
	a = &account{positions: make(map[int]*position)}
	a.v = schema.Account{UserID: userID, Currency: x.cfg.Currency, PreBalance: x.cfg.InitialBalance}
	x.accounts[userID] = a
	x.byOpening = append(x.byOpening, a)
	x.recomputeAccount(a)
	out(&a.v)
	return a
}

// Submit handles an order request at time nowNs: it validates the order,
// freezes what it needs, trades it against the book, and leaves any
// remainder resting (GFD/GTC/... limit orders) or cancels it (IOC, market
// orders). A request that cannot be accepted becomes a FINISHED order whose
// last_msg says why; a duplicate order id gets an ERROR notify instead, so
// the existing order is never overwritten.
func (x *Exchange) Submit(req *schema.OrderRequest, nowNs int64, out Emit) {
	a := x.account(req.UserID, out)
	key := orderKey{req.UserID, req.OrderID}
	if _, dup := x.orders[key]; dup {
		x.notify(req.UserID, schema.NotifyLevelERROR, 10, fmt.Sprintf("order %q: order id already used", req.OrderID), out)
		return
	}
	a.seqno++
	o := &order{v: schema.Order{
		Seqno:           a.seqno,
		UserID:          req.UserID,
		OrderID:         req.OrderID,
		ExchangeID:      req.ExchangeID,
		InstrumentID:    req.InstrumentID,
		Direction:       req.Direction,
		Offset:          req.Offset,
		VolumeOrign:     req.Volume,
		PriceType:       req.PriceType,
		LimitPrice:      req.LimitPrice,
		TimeCondition:   req.TimeCondition,
		VolumeCondition: req.VolumeCondition,
		InsertDateTime:  nowNs,
		Status:          schema.OrderStatusALIVE,
		VolumeLeft:      req.Volume,
	}}
	x.orders[key] = o
	i, reason := x.validate(a, o)
	if reason != "" {
		x.finish(a, o, "rejected: "+reason, out)
		return
	}
	o.instrument = i
	x.exchSeq++
	o.v.ExchangeOrderID = strconv.FormatInt(x.exchSeq, 10)
	x.freeze(a, o)
	a.alive = append(a.alive, o)
	x.recomputeAccount(a)
	out(&o.v)
	out(&a.v)

	if o.v.VolumeCondition == schema.VolumeConditionALL && x.market.Available(i, o.v.Direction, o.v.LimitPrice) < o.v.VolumeLeft {
		x.finish(a, o, "cancelled: fill-or-kill volume not available", out)
		return
	}
	x.trade(a, o, nowNs, out)
	if o.v.VolumeLeft == 0 {
		x.finish(a, o, "filled", out)
		return
	}
	if o.v.TimeCondition == schema.TimeConditionIOC {
		x.finish(a, o, "cancelled: immediate-or-cancel remainder", out)
		return
	}
	x.resting[i] = append(x.resting[i], o)
	out(&o.v)
}

// validate checks an order against the instrument's rules and the account,
// and fixes the price of market orders. It returns the instrument index, or
// the reason for rejecting the order.
func (x *Exchange) validate(a *account, o *order) (int, string) {
	i, ok := x.market.Index(o.v.InstrumentID)
	if !ok {
		return 0, fmt.Sprintf("unknown instrument %q", o.v.InstrumentID)
	}
	in := x.market.Instrument(i)
	if o.v.ExchangeID != "" && o.v.ExchangeID != in.ExchangeID {
		return 0, fmt.Sprintf("instrument %s trades on %s, not %s", in.InstrumentID, in.ExchangeID, o.v.ExchangeID)
	}
	o.v.ExchangeID = in.ExchangeID
	if o.v.Direction != schema.DirectionBUY && o.v.Direction != schema.DirectionSELL {
		return 0, fmt.Sprintf("direction %v is not BUY or SELL", o.v.Direction)
	}
	minVolume, maxVolume := in.MinLimitOrderVolume, in.MaxLimitOrderVolume
	switch o.v.PriceType {
	case schema.PriceTypeLIMIT:
		if !onTick(o.v.LimitPrice, in.PriceTick) {
			return 0, fmt.Sprintf("limit price %v is not a multiple of the price tick %v", o.v.LimitPrice, in.PriceTick)
		}
		if o.v.LimitPrice > in.UpperLimit || o.v.LimitPrice < in.LowerLimit {
			return 0, fmt.Sprintf("limit price %v outside the price limits %v..%v", o.v.LimitPrice, in.LowerLimit, in.UpperLimit)
		}
	case schema.PriceTypeANY, schema.PriceTypeFIVELEVEL, schema.PriceTypeBEST:
		levels := BookLevels
		if o.v.PriceType == schema.PriceTypeBEST {
			levels = 1
		}
		o.v.LimitPrice = x.market.BestOpposite(i, o.v.Direction, levels)
		o.v.TimeCondition = schema.TimeConditionIOC
		minVolume, maxVolume = in.MinMarketOrderVolume, in.MaxMarketOrderVolume
	default:
		return 0, fmt.Sprintf("price type %v not supported", o.v.PriceType)
	}
	if o.v.VolumeOrign < minVolume || o.v.VolumeOrign > maxVolume {
		return 0, fmt.Sprintf("volume %d outside the order volume limits %d..%d", o.v.VolumeOrign, minVolume, maxVolume)
	}
	lots := float64(o.v.VolumeOrign)
	switch o.v.Offset {
	case schema.OffsetOPEN:
		need := (in.Margin + in.Commission) * lots
		if need > a.v.Available {
			return 0, fmt.Sprintf("insufficient available funds: needs %.2f, available %.2f", need, a.v.Available)
		}
	case schema.OffsetCLOSE, schema.OffsetCLOSETODAY:
		p := a.positions[i]
		his, today := closable(p, o.v.Direction)
		if o.v.Offset == schema.OffsetCLOSETODAY {
			his = 0
		}
		if his+today < o.v.VolumeOrign {
			return 0, fmt.Sprintf("insufficient position to close: %d lots closable, %d ordered", his+today, o.v.VolumeOrign)
		}
		if need := in.Commission * lots; need > a.v.Available {
			return 0, fmt.Sprintf("insufficient available funds for commission: needs %.2f, available %.2f", need, a.v.Available)
		}
	default:
		return 0, fmt.Sprintf("offset %v is not OPEN, CLOSE or CLOSETODAY", o.v.Offset)
	}
	return i, ""
}

// closable returns the history and today lots a close order in direction dir
// may still close (a sell closes longs, a buy closes shorts).
func closable(p *position, dir schema.Direction) (his, today int64) {
	if p == nil {
		return 0, 0
	}
	if dir == schema.DirectionSELL {
		return p.v.VolumeLongHis - p.v.VolumeLongFrozenHis, p.v.VolumeLongToday - p.v.VolumeLongFrozenToday
	}
	return p.v.VolumeShortHis - p.v.VolumeShortFrozenHis, p.v.VolumeShortToday - p.v.VolumeShortFrozenToday
}

func (x *Exchange) freeze(a *account, o *order) {
	in := x.market.Instrument(o.instrument)
	lots := float64(o.v.VolumeOrign)
	o.frozenCommission = in.Commission * lots
	if o.v.Offset == schema.OffsetOPEN {
		o.frozenMargin = in.Margin * lots
		return
	}
	p := x.position(a, o.instrument)
	his, today := closable(p, o.v.Direction)
	if o.v.Offset == schema.OffsetCLOSETODAY {
		his = 0
	}
	o.frozenHis = min(his, o.v.VolumeOrign)
	o.frozenToday = o.v.VolumeOrign - o.frozenHis
	_ = today // validate guaranteed today >= frozenToday
	x.addFrozenLots(p, o.v.Direction, o.frozenHis, o.frozenToday)
}

func (x *Exchange) addFrozenLots(p *position, dir schema.Direction, his, today int64) {
	if dir == schema.DirectionSELL {
		p.v.VolumeLongFrozenHis += his
		p.v.VolumeLongFrozenToday += today
	} else {
		p.v.VolumeShortFrozenHis += his
		p.v.VolumeShortFrozenToday += today
	}
}

// trade takes liquidity for o's remaining volume at its limit price.
func (x *Exchange) trade(a *account, o *order, nowNs int64, out Emit) {
	x.market.Take(o.instrument, o.v.Direction, o.v.LimitPrice, o.v.VolumeLeft, func(price float64, volume int64) {
		x.fill(a, o, price, volume, nowNs, out)
	})
}

// fill books one fill of o: trade, position, account, order volume.
func (x *Exchange) fill(a *account, o *order, price float64, volume int64, nowNs int64, out Emit) {
	in := x.market.Instrument(o.instrument)
	lots := float64(volume)
	mult := float64(in.VolumeMultiple)
	p := x.position(a, o.instrument)
	commission := in.Commission * lots
	o.frozenCommission -= commission
	a.v.Commission += commission
	if o.v.Offset == schema.OffsetOPEN {
		o.frozenMargin -= in.Margin * lots
		cost := price * lots * mult
		if o.v.Direction == schema.DirectionBUY {
			p.v.VolumeLongToday += volume
			p.v.OpenCostLong += cost
			p.v.PositionCostLong += cost
		} else {
			p.v.VolumeShortToday += volume
			p.v.OpenCostShort += cost
			p.v.PositionCostShort += cost
		}
	} else {
		fromHis := min(o.frozenHis, volume)
		fromToday := volume - fromHis
		o.frozenHis -= fromHis
		o.frozenToday -= fromToday
		x.addFrozenLots(p, o.v.Direction, -fromHis, -fromToday)
		if o.v.Direction == schema.DirectionSELL { // closes longs
			held := float64(p.v.VolumeLongHis + p.v.VolumeLongToday)
			positionCost := p.v.PositionCostLong / held * lots
			openCost := p.v.OpenCostLong / held * lots
			a.v.CloseProfit += price*lots*mult - positionCost
			p.v.PositionCostLong -= positionCost
			p.v.OpenCostLong -= openCost
			p.v.VolumeLongHis -= fromHis
			p.v.VolumeLongToday -= fromToday
		} else { // closes shorts
			held := float64(p.v.VolumeShortHis + p.v.VolumeShortToday)
			positionCost := p.v.PositionCostShort / held * lots
			openCost := p.v.OpenCostShort / held * lots
			a.v.CloseProfit += positionCost - price*lots*mult
			p.v.PositionCostShort -= positionCost
			p.v.OpenCostShort -= openCost
			p.v.VolumeShortHis -= fromHis
			p.v.VolumeShortToday -= fromToday
		}
	}
	o.v.VolumeLeft -= volume
	a.seqno++
	x.tradeSeq++
	exchangeTradeID := strconv.FormatInt(x.tradeSeq, 10)
	trade := schema.Trade{
		Seqno:           a.seqno,
		UserID:          o.v.UserID,
		TradeID:         o.v.OrderID + "|" + exchangeTradeID,
		ExchangeID:      o.v.ExchangeID,
		InstrumentID:    o.v.InstrumentID,
		OrderID:         o.v.OrderID,
		ExchangeTradeID: exchangeTradeID,
		Direction:       o.v.Direction,
		Offset:          o.v.Offset,
		Volume:          volume,
		Price:           price,
		TradeDateTime:   nowNs,
		Commission:      commission,
	}
	out(&trade)
	x.revalue(p, o.instrument)
	x.recomputeAccount(a)
	out(&p.v)
	out(&a.v)
}

// finish ends o: whatever it still freezes is released, it leaves the
// resting book, and its final state is emitted with the account.
func (x *Exchange) finish(a *account, o *order, msg string, out Emit) {
	if o.frozenHis > 0 || o.frozenToday > 0 {
		p := x.position(a, o.instrument)
		x.addFrozenLots(p, o.v.Direction, -o.frozenHis, -o.frozenToday)
		o.frozenHis, o.frozenToday = 0, 0
		x.revalue(p, o.instrument)
		out(&p.v)
	}
	o.frozenMargin, o.frozenCommission = 0, 0
	o.v.Status = schema.OrderStatusFINISHED
	o.v.LastMsg = msg
	a.alive = without(a.alive, o)
	x.resting[o.instrument] = without(x.resting[o.instrument], o)
	x.recomputeAccount(a)
	out(&o.v)
	out(&a.v)
}

// Cancel handles a cancel request: an alive order is finished and what it
// froze released; an unknown or finished order gets an ERROR notify.
func (x *Exchange) Cancel(req *schema.CancelRequest, nowNs int64, out Emit) {
	a := x.account(req.UserID, out)
	o, ok := x.orders[orderKey{req.UserID, req.OrderID}]
	switch {
	case !ok:
		x.notify(req.UserID, schema.NotifyLevelERROR, 20, fmt.Sprintf("cancel order %q: no such order", req.OrderID), out)
	case o.v.Status == schema.OrderStatusFINISHED:
		x.notify(req.UserID, schema.NotifyLevelERROR, 21, fmt.Sprintf("cancel order %q: already finished (%s)", req.OrderID, o.v.LastMsg), out)
	default:
		x.finish(a, o, "cancelled", out)
	}
}

// Transfer moves money between the bank and the futures account: a positive
// amount deposits, a negative one withdraws (refused beyond available).
func (x *Exchange) Transfer(req *schema.TransferRequest, nowNs int64, out Emit) {
	a := x.account(req.UserID, out)
	x.transfers++
	t := schema.Transfer{UserID: req.UserID, Serial: x.transfers, Datetime: nowNs, Currency: x.cfg.Currency, Amount: req.Amount}
	switch {
	case req.Currency != "" && req.Currency != x.cfg.Currency:
		t.ErrorID, t.ErrorMsg = 1, fmt.Sprintf("currency %q not held; the account is in %s", req.Currency, x.cfg.Currency)
	case !(math.Abs(req.Amount) > 0) || math.IsInf(req.Amount, 0):
		t.ErrorID, t.ErrorMsg = 2, fmt.Sprintf("amount %v must be a non-zero finite number", req.Amount)
	case req.Amount < 0 && -req.Amount > a.v.Available:
		t.ErrorID, t.ErrorMsg = 3, fmt.Sprintf("withdrawal of %.2f exceeds available %.2f", -req.Amount, a.v.Available)
	case req.Amount > 0:
		a.v.Deposit += req.Amount
	default:
		a.v.Withdraw -= req.Amount
	}
	out(&t)
	x.recomputeAccount(a)
	out(&a.v)
}

// OnTick runs after the market stepped instrument i: resting orders that
// the new book crosses trade, and every position in the instrument is
// revalued at the new last price (Position and Account events for each
// holder).
func (x *Exchange) OnTick(i int, nowNs int64, out Emit) {
	rest := x.resting[i]
	for k := 0; k < len(rest); k++ {
		o := rest[k]
		a := x.accounts[o.v.UserID]
		x.trade(a, o, nowNs, out)
		if o.v.VolumeLeft == 0 {
			x.finish(a, o, "filled", out)
			rest = x.resting[i]
			k--
		} else if o.v.VolumeLeft < o.v.VolumeOrign {
			out(&o.v)
		}
	}
	for _, a := range x.byOpening {
		p := a.positions[i]
		if p == nil || p.v.LastPrice == x.market.Last(i) {
			continue
		}
		x.revalue(p, i)
		x.recomputeAccount(a)
		out(&p.v)
		out(&a.v)
	}
}

func (x *Exchange) position(a *account, i int) *position {
	p := a.positions[i]
	if p == nil {
		in := x.market.Instrument(i)
		p = &position{v: schema.Position{UserID: a.v.UserID, ExchangeID: in.ExchangeID, InstrumentID: in.InstrumentID}}
		a.positions[i] = p
		a.byOpening = append(a.byOpening, p)
		x.revalue(p, i)
	}
	return p
}

// revalue derives every computed field of a position from its volumes and
// costs at the instrument's last price.
func (x *Exchange) revalue(p *position, i int) {
	in := x.market.Instrument(i)
	mult := float64(in.VolumeMultiple)
	last := x.market.Last(i)
	v := &p.v
	v.LastPrice = last
	v.VolumeLong = v.VolumeLongToday + v.VolumeLongHis
	v.VolumeLongFrozen = v.VolumeLongFrozenToday + v.VolumeLongFrozenHis
	v.VolumeShort = v.VolumeShortToday + v.VolumeShortHis
	v.VolumeShortFrozen = v.VolumeShortFrozenToday + v.VolumeShortFrozenHis
	if v.VolumeLong == 0 {
		v.OpenCostLong, v.PositionCostLong = 0, 0 // no float residue on a flat side
	}
	if v.VolumeShort == 0 {
		v.OpenCostShort, v.PositionCostShort = 0, 0
	}
	long, short := float64(v.VolumeLong)*mult, float64(v.VolumeShort)*mult
	v.OpenPriceLong, v.PositionPriceLong = perUnit(v.OpenCostLong, long), perUnit(v.PositionCostLong, long)
	v.OpenPriceShort, v.PositionPriceShort = perUnit(v.OpenCostShort, short), perUnit(v.PositionCostShort, short)
	v.FloatProfitLong = last*long - v.OpenCostLong
	v.FloatProfitShort = v.OpenCostShort - last*short
	v.FloatProfit = v.FloatProfitLong + v.FloatProfitShort
	v.PositionProfitLong = last*long - v.PositionCostLong
	v.PositionProfitShort = v.PositionCostShort - last*short
	v.PositionProfit = v.PositionProfitLong + v.PositionProfitShort
	v.MarginLong = in.Margin * float64(v.VolumeLong)
	v.MarginShort = in.Margin * float64(v.VolumeShort)
	v.Margin = v.MarginLong + v.MarginShort
}

func perUnit(cost, units float64) float64 {
	if units == 0 {
		return math.NaN()
	}
	return cost / units
}

// recomputeAccount derives the account's computed fields from its positions
// and alive orders, so the DIFF identities hold by construction.
func (x *Exchange) recomputeAccount(a *account) {
	v := &a.v
	v.PositionProfit, v.FloatProfit, v.Margin = 0, 0, 0
	for _, p := range a.byOpening {
		v.PositionProfit += p.v.PositionProfit
		v.FloatProfit += p.v.FloatProfit
		v.Margin += p.v.Margin
	}
	v.FrozenMargin, v.FrozenCommission = 0, 0
	for _, o := range a.alive {
		v.FrozenMargin += o.frozenMargin
		v.FrozenCommission += o.frozenCommission
	}
	v.StaticBalance = v.PreBalance + v.Deposit - v.Withdraw
	v.Balance = v.StaticBalance + v.CloseProfit - v.Commission - v.Premium + v.PositionProfit
	v.Available = v.Balance - v.Margin - v.FrozenMargin - v.FrozenCommission - v.FrozenPremium
	v.RiskRatio = 0
	if v.Balance > 0 {
		v.RiskRatio = 1 - v.Available/v.Balance
	}
}

// without removes o from orders, keeping the order of the rest.
func without(orders []*order, o *order) []*order {
	for k, r := range orders {
		if r == o {
			return append(orders[:k], orders[k+1:]...)
		}
	}
	return orders
}

func (x *Exchange) notify(userID string, level schema.NotifyLevel, code int32, content string, out Emit) {
	n := schema.Notify{UserID: userID, Type: schema.NotifyTypeMESSAGE, Level: level, Code: code, Content: content}
	out(&n)
}
