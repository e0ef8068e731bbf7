package appliance

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/shm"
)

// LoadGenConfig configures a load generator: a producer of mixed events on
// one log topic, for tests and benchmarks (`appliance loadgen`).
type LoadGenConfig struct {
	Shm   shm.Options
	Topic string
	// RatePerSec is the offered rate (open loop); 0 publishes as fast as
	// the ring takes it.
	RatePerSec float64
	// SizeBytes is the approximate frame size (header included) of each
	// event; the events are padded towards it (at least the event's own
	// size, at most the topic's max frame).
	SizeBytes int
	// Count is how many events to publish (0: until ctx ends).
	Count int64
	// WaitDurable makes every event count as acknowledged only once the
	// ring's durable position passed it; acknowledged sequence numbers are
	// written to AckedLog, one per line, in order.
	WaitDurable bool
	AckedLog    io.Writer
	// Window bounds the events published and not yet durable (WaitDurable
	// only); the publisher waits when it is full. Keep its bytes under the
	// ring capacity so frames are never overwritten before the appliance
	// persists them, even while the appliance restarts.
	Window int
	// Seed varies the events' contents.
	Seed uint64
	// AttachTimeout bounds how long to wait for the topic to exist (and
	// for it to come back after its segment was recreated).
	AttachTimeout time.Duration
	// Log receives notices (reattachments); nil discards them.
	Log io.Writer
}

// LoadGenStats counts what a load generator did.
type LoadGenStats struct {
	Published  int64         `json:"published"`
	Acked      int64         `json:"acked"`
	Abandoned  int64         `json:"abandoned"` // published, never acknowledged: their ring was recreated
	Reattached int64         `json:"reattached"`
	FirstSeq   uint64        `json:"first_seq"`
	LastSeq    uint64        `json:"last_seq"`
	Duration   time.Duration `json:"duration_ns"`
}

// Limits of the load generator.
const (
	loadGenVariants      = 1024 // distinct prebuilt events cycled through
	loadGenDefaultWindow = 256
	loadGenMaxWindow     = 1 << 20
	loadGenWaitSlice     = 100 * time.Millisecond
	loadGenDefaultAttach = 30 * time.Second
	loadGenReplacedEvery = time.Second // between checks that the segment is still the topic's
	loadGenMaxSize       = 1 << 20
)

type inflight struct{ seq, end uint64 }

