package sim

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/tapewire/tapewire/schema"
)

// BookLevels is the depth of the simulated book on each side, as in a Tick.
const BookLevels = 5

// Random-walk parameters. A step moves the mid by one tick with probability
// stepMoveProbability (two ticks one time in twenty of those) and prints a
// market trade with probability stepTradeProbability.
const (
	stepMoveProbability  = 0.3
	stepTradeProbability = 0.5
	maxLevelVolume       = 60
	maxMarketTradeVolume = 20
)

// Market is the random walk of every simulated instrument's book: one tick
// of spread, five levels a side, market trades printing at the touch.
// Prices are held in whole ticks so no float error accumulates.
//
// A Market is not safe for concurrent use.
type Market struct {
	instruments []schema.Instrument
	books       []book
	rng         *rand.Rand
}

type book struct {
	bidTicks       int64 // best bid in ticks; best ask is one tick above
	lowerTicks     int64 // price limits in ticks: the walk stays inside them
	upperTicks     int64
	bidVolume      [BookLevels]int64
	askVolume      [BookLevels]int64
	lastTicks      int64
	volume         int64
	amount         float64
	openInterest   int64
	preOI          int64
	openTicks      int64
	highTicks      int64
	lowTicks       int64
	preCloseTicks  int64
	preSettleTicks int64
	traded         bool
}

// NewMarket starts a random walk for each instrument at its start price,
// deterministic for a given seed.
func NewMarket(instruments []schema.Instrument, startPrices []float64, seed uint64) (*Market, error) {
	if len(instruments) != len(startPrices) {
		return nil, fmt.Errorf("market: %d instruments but %d start prices", len(instruments), len(startPrices))
	}
	m := &Market{instruments: instruments, books: make([]book, len(instruments)), rng: rand.New(rand.NewPCG(seed, seed^0x5eed))}
	for i := range instruments {
		in := &instruments[i]
		if !(in.PriceTick > 0) {
			return nil, fmt.Errorf("market: instrument %s: price tick %v must be positive", in.InstrumentID, in.PriceTick)
		}
		if in.VolumeMultiple <= 0 {
			return nil, fmt.Errorf("market: instrument %s: volume multiple %d must be positive", in.InstrumentID, in.VolumeMultiple)
		}
		b := &m.books[i]
		start := toTicks(startPrices[i], in.PriceTick)
		b.lowerTicks = toTicks(in.LowerLimit, in.PriceTick)
		b.upperTicks = toTicks(in.UpperLimit, in.PriceTick)
		if b.upperTicks-b.lowerTicks < 2*BookLevels+2 || start <= b.lowerTicks || start >= b.upperTicks {
			return nil, fmt.Errorf("market: instrument %s: start price %v must lie inside the limits %v..%v with room for the book",
				in.InstrumentID, startPrices[i], in.LowerLimit, in.UpperLimit)
		}
		b.bidTicks = start
		b.lastTicks = start
		b.preCloseTicks = start
		b.preSettleTicks = start
		b.preOI = 10_000 + m.rng.Int64N(90_000)
		b.openInterest = b.preOI
		for l := 0; l < BookLevels; l++ {
			b.bidVolume[l] = 1 + m.rng.Int64N(maxLevelVolume)
			b.askVolume[l] = 1 + m.rng.Int64N(maxLevelVolume)
		}
	}
	return m, nil
}

// Len is the number of instruments.
func (m *Market) Len() int { return len(m.instruments) }

// Instrument returns the reference data of instrument i.
func (m *Market) Instrument(i int) *schema.Instrument { return &m.instruments[i] }

// Index returns the index of the instrument with the given EXCH.code id.
func (m *Market) Index(instrumentID string) (int, bool) {
	for i := range m.instruments {
		if m.instruments[i].InstrumentID == instrumentID {
			return i, true
		}
	}
	return 0, false
}

