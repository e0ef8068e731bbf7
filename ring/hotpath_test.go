package ring

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/shm"
)

// The publish and poll paths must not allocate.
func TestPublishAndPollDoNotAllocate(t *testing.T) {
	for _, c := range []struct {
		mode   Mode
		demote bool
	}{{Reliable, false}, {Lossy, false}, {Reliable, true}} {
		mode := c.mode
		t.Run(fmt.Sprintf("%v/demote=%v", mode, c.demote), func(t *testing.T) {
			o := testOptions(t)
			pub, err := CreateLog(o, "a", LogConfig{CapacityBytes: 1 << 16, Mode: mode}, PublisherOptions{DemoteCommitted: c.demote})
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			sub, err := OpenSubscriber(o, "a", SubscriberOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			frame := make([]byte, 64)
			schema.EncodeHeader(frame, schema.Header{Length: 64, Type: testFrameType})
			var got int
			h := func(f []byte, pos uint64) { got += len(f) }
			sizes := []int{64, 100, 200}
			claims := make([]Claim, 3)
			allocs := testing.AllocsPerRun(2000, func() {
				c, err := pub.Claim(64, testFrameType, 0)
				if err != nil {
					t.Fatal(err)
				}
				pub.Commit(c)
				if _, err := pub.Offer(frame); err != nil {
					t.Fatal(err)
				}
				if err := pub.ClaimBatch(sizes, testFrameType, 0, claims); err != nil {
					t.Fatal(err)
				}
				pub.CommitBatch(claims)
				if _, err := sub.Poll(h, 16); err != nil {
					t.Fatal(err)
				}
				if f, _, err := sub.Next(); err != nil || f != nil {
					t.Fatalf("Next after a full poll: %v %v", f, err)
				}
			})
			if allocs != 0 {
				t.Fatalf("%v allocations per publish+poll round", allocs)
			}
			if got == 0 {
				t.Fatal("nothing received")
			}
		})
	}
}

func TestLastValueGetAndPutDoNotAllocate(t *testing.T) {
	o := testOptions(t)
	w, err := CreateLastValue(o, "lv", LastValueConfig{Slots: 16, MaxValueBytes: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := OpenLastValue(o, "lv")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	v := make([]byte, 256)
	buf := make([]byte, 256)
	w.Put("ETH-USD", v)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := w.Put("ETH-USD", v); err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.Get("ETH-USD", buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per put+get", allocs)
	}
}

// With nobody parked the publisher makes no futex call: the data futex word
// (bumped before every FUTEX_WAKE) must not move. With a parked subscriber
// it must, and the subscriber must wake.
func TestPublisherWakesOnlyWhenSomeoneIsParked(t *testing.T) {
	o := testOptions(t)
	pub, err := CreateLog(o, "w", LogConfig{CapacityBytes: 1 << 16, Mode: Reliable}, PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sub, err := OpenSubscriber(o, "w", SubscriberOptions{Wait: WaitStrategy{Kind: SpinPark, SpinIterations: 10, YieldIterations: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	futex := pub.log.u32(ctlDataFutex)
	before := atomic.LoadUint32(futex)
	for i := 0; i < 1000; i++ {
		publishTestFrame(pub, 64)
	}
	if atomic.LoadUint32(futex) != before {
		t.Fatal("publisher bumped the futex word with nobody parked")
	}
	for {
		n, _ := sub.Poll(func([]byte, uint64) {}, 1000)
		if n == 0 {
			break
		}
	}
	woke := make(chan error, 1)
	go func() { woke <- sub.Wait(5 * time.Second) }()
	waitFor(t, "subscriber parked", 5*time.Second, func() bool { return atomic.LoadUint32(pub.log.u32(ctlDataParked)) == 1 })
	publishTestFrame(pub, 64)
	select {
	case err := <-woke:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("parked subscriber not woken")
	}
	if atomic.LoadUint32(futex) == before {
		t.Fatal("publisher did not bump the futex word for a parked subscriber")
	}
}

func TestWaitStrategiesTimeOutAndSeeData(t *testing.T) {
	for _, k := range []WaitKind{BusySpin, SpinYield, SpinPark} {
		t.Run(k.String(), func(t *testing.T) {
			o := testOptions(t)
			pub, err := CreateLog(o, "w", LogConfig{CapacityBytes: 1 << 12, Mode: Lossy}, PublisherOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			sub, err := OpenSubscriber(o, "w", SubscriberOptions{Wait: WaitStrategy{Kind: k}})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			start := time.Now()
			if err := sub.Wait(30 * time.Millisecond); !errors.Is(err, ErrTimeout) {
				t.Fatalf("wait on an empty ring: %v", err)
			}
			if el := time.Since(start); el < 25*time.Millisecond || el > 2*time.Second {
				t.Fatalf("30 ms wait took %v", el)
			}
			published := make(chan struct{})
			go func() {
				defer close(published)
				time.Sleep(5 * time.Millisecond)
				publishTestFrame(pub, 64)
			}()
			err = sub.Wait(5 * time.Second)
			<-published // the publisher is used by one goroutine at a time
			if err != nil {
				t.Fatal(err)
			}
			if f, _, err := sub.Next(); err != nil || f == nil {
				t.Fatalf("after Wait: %v %v", f, err)
			}
		})
	}
}

func TestWaitReportsClosedPublisher(t *testing.T) {
	o := testOptions(t)
	pub, err := CreateLog(o, "c", LogConfig{CapacityBytes: 1 << 12, Mode: Reliable}, PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := OpenSubscriber(o, "c", SubscriberOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	pub.Close()
	if err := sub.Wait(5 * time.Second); !errors.Is(err, ErrPublisherGone) {
		t.Fatalf("wait after the publisher closed: %v", err)
	}
	if _, err := OpenPublisher(o, "c", PublisherOptions{}); err != nil {
		t.Fatalf("re-attach after a clean close: %v", err)
	}
}

func TestSecondPublisherIsRefused(t *testing.T) {
	o := testOptions(t)
	pub, err := CreateLog(o, "x", LogConfig{CapacityBytes: 1 << 12, Mode: Reliable}, PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if _, err := OpenPublisher(o, "x", PublisherOptions{}); !errors.Is(err, ErrPublisherExists) {
		t.Fatalf("second publisher: %v", err)
	}
}

// A live subscriber that stops polling is evicted once its heartbeat is
// older than SubscriberTimeout; it learns so on its next poll.
func TestStaleSubscriberIsEvicted(t *testing.T) {
	o := testOptions(t)
	pub, err := CreateLog(o, "e", LogConfig{CapacityBytes: 1 << 12, Mode: Reliable},
		PublisherOptions{BackPressureTimeout: 5 * time.Second, SubscriberTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sub, err := OpenSubscriber(o, "e", SubscriberOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	start := time.Now()
	for i := 0; i < 100; i++ { // 100 x 64 B > 4 KiB: must pass the stalled subscriber
		if _, err := publishTestFrame(pub, 64); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 40*time.Millisecond {
		t.Fatalf("evicted after %v, before the 50 ms timeout", el)
	}
	if _, err := sub.Poll(func([]byte, uint64) {}, 10); !errors.Is(err, ErrEvicted) {
		t.Fatalf("poll after eviction: %v", err)
	}
	subs := pub.Log().Subscribers()
	if len(subs) != 1 || subs[0].Status != SlotEvicted || pub.Log().Publisher().Evictions != 1 {
		t.Fatalf("table after eviction: %+v", subs)
	}
}

func TestDurableAndReplicatedPositions(t *testing.T) {
	o := testOptions(t)
	pub, err := CreateLog(o, "d", LogConfig{CapacityBytes: 1 << 12, Mode: Lossy}, PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	appliance, err := OpenLog(o, "d")
	if err != nil {
		t.Fatal(err)
	}
	defer appliance.Close()
	publishTestFrame(pub, 100)
	end := pub.Position()
	if err := appliance.AdvanceDurable(end + 8); !errors.Is(err, ErrPositionFuture) {
		t.Fatalf("durable beyond published: %v", err)
	}
	if err := pub.Log().WaitDurable(end, 20*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("wait for a position never made durable: %v", err)
	}
	for _, c := range []struct {
		advance func(uint64) error
		wait    func(uint64, time.Duration) error
		read    func() uint64
	}{
		{appliance.AdvanceDurable, pub.Log().WaitDurable, appliance.Durable},
		{appliance.AdvanceReplicated, pub.Log().WaitReplicated, appliance.Replicated},
	} {
		done := make(chan error, 1)
		go func() { done <- c.wait(end, 5*time.Second) }()
		time.Sleep(30 * time.Millisecond) // let the waiter park
		if err := c.advance(end); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("waiter not woken")
		}
		c.advance(8) // never lowers
		if c.read() != end {
			t.Fatalf("position %d after a lower advance, want %d", c.read(), end)
		}
	}
}

func TestHostileLogSegments(t *testing.T) {
	o := testOptions(t)
	pub, err := CreateLog(o, "h", LogConfig{CapacityBytes: 1 << 12, Mode: Lossy}, PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pub.Close()
	w, err := CreateLastValue(o, "h", LastValueConfig{})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, err := OpenLog(o, "missing"); err == nil {
		t.Fatal("opened a missing topic")
	}
	// A last-value file renamed to .ring is another kind.
	if err := copyFile(o, "h.lvc", "lv.ring"); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenLog(o, "lv"); !errors.Is(err, shm.ErrKind) {
		t.Fatalf("last-value segment as a log: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	o := testOptions(t)
	for _, c := range []LogConfig{
		{CapacityBytes: 1000, Mode: Reliable},
		{CapacityBytes: 512, Mode: Reliable},
		{CapacityBytes: 1 << 12, Mode: 3},
		{CapacityBytes: 1 << 12, Mode: Lossy, MaxFrameBytes: 2048},
		{CapacityBytes: 1 << 12, Mode: Lossy, MaxFrameBytes: 10},
		{CapacityBytes: 1 << 12, Mode: Lossy, Subscribers: MaxSubscribers + 1},
	} {
		if _, err := CreateLog(o, "bad", c, PublisherOptions{}); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("config %+v: %v", c, err)
		}
	}
	pub, err := CreateLog(o, "ok", LogConfig{CapacityBytes: 1 << 12, Mode: Lossy, MaxFrameBytes: 256}, PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if _, err := pub.Claim(257, testFrameType, 0); !errors.Is(err, ErrFrameSize) {
		t.Fatalf("oversized claim: %v", err)
	}
	if _, err := pub.Claim(23, testFrameType, 0); !errors.Is(err, ErrFrameSize) {
		t.Fatalf("undersized claim: %v", err)
	}
	if _, err := pub.Claim(64, schema.TypePadding, 0); !errors.Is(err, ErrFrameSize) {
		t.Fatalf("padding-typed claim: %v", err)
	}
	c, _ := pub.Claim(64, testFrameType, 0)
	if _, err := pub.Claim(64, testFrameType, 0); !errors.Is(err, ErrClaimOutstanding) {
		t.Fatalf("second claim: %v", err)
	}
	pub.Commit(c)
	if err := pub.Abort(); !errors.Is(err, ErrNoClaim) {
		t.Fatalf("abort without claim: %v", err)
	}
}