// RunLoadGen publishes cfg.Count events (or until ctx ends) and returns
// what it did. With WaitDurable it survives the appliance being killed and
// restarted (it waits for the durable position to move again) and the
// topic's segment being recreated (it reattaches to the new one; events
// published into the old one were never acknowledged and are counted as
// abandoned).
func RunLoadGen(ctx context.Context, cfg LoadGenConfig) (LoadGenStats, error) {
	var st LoadGenStats
	if cfg.Window <= 0 {
		cfg.Window = loadGenDefaultWindow
	}
	if cfg.Window > loadGenMaxWindow {
		return st, fmt.Errorf("loadgen: window %d above the limit %d", cfg.Window, loadGenMaxWindow)
	}
	if cfg.SizeBytes < 0 || cfg.SizeBytes > loadGenMaxSize {
		return st, fmt.Errorf("loadgen: size %d bytes outside 0..%d", cfg.SizeBytes, loadGenMaxSize)
	}
	if cfg.RatePerSec < 0 {
		return st, fmt.Errorf("loadgen: rate %v must not be negative", cfg.RatePerSec)
	}
	if cfg.AttachTimeout <= 0 {
		cfg.AttachTimeout = loadGenDefaultAttach
	}
	logf := func(format string, args ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "loadgen: "+format+"\n", args...)
		}
	}
	frames, err := LoadGenFrames(cfg.Seed, cfg.SizeBytes, loadGenVariants)
	if err != nil {
		return st, err
	}
	a, err := attachLoadGen(ctx, cfg)
	if err != nil {
		return st, err
	}
	defer func() { a.pub.Close() }()
	var acked *bufio.Writer
	if cfg.AckedLog != nil {
		acked = bufio.NewWriterSize(cfg.AckedLog, 64<<10)
		defer acked.Flush()
	}
	window := make([]inflight, 0, cfg.Window)
	head := 0
	start := time.Now()
	ackedNow := func() {
		if head == len(window) {
			return
		}
		durable := a.pub.Log().Durable()
		n := 0
		for head < len(window) && window[head].end <= durable {
			if acked != nil {
				var b [24]byte
				acked.Write(strconv.AppendUint(b[:0], window[head].seq, 10))
				acked.WriteByte('\n')
			}
			head++
			n++
		}
		if n > 0 {
			st.Acked += int64(n)
			if acked != nil {
				acked.Flush()
			}
		}
		if head == len(window) {
			window, head = window[:0], 0
		}
	}
	reattach := func() error {
		st.Abandoned += int64(len(window) - head)
		window, head = window[:0], 0
		a.pub.Close()
		logf("topic %s: its segment was recreated; reattaching (%d unacknowledged events abandoned so far)", cfg.Topic, st.Abandoned)
		na, err := attachLoadGen(ctx, cfg)
		if err != nil {
			return err
		}
		a = na
		st.Reattached++
		return nil
	}
	// waitHead waits until the oldest event in the window is durable.
	waitHead := func() error {
		for head < len(window) {
			err := a.pub.Log().WaitDurable(window[head].end, loadGenWaitSlice)
			if err == nil {
				ackedNow()
				return nil
			}
			if !errors.Is(err, ring.ErrTimeout) {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if a.replaced() {
				return reattach()
			}
		}
		return nil
	}
	lastReplacedCheckNs := shm.Nanotime()
	for i := int64(0); cfg.Count == 0 || i < cfg.Count; i++ {
		if ctx.Err() != nil {
			break
		}
		if cfg.RatePerSec > 0 {
			paceUntil(ctx, start.Add(time.Duration(float64(i)/cfg.RatePerSec*float64(time.Second))))
		}
		if cfg.WaitDurable && len(window)-head >= cfg.Window {
			if err := waitHead(); err != nil {
				if ctx.Err() != nil {
					break
				}
				return st, err
			}
		}
		if i%1024 == 0 && shm.Nanotime()-lastReplacedCheckNs > int64(loadGenReplacedEvery) {
			// A producer that never waits would otherwise go on publishing
			// into a segment nobody reads any more.
			lastReplacedCheckNs = shm.Nanotime()
			if a.replaced() {
				if err := reattach(); err != nil {
					return st, err
				}
			}
		}
		frame := frames[i%int64(len(frames))]
		for {
			_, err := a.pub.Offer(frame)
			if err == nil {
				break
			}
			if !errors.Is(err, ring.ErrBackPressure) {
				return st, fmt.Errorf("loadgen: publish event %d: %w", i, err)
			}
			if ctx.Err() != nil {
				break
			}
			if a.replaced() {
				if err := reattach(); err != nil {
					return st, err
				}
			}
		}
		if ctx.Err() != nil {
			break
		}
		seq := a.pub.NextSeq() - 1
		if st.Published == 0 {
			st.FirstSeq = seq
		}
		st.LastSeq = seq
		st.Published++
		if cfg.WaitDurable {
			window = append(window, inflight{seq: seq, end: a.pub.Position()})
			ackedNow()
		}
	}
	if cfg.WaitDurable {
		for head < len(window) && ctx.Err() == nil {
			if err := waitHead(); err != nil {
				if ctx.Err() != nil {
					break
				}
				return st, err
			}
		}
		ackedNow()
	}
	st.Duration = time.Since(start)
	return st, nil
}

// paceUntil waits for t without sleeping on timers for short waits (Go
// timers overshoot sub-millisecond sleeps by about a millisecond).
func paceUntil(ctx context.Context, t time.Time) {
	for {
		d := time.Until(t)
		if d <= 0 || ctx.Err() != nil {
			return
		}
		if d > 2*time.Millisecond {
			time.Sleep(d - time.Millisecond)
			continue
		}
		shm.Yield()
	}
}

// loadGenAttachment is the load generator's publisher.
type loadGenAttachment struct {
	pub *ring.Publisher
}

// replaced reports whether the topic's segment file is gone or is another
// file than the one mapped (the appliance recreated the topic): ring's
// Log.Replaced, a stat and an fstat.
func (a *loadGenAttachment) replaced() bool {
	r, err := a.pub.Log().Replaced()
	return r || err != nil
}

