package ring

import (
	"errors"
	"testing"
	"time"
)

func TestPublishSubscribeInProcess(t *testing.T) {
	for _, mode := range []Mode{Reliable, Lossy} {
		t.Run(mode.String(), func(t *testing.T) {
			o := testOptions(t)
			pub, err := CreateLog(o, "t", LogConfig{CapacityBytes: 4096, Mode: mode}, PublisherOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			sub, err := OpenSubscriber(o, "t", SubscriberOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			const frames = 5000
			next := uint64(0)
			for seq := uint64(0); seq < frames; seq++ {
				if _, err := publishTestFrame(pub, testFrameSize(seq, 24+8, 300)); err != nil {
					t.Fatal(err)
				}
				_, err := sub.Poll(func(f []byte, pos uint64) {
					s, err := verifyFrame(f)
					if err != nil || s != next {
						t.Fatalf("frame %d at %d: seq %d, %v", next, pos, s, err)
					}
					next++
				}, 100)
				if err != nil {
					t.Fatal(err)
				}
			}
			if next != frames {
				t.Fatalf("received %d of %d", next, frames)
			}
			if lf, _, _ := sub.Loss(); lf != 0 {
				t.Fatalf("loss %d with a subscriber that keeps up", lf)
			}
		})
	}
}

func TestReliablePublisherReportsBackPressure(t *testing.T) {
	o := testOptions(t)
	pub, err := CreateLog(o, "bp", LogConfig{CapacityBytes: 4096, Mode: Reliable}, PublisherOptions{BackPressureTimeout: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sub, err := OpenSubscriber(o, "bp", SubscriberOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	n := 0
	for ; n < 1000; n++ {
		if _, err = publishTestFrame(pub, 256); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrBackPressure) {
		t.Fatalf("after %d frames: %v, want ErrBackPressure", n, err)
	}
	if n*256 > 4096 || n < 4096/256-2 {
		t.Fatalf("back-pressure after %d frames of 256 B in a 4 KiB ring", n)
	}
	got := 0
	sub.Poll(func(f []byte, pos uint64) { got++ }, 1000)
	if got != n {
		t.Fatalf("subscriber got %d frames, publisher committed %d", got, n)
	}
	if _, err := publishTestFrame(pub, 256); err != nil {
		t.Fatalf("after the subscriber caught up: %v", err)
	}
	info := pub.Log().Publisher()
	if info.BackPressureErr != 1 || info.State != PublisherLive {
		t.Fatalf("publisher record %+v", info)
	}
}

func TestLossySubscriberCountsExactLoss(t *testing.T) {
	o := testOptions(t)
	pub, err := CreateLog(o, "lossy", LogConfig{CapacityBytes: 4096, Mode: Lossy}, PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sub, err := OpenSubscriber(o, "lossy", SubscriberOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var seen []uint64
	h := func(f []byte, pos uint64) {
		s, err := verifyFrame(f)
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, s)
	}
	const total = 20000
	for seq := uint64(0); seq < total; seq++ {
		if _, err := publishTestFrame(pub, testFrameSize(seq, 32, 200)); err != nil {
			t.Fatal(err)
		}
		if seq%97 == 0 { // poll rarely: get lapped many times
			if _, err := sub.Poll(h, 3); err != nil {
				t.Fatal(err)
			}
		}
	}
	for {
		n, err := sub.Poll(h, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	lost, _, laps := sub.Loss()
	if laps == 0 || lost == 0 {
		t.Fatalf("expected laps and loss, got laps %d loss %d", laps, lost)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] <= seen[i-1] {
			t.Fatalf("out of order: %d after %d", seen[i], seen[i-1])
		}
	}
	if first, last := seen[0], seen[len(seen)-1]; uint64(len(seen))+lost != last-first+1 || last != total-1 {
		t.Fatalf("seen %d (first %d last %d) + lost %d != %d", len(seen), first, last, lost, last-first+1)
	}
}

func TestIteratorAndResume(t *testing.T) {
	o := testOptions(t)
	pub, err := CreateLog(o, "it", LogConfig{CapacityBytes: 1 << 16, Mode: Reliable}, PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sub, err := OpenSubscriber(o, "it", SubscriberOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(0); seq < 100; seq++ {
		publishTestFrame(pub, 64)
	}
	var resumeAt uint64
	for i := 0; i < 40; i++ {
		f, _, err := sub.Next()
		if err != nil || f == nil {
			t.Fatalf("Next %d: %v", i, err)
		}
		if s, err := verifyFrame(f); err != nil || s != uint64(i) {
			t.Fatalf("Next %d: seq %d %v", i, s, err)
		}
	}
	resumeAt = sub.Position() // after the 40th frame
	sub.Close()
	again, err := OpenSubscriber(o, "it", SubscriberOptions{Resume: true, From: resumeAt})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	f, _, err := again.Next()
	if s, _ := verifyFrame(f); err != nil || s != 40 {
		t.Fatalf("resumed at seq %d, %v; want 40", s, err)
	}
	if _, err := OpenSubscriber(o, "it", SubscriberOptions{Resume: true, From: pub.Position() + 8}); !errors.Is(err, ErrPositionFuture) {
		t.Fatalf("resume from the future: %v", err)
	}
}