// Step advances instrument i's walk by one step at time nowNs and writes
// the resulting quote into tick.
func (m *Market) Step(i int, nowNs int64, tick *schema.Tick) {
	b := &m.books[i]
	if m.rng.Float64() < stepMoveProbability {
		move := int64(1)
		if m.rng.IntN(20) == 0 {
			move = 2
		}
		if m.rng.IntN(2) == 0 {
			move = -move
		}
		next := b.bidTicks + move
		if next-BookLevels >= b.lowerTicks && next+BookLevels+1 <= b.upperTicks {
			b.bidTicks = next
			// The side the price moved into is fresh liquidity.
			for l := 0; l < BookLevels; l++ {
				b.bidVolume[l] = 1 + m.rng.Int64N(maxLevelVolume)
				b.askVolume[l] = 1 + m.rng.Int64N(maxLevelVolume)
			}
		}
	}
	// Refill one level a side, so the book breathes between moves.
	b.bidVolume[m.rng.IntN(BookLevels)] = 1 + m.rng.Int64N(maxLevelVolume)
	b.askVolume[m.rng.IntN(BookLevels)] = 1 + m.rng.Int64N(maxLevelVolume)
	if m.rng.Float64() < stepTradeProbability {
		volume := 1 + m.rng.Int64N(maxMarketTradeVolume)
		at := b.bidTicks
		if m.rng.IntN(2) == 0 {
			at++
		}
		m.print(i, at, volume)
		b.openInterest += m.rng.Int64N(2*volume+1) - volume
		if b.openInterest < 0 {
			b.openInterest = 0
		}
	}
	m.Quote(i, nowNs, tick)
}

// print records a trade of volume lots at priceTicks in instrument i's
// statistics (last, volume, amount, open, high, low).
func (m *Market) print(i int, priceTicks, volume int64) {
	b := &m.books[i]
	in := &m.instruments[i]
	b.lastTicks = priceTicks
	b.volume += volume
	b.amount += m.price(i, priceTicks) * float64(volume*in.VolumeMultiple)
	if !b.traded {
		b.traded = true
		b.openTicks, b.highTicks, b.lowTicks = priceTicks, priceTicks, priceTicks
	}
	b.highTicks = max(b.highTicks, priceTicks)
	b.lowTicks = min(b.lowTicks, priceTicks)
}

// Quote writes instrument i's current quote into tick, stamped nowNs.
// Unknown close and settlement are NaN (DIFF renders them as "-").
func (m *Market) Quote(i int, nowNs int64, tick *schema.Tick) {
	b := &m.books[i]
	in := &m.instruments[i]
	*tick = schema.Tick{
		InstrumentID:    in.InstrumentID,
		Datetime:        nowNs,
		LastPrice:       m.price(i, b.lastTicks),
		Volume:          b.volume,
		Amount:          b.amount,
		OpenInterest:    b.openInterest,
		PreOpenInterest: b.preOI,
		PreClose:        m.price(i, b.preCloseTicks),
		PreSettlement:   m.price(i, b.preSettleTicks),
		Close:           math.NaN(),
		Settlement:      math.NaN(),
		Open:            math.NaN(),
		Highest:         math.NaN(),
		Lowest:          math.NaN(),
		Average:         math.NaN(),
	}
	if b.traded {
		tick.Open = m.price(i, b.openTicks)
		tick.Highest = m.price(i, b.highTicks)
		tick.Lowest = m.price(i, b.lowTicks)
		tick.Average = b.amount / float64(b.volume*in.VolumeMultiple)
	}
	bid := func(l int) float64 { return m.price(i, b.bidTicks-int64(l)) }
	ask := func(l int) float64 { return m.price(i, b.bidTicks+1+int64(l)) }
	tick.BidPrice1, tick.BidVolume1, tick.AskPrice1, tick.AskVolume1 = bid(0), b.bidVolume[0], ask(0), b.askVolume[0]
	tick.BidPrice2, tick.BidVolume2, tick.AskPrice2, tick.AskVolume2 = bid(1), b.bidVolume[1], ask(1), b.askVolume[1]
	tick.BidPrice3, tick.BidVolume3, tick.AskPrice3, tick.AskVolume3 = bid(2), b.bidVolume[2], ask(2), b.askVolume[2]
	tick.BidPrice4, tick.BidVolume4, tick.AskPrice4, tick.AskVolume4 = bid(3), b.bidVolume[3], ask(3), b.askVolume[3]
	tick.BidPrice5, tick.BidVolume5, tick.AskPrice5, tick.AskVolume5 = bid(4), b.bidVolume[4], ask(4), b.askVolume[4]
}