func attachLoadGen(ctx context.Context, cfg LoadGenConfig) (*loadGenAttachment, error) {
	deadline := time.Now().Add(cfg.AttachTimeout)
	for {
		p, err := ring.OpenPublisher(cfg.Shm, cfg.Topic, ring.PublisherOptions{BackPressureTimeout: loadGenWaitSlice})
		if err == nil {
			a := &loadGenAttachment{pub: p}
			if !a.replaced() {
				return a, nil
			}
			p.Close() // the file changed while we opened it: try again
		} else if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, ring.ErrPublisherExists) && !errors.Is(err, shm.ErrInitializing) {
			return nil, fmt.Errorf("loadgen: attach to topic %s: %w", cfg.Topic, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("loadgen: topic %s not available within %v: %v", cfg.Topic, cfg.AttachTimeout, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// LoadGenFrames builds n distinct frames of mixed event types, each padded
// towards sizeBytes through a string field where the type has one. Up to
// 200 bytes the mix is the small trading events (Order, Trade,
// OrderRequest, CancelRequest, Notify, Transfer: 60-200 bytes); above, it
// is market and account state (Tick, Order, Trade, Account, Position:
// 190-400 bytes). Sequence numbers and publish times are left zero (the
// ring assigns them).
func LoadGenFrames(seed uint64, sizeBytes, n int) ([][]byte, error) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([][]byte, 0, n)
	instruments := []string{"SHFE.cu2501", "SHFE.au2502", "DCE.m2501", "CZCE.SR501", "CFFEX.IF2501", "INE.sc2502"}
	small := sizeBytes <= 200
	for i := range n {
		inst := instruments[rng.IntN(len(instruments))]
		exch, _, _ := strings.Cut(inst, ".")
		user := "u" + strconv.Itoa(rng.IntN(50))
		order := "o" + strconv.Itoa(rng.IntN(5000))
		price := 1000 + float64(rng.IntN(100000))/10
		var ev schema.Event
		var pad *string
		kind := i % 6
		if !small {
			kind = 6 + i%5
		}
		switch kind {
		case 0, 6:
			o := &schema.Order{UserID: user, OrderID: order, ExchangeID: exch, InstrumentID: inst, VolumeOrign: 1 + int64(rng.IntN(9)), LimitPrice: price}
			ev, pad = o, &o.LastMsg
		case 1, 7:
			tr := &schema.Trade{UserID: user, TradeID: "t" + strconv.Itoa(i), ExchangeID: exch, InstrumentID: inst, OrderID: order, Volume: 1, Price: price}
			ev, pad = tr, &tr.ExchangeTradeID
		case 2:
			ev = &schema.OrderRequest{UserID: user, OrderID: order, ExchangeID: exch, InstrumentID: inst, Volume: 1 + int64(rng.IntN(9)), LimitPrice: price}
		case 3:
			ev = &schema.CancelRequest{UserID: user, OrderID: order}
		case 4:
			no := &schema.Notify{UserID: user, Code: int32(i)}
			ev, pad = no, &no.Content
		case 5:
			tf := &schema.Transfer{UserID: user, Serial: int64(i), Currency: "CNY", Amount: price}
			ev, pad = tf, &tf.ErrorMsg
		case 8:
			ev = &schema.Tick{InstrumentID: inst, Datetime: int64(i), LastPrice: price, AskPrice1: price + 1, BidPrice1: price - 1, AskVolume1: 3, BidVolume1: 4, Volume: int64(i)}
		case 9:
			ev = &schema.Account{UserID: user, Currency: "CNY", PreBalance: 1e7, StaticBalance: 1e7, Balance: 1e7 + price, Available: 1e7}
		case 10:
			ev = &schema.Position{UserID: user, ExchangeID: exch, InstrumentID: inst, VolumeLong: int64(rng.IntN(20)), LastPrice: price}
		}
		size, err := schema.FrameSize(ev)
		if err != nil {
			return nil, err
		}
		padBytes := 0
		if pad != nil && sizeBytes > size+8 {
			padBytes = min(sizeBytes-size-4, 250)
		}
		var f []byte
		for {
			if pad != nil {
				*pad = strings.Repeat("x", padBytes)
			}
			f, err = schema.AppendEvent(nil, schema.Header{}, ev)
			if err == nil || padBytes == 0 {
				break
			}
			padBytes /= 2 // the field has a smaller max_len: pad less
		}
		if err != nil {
			return nil, fmt.Errorf("loadgen: build event %d (%T) of about %d bytes: %w", i, ev, sizeBytes, err)
		}
		out = append(out, f)
	}
	return out, nil
}
