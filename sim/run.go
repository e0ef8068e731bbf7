package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/shm"
)

// Topics names the simulator's log topics. They must exist (the appliance
// creates the topics it declares); the simulator attaches to them.
type Topics struct {
	// Ticks receives Instrument reference data once, then a Tick per step.
	Ticks string
	// Trades receives Order, Trade, Position, Account, Transfer and Notify.
	Trades string
	// Requests is read for OrderRequest, CancelRequest and TransferRequest.
	Requests string
}

// DefaultTopics are the topic names of the appliance's default
// configuration.
var DefaultTopics = Topics{Ticks: "ticks", Trades: "trades", Requests: "requests"}

// RunConfig configures the simulator process.
type RunConfig struct {
	Shm    shm.Options
	Topics Topics
	// Instruments is how many instruments to simulate (1..MaxInstruments,
	// default 20).
	Instruments int
	// TicksPerSecond is the total quote rate over all instruments (default
	// 200, at most MaxTicksPerSecond).
	TicksPerSecond float64
	// Seed makes the market deterministic (0: from the clock).
	Seed uint64
	// Exchange configures the accounts.
	Exchange Config
	// Traders are user ids for which the simulator itself places random
	// orders now and then (so a demo shows fills without a client). Their
	// requests go straight to the exchange, not through Requests.
	Traders []string
	// TraderOrdersPerSecond is each trader's order rate (default 2).
	TraderOrdersPerSecond float64
	// AttachTimeout bounds how long Run waits for the topics to appear and
	// their previous publisher to go (default 10 s).
	AttachTimeout time.Duration
	// Log receives progress lines (default os.Stderr).
	Log io.Writer
}

// Limits of RunConfig.
const (
	MaxTicksPerSecond     = 1_000_000
	maxTraderOrderRate    = 1_000
	defaultTicksPerSecond = 200
	defaultTraderRate     = 2
	defaultAttachTimeout  = 10 * time.Second
	// requestBatch bounds the requests handled between two market steps.
	requestBatch = 256
	// idleWait is how long the loop parks on the request topic when nothing
	// is due; the market's pacing tolerates a timer's ~1 ms overshoot.
	idleWait = 2 * time.Millisecond
	// heartbeatEvery is how often the simulator proves it is alive to the
	// rings' liveness checks.
	heartbeatEvery = 100 * time.Millisecond
	// replacedCheckEvery is how often the simulator checks that its topics'
	// segments are still the ones it maps (a stat each).
	replacedCheckEvery = time.Second
)

