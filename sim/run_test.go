package sim

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/shm"
)

func testShm(t *testing.T) shm.Options {
	t.Helper()
	base, err := os.MkdirTemp("/dev/shm", "tapewire-sim-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	return shm.Options{Base: base, Namespace: "sim"}
}

const testCapacity = 1 << 20

// createTopic makes a reliable log topic the way the appliance does and
// lets go of the publisher role so the simulator can take it.
func createTopic(t *testing.T, o shm.Options, name string) {
	t.Helper()
	p, err := ring.CreateLog(o, name, ring.LogConfig{CapacityBytes: testCapacity, Mode: ring.Reliable}, ring.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// collect reads every frame of a subscriber into decoded events until stop
// says enough or the deadline passes.
func collect(t *testing.T, s *ring.Subscriber, deadline time.Time, stop func(ev schema.Event) bool) {
	t.Helper()
	done := false
	for !done {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the simulator's events")
		}
		_, err := s.Poll(func(frame []byte, _ uint64) {
			if done {
				return
			}
			h, err := schema.DecodeHeader(frame)
			if err != nil {
				t.Errorf("bad frame header: %v", err)
				return
			}
			ev, ok := schema.NewEvent(h.Type)
			if !ok {
				t.Errorf("frame of unknown type %v", h.Type)
				return
			}
			if _, err := schema.DecodeEvent(frame, ev); err != nil {
				t.Errorf("simulator published a frame that fails verification: %v", err)
				return
			}
			done = stop(ev)
		}, 64)
		if err != nil && !errors.Is(err, ring.ErrPublisherGone) {
			t.Fatal(err)
		}
		if !done {
			_ = s.Wait(5 * time.Millisecond)
		}
	}
}

// TestRunPublishesMarketAndAnswersRequests runs the simulator against real
// rings: it must publish every instrument's reference data, then ticks, and
// answer an order request from the requests topic with Order, Trade,
// Position and Account events; a malformed request gets an ERROR notify.
func TestRunPublishesMarketAndAnswersRequests(t *testing.T) {
	o := testShm(t)
	createTopic(t, o, "ticks")
	createTopic(t, o, "trades")
	requests, err := ring.CreateLog(o, "requests", ring.LogConfig{CapacityBytes: testCapacity, Mode: ring.Reliable}, ring.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer requests.Close()
	ticks, err := ring.OpenSubscriber(o, "ticks", ring.SubscriberOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ticks.Close()
	trades, err := ring.OpenSubscriber(o, "trades", ring.SubscriberOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer trades.Close()

	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() {
		_, err := Run(ctx, RunConfig{Shm: o, Instruments: 3, TicksPerSecond: 2000, Seed: 11, Log: io.Discard})
		result <- err
	}()
	defer func() {
		cancel()
		if err := <-result; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	deadline := time.Now().Add(20 * time.Second)
	var instruments []string
	var last schema.Tick
	ticksSeen := 0
	collect(t, ticks, deadline, func(ev schema.Event) bool {
		switch v := ev.(type) {
		case *schema.Instrument:
			if ticksSeen > 0 {
				t.Errorf("instrument %s after ticks began", v.InstrumentID)
			}
			instruments = append(instruments, v.InstrumentID)
		case *schema.Tick:
			ticksSeen++
			last = *v
		}
		return ticksSeen >= 50
	})
	if len(instruments) != 3 {
		t.Fatalf("reference data for %v, want 3 instruments first", instruments)
	}

	// A marketable buy for a fresh user fills at once.
	req := schema.OrderRequest{UserID: "trader", OrderID: "1", InstrumentID: last.InstrumentID, Direction: schema.DirectionBUY,
		Offset: schema.OffsetOPEN, Volume: 1, PriceType: schema.PriceTypeANY, TimeCondition: schema.TimeConditionIOC}
	if _, err := offer(requests, &req); err != nil {
		t.Fatal(err)
	}
	bad := make([]byte, schema.HeaderSize+8)
	schema.EncodeHeader(bad, schema.Header{Length: uint32(len(bad)), Type: schema.TypeOrderRequest})
	if _, err := requests.Offer(bad); err != nil {
		t.Fatal(err)
	}
	var gotTrade, gotFinished, gotNotify bool
	collect(t, trades, deadline, func(ev schema.Event) bool {
		switch v := ev.(type) {
		case *schema.Trade:
			gotTrade = v.UserID == "trader" && v.Volume == 1
		case *schema.Order:
			gotFinished = gotFinished || (v.OrderID == "1" && v.Status == schema.OrderStatusFINISHED && v.VolumeLeft == 0)
		case *schema.Notify:
			gotNotify = v.Level == schema.NotifyLevelERROR && v.Code == 400
		}
		return gotTrade && gotFinished && gotNotify
	})
}

func offer(p *ring.Publisher, ev schema.Event) (uint64, error) {
	frame, err := schema.AppendEvent(nil, schema.Header{}, ev)
	if err != nil {
		return 0, err
	}
	return p.Offer(frame)
}

func TestRunConfigLimits(t *testing.T) {
	for _, c := range []RunConfig{
		{TicksPerSecond: -1},
		{TicksPerSecond: MaxTicksPerSecond + 1},
		{TraderOrdersPerSecond: -2},
		{Topics: Topics{Ticks: "t"}},
		{Instruments: MaxInstruments + 1, Shm: shm.Options{Base: "/nonexistent"}},
	} {
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
	// Topics that never appear: a clear error naming the topic, in bounded time.
	o := shm.Options{Base: t.TempDir(), Namespace: "none"}
	start := time.Now()
	_, err := Run(context.Background(), RunConfig{Shm: o, AttachTimeout: 200 * time.Millisecond, Log: io.Discard})
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("missing topics: err %v after %v", err, time.Since(start))
	}
	if want := `"ticks"`; !contains(err.Error(), want) {
		t.Fatalf("error %q does not name the topic %s", err, want)
	}
}

// TestRunReattachesToRecreatedTopics removes and recreates the simulator's
// topics while it runs (what the appliance does when it starts and finds
// the segments gone): the simulator must notice within a few seconds and
// publish reference data and ticks into the new topics.
func TestRunReattachesToRecreatedTopics(t *testing.T) {
	o := testShm(t)
	for _, name := range []string{"ticks", "trades", "requests"} {
		createTopic(t, o, name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	type outcome struct {
		st  Stats
		err error
	}
	result := make(chan outcome, 1)
	go func() {
		st, err := Run(ctx, RunConfig{Shm: o, Instruments: 2, TicksPerSecond: 500, Seed: 5, Log: io.Discard})
		result <- outcome{st, err}
	}()

	old, err := ring.OpenSubscriber(o, "ticks", ring.SubscriberOptions{Observer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	deadline := time.Now().Add(20 * time.Second)
	collect(t, old, deadline, func(ev schema.Event) bool { _, ok := ev.(*schema.Tick); return ok })

	for _, name := range []string{"ticks", "trades", "requests"} {
		if err := shm.Remove(o, name+ring.LogSuffix); err != nil {
			t.Fatal(err)
		}
		createTopic(t, o, name)
	}
	// From the first frame: the simulator may reattach before this opens.
	fresh, err := ring.OpenSubscriber(o, "ticks", ring.SubscriberOptions{Observer: true, Resume: true, From: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	instruments, ticks := 0, 0
	collect(t, fresh, deadline, func(ev schema.Event) bool {
		switch ev.(type) {
		case *schema.Instrument:
			instruments++
		case *schema.Tick:
			ticks++
		}
		return instruments == 2 && ticks >= 10
	})

	cancel()
	out := <-result
	if out.err != nil {
		t.Fatalf("Run: %v", out.err)
	}
	if out.st.Reattached != 1 {
		t.Fatalf("Reattached = %d, want 1", out.st.Reattached)
	}
}
