package sim

import (
	"fmt"

	"github.com/tapewire/tapewire/schema"
)

// instrumentTemplate is the reference data of a real-looking contract; the
// price is where its random walk starts.
type instrumentTemplate struct {
	exchange, code, name string
	volumeMultiple       int64
	priceTick            float64
	priceDecs            int32
	startPrice           float64
	marginPerLot         float64
	commissionPerLot     float64
}

// templates are 20 contracts across China's futures exchanges, with
// multiples, ticks and typical prices of their kind (margins and commissions
// per lot are round figures of the right magnitude, not any exchange's rule).
var templates = []instrumentTemplate{
	{"SHFE", "cu2501", "copper 2501", 5, 10, 0, 74_000, 37_000, 18},
	{"SHFE", "al2501", "aluminium 2501", 5, 5, 0, 20_000, 10_000, 3},
	{"SHFE", "zn2501", "zinc 2501", 5, 5, 0, 24_500, 12_000, 3},
	{"SHFE", "au2502", "gold 2502", 1000, 0.02, 2, 615, 61_500, 10},
	{"SHFE", "ag2502", "silver 2502", 15, 1, 0, 7_600, 11_400, 5},
	{"SHFE", "rb2501", "rebar 2501", 10, 1, 0, 3_300, 3_300, 3},
	{"DCE", "m2501", "soybean meal 2501", 10, 1, 0, 2_900, 2_600, 1.5},
	{"DCE", "i2501", "iron ore 2501", 100, 0.5, 1, 780, 10_000, 12},
	{"DCE", "y2501", "soybean oil 2501", 10, 2, 0, 8_100, 6_500, 2.5},
	{"DCE", "p2501", "palm oil 2501", 10, 2, 0, 9_000, 8_000, 2.5},
	{"DCE", "jm2501", "coking coal 2501", 60, 0.5, 1, 1_300, 12_000, 10},
	{"CZCE", "SR501", "white sugar 501", 10, 1, 0, 5_900, 4_700, 3},
	{"CZCE", "CF501", "cotton 501", 5, 5, 0, 13_800, 6_200, 4.3},
	{"CZCE", "TA501", "PTA 501", 5, 2, 0, 4_800, 2_200, 3},
	{"CZCE", "MA501", "methanol 501", 10, 1, 0, 2_550, 2_300, 2},
	{"INE", "sc2502", "crude oil 2502", 1000, 0.1, 1, 560, 84_000, 20},
	{"CFFEX", "IF2501", "CSI 300 index 2501", 300, 0.2, 1, 3_900, 140_000, 35},
	{"CFFEX", "IC2501", "CSI 500 index 2501", 200, 0.2, 1, 5_800, 140_000, 35},
	{"CFFEX", "T2503", "10-year treasury 2503", 10_000, 0.005, 3, 108, 22_000, 3},
	{"GFEX", "si2502", "industrial silicon 2502", 5, 5, 0, 11_500, 5_200, 3},
}

// MaxInstruments is how many distinct instruments DefaultInstruments can make.
const MaxInstruments = 20

// Price limits are the start price ± this fraction (a daily limit).
const priceLimitFraction = 0.08

// Order volume limits per order, for every simulated instrument.
const (
	maxLimitOrderVolume  = 500
	maxMarketOrderVolume = 100
)

// DefaultInstruments returns the reference data of n simulated instruments
// (1 ≤ n ≤ MaxInstruments), in a fixed order, and their starting prices.
func DefaultInstruments(n int) ([]schema.Instrument, []float64, error) {
	if n < 1 || n > MaxInstruments {
		return nil, nil, fmt.Errorf("simulated instruments: %d requested, must be between 1 and %d", n, MaxInstruments)
	}
	out := make([]schema.Instrument, n)
	prices := make([]float64, n)
	for i, t := range templates[:n] {
		upper := roundToTick(t.startPrice*(1+priceLimitFraction), t.priceTick)
		lower := roundToTick(t.startPrice*(1-priceLimitFraction), t.priceTick)
		out[i] = schema.Instrument{
			InstrumentID:         t.exchange + "." + t.code,
			ExchangeID:           t.exchange,
			Code:                 t.code,
			Name:                 t.name,
			VolumeMultiple:       t.volumeMultiple,
			PriceTick:            t.priceTick,
			PriceDecs:            t.priceDecs,
			Margin:               t.marginPerLot,
			Commission:           t.commissionPerLot,
			UpperLimit:           upper,
			LowerLimit:           lower,
			MaxLimitOrderVolume:  maxLimitOrderVolume,
			MinLimitOrderVolume:  1,
			MaxMarketOrderVolume: maxMarketOrderVolume,
			MinMarketOrderVolume: 1,
			TradingSessions:      dayAndNightSessions,
		}
		prices[i] = roundToTick(t.startPrice, t.priceTick)
	}
	return out, prices, nil
}

// dayAndNightSessions are the usual Chinese futures sessions, in ns after
// local midnight of the trading day (the night session belongs to the next
// trading day, so it is negative).
var dayAndNightSessions = []schema.TradingSession{
	{BeginNs: -3 * hourNs, EndNs: -1 * hourNs},                         // 21:00–23:00 the evening before
	{BeginNs: 9 * hourNs, EndNs: 10*hourNs + 15*minuteNs},              // 09:00–10:15
	{BeginNs: 10*hourNs + 30*minuteNs, EndNs: 11*hourNs + 30*minuteNs}, // 10:30–11:30
	{BeginNs: 13*hourNs + 30*minuteNs, EndNs: 15 * hourNs},             // 13:30–15:00
}

const (
	minuteNs = int64(60e9)
	hourNs   = 60 * minuteNs
)