func (c *RunConfig) normalize() error {
	if c.Instruments == 0 {
		c.Instruments = MaxInstruments
	}
	if c.TicksPerSecond == 0 {
		c.TicksPerSecond = defaultTicksPerSecond
	}
	if !(c.TicksPerSecond > 0 && c.TicksPerSecond <= MaxTicksPerSecond) {
		return fmt.Errorf("simulator: ticks per second %v must be in (0, %d]", c.TicksPerSecond, MaxTicksPerSecond)
	}
	if c.TraderOrdersPerSecond == 0 {
		c.TraderOrdersPerSecond = defaultTraderRate
	}
	if !(c.TraderOrdersPerSecond > 0 && c.TraderOrdersPerSecond <= maxTraderOrderRate) {
		return fmt.Errorf("simulator: trader orders per second %v must be in (0, %d]", c.TraderOrdersPerSecond, maxTraderOrderRate)
	}
	if c.Topics == (Topics{}) {
		c.Topics = DefaultTopics
	}
	if c.Topics.Ticks == "" || c.Topics.Trades == "" || c.Topics.Requests == "" {
		return fmt.Errorf("simulator: topics %+v: ticks, trades and requests must all be named", c.Topics)
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	if c.AttachTimeout == 0 {
		c.AttachTimeout = defaultAttachTimeout
	}
	if c.Log == nil {
		c.Log = os.Stderr
	}
	return nil
}

// Stats counts what a Run did.
type Stats struct {
	Ticks, Requests, Events, Malformed uint64
	// Reattached counts the times the topics were found recreated and the
	// simulator attached to the new ones.
	Reattached uint64
}

// Run is the simulator process: it attaches to the topics, publishes the
// instruments' reference data, then steps the market at the configured rate
// (one Tick per step), answers requests from the Requests topic through the
// Exchange, and publishes everything the exchange emits on Trades. It
// returns when ctx ends (nil) or a topic fails.
//
// Once a second Run checks that the topics' segments are still the ones it
// maps; when the appliance recreated them (it does when it starts and finds
// them gone, e.g. after a host reboot), Run attaches to the new ones and
// publishes the reference data again (Stats.Reattached counts it).
//
// Nothing is dropped: when a reliable topic is full the publish waits for
// room, and a request that fails verification is answered with an ERROR
// notify on Trades (the appliance quarantines the frame itself).
func Run(ctx context.Context, cfg RunConfig) (Stats, error) {
	var st Stats
	if err := cfg.normalize(); err != nil {
		return st, err
	}
	instruments, prices, err := DefaultInstruments(cfg.Instruments)
	if err != nil {
		return st, err
	}
	market, err := NewMarket(instruments, prices, cfg.Seed)
	if err != nil {
		return st, err
	}
	x := NewExchange(market, cfg.Exchange)

	var t simTopics
	defer t.close()
	p := &simPublisher{ctx: ctx}
	attach := func() error {
		if err := t.attach(ctx, cfg); err != nil {
			return err
		}
		// Reference data first, on every (re)attachment: a recreated
		// topic's readers have not seen it.
		for k := range instruments {
			if err := p.publish(t.ticks, &instruments[k]); err != nil {
				return err
			}
		}
		return nil
	}
	if err := attach(); err != nil {
		return st, err
	}
	fmt.Fprintf(cfg.Log, "simulator: %d instruments at %.0f ticks/s on %q, trades on %q, requests from %q, traders %v\n",
		len(instruments), cfg.TicksPerSecond, cfg.Topics.Ticks, cfg.Topics.Trades, cfg.Topics.Requests, cfg.Traders)

	emit := func(ev schema.Event) {
		st.Events++
		if p.err == nil {
			p.err = p.publish(t.trades, ev)
		}
	}
	traders := newTraders(cfg, market, x)
	var (
		tick    schema.Tick
		orderRq schema.OrderRequest
		cancel  schema.CancelRequest
		xfer    schema.TransferRequest
		reqErr  error
	)
	handle := func(frame []byte, _ uint64) {
		h, err := schema.DecodeHeader(frame)
		if err != nil {
			reqErr = fmt.Errorf("simulator: request topic %q: %w", cfg.Topics.Requests, err)
			return
		}
		now := time.Now().UnixNano()
		st.Requests++
		switch h.Type {
		case schema.TypeOrderRequest:
			if _, err = schema.DecodeEvent(frame, &orderRq); err == nil {
				x.Submit(&orderRq, now, emit)
			}
		case schema.TypeCancelRequest:
			if _, err = schema.DecodeEvent(frame, &cancel); err == nil {
				x.Cancel(&cancel, now, emit)
			}
		case schema.TypeTransferRequest:
			if _, err = schema.DecodeEvent(frame, &xfer); err == nil {
				x.Transfer(&xfer, now, emit)
			}
		default:
			return // heartbeats and other types are not for the exchange
		}
		if err != nil {
			st.Malformed++
			n := schema.Notify{UserID: "system", Type: schema.NotifyTypeMESSAGE, Level: schema.NotifyLevelERROR, Code: 400,
				Content: fmt.Sprintf("request seq %d on %s rejected: %v", h.Seq, cfg.Topics.Requests, err)}
			emit(&n)
		}
	}

	start := time.Now()
	interval := time.Duration(float64(time.Second) / cfg.TicksPerSecond)
	lastBeat, lastCheck := start, start
	instrument := 0
	for {
		if err := ctx.Err(); err != nil {
			return st, nil
		}
		n, err := t.requests.Poll(handle, requestBatch)
		if err != nil && !errors.Is(err, ring.ErrPublisherGone) {
			return st, fmt.Errorf("simulator: poll %q: %w", cfg.Topics.Requests, err)
		}
		if reqErr != nil {
			return st, reqErr
		}
		now := time.Now()
		due := uint64(now.Sub(start) / interval)
		for ; st.Ticks < due && p.err == nil; st.Ticks++ {
			ns := now.UnixNano()
			market.Step(instrument, ns, &tick)
			if err := p.publish(t.ticks, &tick); err != nil {
				return st, err
			}
			x.OnTick(instrument, ns, emit)
			traders.step(instrument, ns, emit)
			instrument = (instrument + 1) % market.Len()
		}
		if p.err != nil {
			return st, p.err
		}
		if now.Sub(lastBeat) >= heartbeatEvery {
			t.ticks.Heartbeat()
			t.trades.Heartbeat()
			t.requests.Heartbeat()
			lastBeat = now
		}
		if now.Sub(lastCheck) >= replacedCheckEvery {
			lastCheck = now
			replaced, err := t.replaced()
			if err != nil {
				return st, err
			}
			if replaced {
				// The appliance recreated its topics (their segments were
				// removed, e.g. after a host reboot): frames published into
				// the old mappings would reach nobody.
				fmt.Fprintf(cfg.Log, "simulator: topics in %s were recreated; reattaching\n", cfg.Shm.Dir())
				t.close()
				if err := attach(); err != nil {
					return st, err
				}
				st.Reattached++
			}
		}
		if n == 0 && st.Ticks >= due {
			if err := t.requests.Wait(idleWait); err != nil && !errors.Is(err, ring.ErrTimeout) && !errors.Is(err, ring.ErrPublisherGone) {
				return st, fmt.Errorf("simulator: wait on %q: %w", cfg.Topics.Requests, err)
			}
			if errors.Is(err, ring.ErrPublisherGone) {
				// Nobody publishes requests yet: pace on the market alone.
				time.Sleep(idleWait)
			}
		}
	}
}

// simTopics are the simulator's attachments to the rings.
type simTopics struct {
	ticks, trades *ring.Publisher
	requests      *ring.Subscriber
}

// attach opens the three topics, waiting for them as attachPublisher does.
func (t *simTopics) attach(ctx context.Context, cfg RunConfig) error {
	var err error
	if t.ticks, err = attachPublisher(ctx, cfg, cfg.Topics.Ticks); err != nil {
		return err
	}
	if t.trades, err = attachPublisher(ctx, cfg, cfg.Topics.Trades); err != nil {
		return err
	}
	if t.requests, err = ring.OpenSubscriber(cfg.Shm, cfg.Topics.Requests, ring.SubscriberOptions{}); err != nil {
		return fmt.Errorf("simulator: subscribe to %q: %w", cfg.Topics.Requests, err)
	}
	return nil
}

// replaced reports whether any of the topics' segments was removed or
// recreated since it was attached.
func (t *simTopics) replaced() (bool, error) {
	for _, l := range []*ring.Log{t.ticks.Log(), t.trades.Log(), t.requests.Log()} {
		r, err := l.Replaced()
		if err != nil {
			return false, fmt.Errorf("simulator: %w", err)
		}
		if r {
			return true, nil
		}
	}
	return false, nil
}

// close lets go of whatever is attached.
func (t *simTopics) close() {
	if t.ticks != nil {
		t.ticks.Close()
	}
	if t.trades != nil {
		t.trades.Close()
	}
	if t.requests != nil {
		t.requests.Close()
	}
	*t = simTopics{}
}

// attachPublisher opens topic as its publisher, retrying while the topic
// does not exist yet or its previous publisher is still registered, up to
// AttachTimeout.
func attachPublisher(ctx context.Context, cfg RunConfig, topic string) (*ring.Publisher, error) {
	deadline := time.Now().Add(cfg.AttachTimeout)
	for {
		p, err := ring.OpenPublisher(cfg.Shm, topic, ring.PublisherOptions{})
		if err == nil {
			return p, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("simulator: publish on topic %q in %s (waited %s): %w", topic, cfg.Shm.Dir(), cfg.AttachTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// simPublisher writes events into rings, waiting out back-pressure (a
// reliable topic never drops) until the context ends.
type simPublisher struct {
	ctx context.Context
	err error
}

func (s *simPublisher) publish(p *ring.Publisher, ev schema.Event) error {
	size, err := schema.FrameSize(ev)
	if err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	for {
		c, err := p.Claim(size, ev.EventType(), 0)
		if errors.Is(err, ring.ErrBackPressure) {
			if s.ctx.Err() != nil {
				return fmt.Errorf("simulator: topic full at shutdown: %w", err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("simulator: claim %d bytes for %v: %w", size, ev.EventType(), err)
		}
		if _, err := schema.PutPayload(c.Payload(), ev); err != nil {
			_ = p.Abort()
			return fmt.Errorf("simulator: %w", err)
		}
		c.SetPublishNs(time.Now().UnixNano())
		p.Commit(c)
		return nil
	}
}

// traders place random orders for the configured users: mostly near the
// touch, some marketable, some closing what they hold, and cancel what
// rests too long.
type traders struct {
	users    []string
	market   *Market
	x        *Exchange
	rng      *rand.Rand
	perTick  float64 // probability that a trader acts on a given step
	next     int
	alive    map[orderKey]int64 // resting orders and when they were placed
	restNs   int64
	orderReq schema.OrderRequest
}

func newTraders(cfg RunConfig, market *Market, x *Exchange) *traders {
	return &traders{
		users:   cfg.Traders,
		market:  market,
		x:       x,
		rng:     rand.New(rand.NewPCG(cfg.Seed^0x7ade, 17)),
		perTick: cfg.TraderOrdersPerSecond / cfg.TicksPerSecond,
		alive:   make(map[orderKey]int64),
		restNs:  int64(5 * time.Second),
	}
}

func (t *traders) step(i int, nowNs int64, out Emit) {
	if len(t.users) == 0 {
		return
	}
	track := func(ev schema.Event) {
		if o, ok := ev.(*schema.Order); ok {
			key := orderKey{o.UserID, o.OrderID}
			if o.Status == schema.OrderStatusALIVE {
				if _, seen := t.alive[key]; !seen {
					t.alive[key] = nowNs
				}
			} else {
				delete(t.alive, key)
			}
		}
		out(ev)
	}
	for key, placed := range t.alive {
		if nowNs-placed > t.restNs {
			t.x.Cancel(&schema.CancelRequest{UserID: key.user, OrderID: key.orderID}, nowNs, track)
			break // one cancel per step keeps the event stream readable
		}
	}
	for _, user := range t.users {
		if t.rng.Float64() >= t.perTick {
			continue
		}
		in := t.market.Instrument(i)
		var quote schema.Tick
		t.market.Quote(i, nowNs, &quote)
		t.next++
		r := &t.orderReq
		*r = schema.OrderRequest{
			UserID:        user,
			OrderID:       "sim" + strconv.Itoa(t.next),
			InstrumentID:  in.InstrumentID,
			Direction:     schema.Direction(t.rng.IntN(2)),
			Offset:        schema.OffsetOPEN,
			Volume:        1 + t.rng.Int64N(3),
			PriceType:     schema.PriceTypeLIMIT,
			TimeCondition: schema.TimeConditionGFD,
		}
		if p := t.x.accounts[user]; p != nil {
			if pos := p.positions[i]; pos != nil && t.rng.IntN(2) == 0 {
				his, today := closable(pos, schema.DirectionSELL)
				if his+today > 0 {
					r.Direction, r.Offset, r.Volume = schema.DirectionSELL, schema.OffsetCLOSE, min(r.Volume, his+today)
				} else if his, today = closable(pos, schema.DirectionBUY); his+today > 0 {
					r.Direction, r.Offset, r.Volume = schema.DirectionBUY, schema.OffsetCLOSE, min(r.Volume, his+today)
				}
			}
		}
		// From two ticks passive to one tick through the touch.
		ticksAway := float64(t.rng.IntN(4) - 2)
		if r.Direction == schema.DirectionBUY {
			r.LimitPrice = roundDecimals(quote.AskPrice1+ticksAway*in.PriceTick, in.PriceDecs)
		} else {
			r.LimitPrice = roundDecimals(quote.BidPrice1-ticksAway*in.PriceTick, in.PriceDecs)
		}
		t.x.Submit(r, nowNs, track)
	}
}