// Last is instrument i's last traded price.
func (m *Market) Last(i int) float64 { return m.price(i, m.books[i].lastTicks) }

// Take fills up to volume lots of an aggressive order on instrument i
// against the simulated book: a buy lifts asks priced at or below
// limitPrice, a sell hits bids at or above it, best level first. Each level
// traded calls fill with its price and volume; the liquidity taken leaves
// the book and the trades count in the market's statistics. Take returns
// the volume filled.
func (m *Market) Take(i int, dir schema.Direction, limitPrice float64, volume int64, fill func(price float64, volume int64)) int64 {
	b := &m.books[i]
	in := &m.instruments[i]
	limit := toTicks(limitPrice, in.PriceTick)
	filled := int64(0)
	for l := 0; l < BookLevels && filled < volume; l++ {
		var at int64
		var level *int64
		if dir == schema.DirectionBUY {
			at, level = b.bidTicks+1+int64(l), &b.askVolume[l]
			if at > limit {
				break
			}
		} else {
			at, level = b.bidTicks-int64(l), &b.bidVolume[l]
			if at < limit {
				break
			}
		}
		n := min(*level, volume-filled)
		if n == 0 {
			continue
		}
		*level -= n
		filled += n
		m.print(i, at, n)
		fill(m.price(i, at), n)
	}
	return filled
}

// Available returns how many lots an aggressive order at limitPrice could
// take from instrument i's book right now, without taking them.
func (m *Market) Available(i int, dir schema.Direction, limitPrice float64) int64 {
	b := &m.books[i]
	limit := toTicks(limitPrice, m.instruments[i].PriceTick)
	total := int64(0)
	for l := 0; l < BookLevels; l++ {
		if dir == schema.DirectionBUY {
			if b.bidTicks+1+int64(l) > limit {
				break
			}
			total += b.askVolume[l]
		} else {
			if b.bidTicks-int64(l) < limit {
				break
			}
			total += b.bidVolume[l]
		}
	}
	return total
}

// BestOpposite is the price a market order in direction dir would pay
// through all five levels: the fifth ask for a buy, the fifth bid for a sell.
func (m *Market) BestOpposite(i int, dir schema.Direction, levels int) float64 {
	b := &m.books[i]
	levels = max(1, min(levels, BookLevels))
	if dir == schema.DirectionBUY {
		return m.price(i, b.bidTicks+int64(levels))
	}
	return m.price(i, b.bidTicks-int64(levels-1))
}

func (m *Market) price(i int, ticks int64) float64 {
	in := &m.instruments[i]
	return roundDecimals(float64(ticks)*in.PriceTick, in.PriceDecs)
}

// toTicks converts a price to whole ticks, rounding to the nearest.
func toTicks(price, tick float64) int64 { return int64(math.Round(price / tick)) }

// roundToTick rounds price to the nearest multiple of tick.
func roundToTick(price, tick float64) float64 {
	return float64(toTicks(price, tick)) * tick
}

// roundDecimals removes the binary noise of ticks*tick (0.005*21601 and the
// like) by rounding to the instrument's decimals.
func roundDecimals(v float64, decs int32) float64 {
	scale := math.Pow10(int(decs))
	return math.Round(v*scale) / scale
}

// onTick reports whether price is a whole number of ticks.
func onTick(price, tick float64) bool {
	return math.Abs(price/tick-math.Round(price/tick)) < 1e-6
}
