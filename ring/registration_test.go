package ring

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// Subscribers join and leave a small reliable ring while the publisher
// streams into it flat out: each one must read intact, gapless frames from
// its start position on, and the publisher must never fail. (The window the
// epoch handshake closes — a limit computed between a joiner's read of the
// published position and its slot becoming active — is too narrow to hit on
// demand; this test guards the common path around it.)
func TestSubscribersJoinWhilePublishing(t *testing.T) {
	o := testOptions(t)
	pub, err := CreateLog(o, "j", LogConfig{CapacityBytes: 4096, Mode: Reliable}, PublisherOptions{BackPressureTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	done := make(chan error, 1)
	go func() {
		defer pub.Close()
		for seq := uint64(0); !stop.Load(); seq++ {
			if _, err := publishTestFrame(pub, testFrameSize(seq, 40, 300)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	joins := 200
	if testing.Short() {
		joins = 50
	}
	for j := 0; j < joins; j++ {
		sub, err := OpenSubscriber(o, "j", SubscriberOptions{Wait: WaitStrategy{Kind: SpinYield}})
		if err != nil {
			t.Fatalf("join %d: %v", j, err)
		}
		var last uint64
		got := 0
		for got < 30 {
			n, err := sub.Poll(func(f []byte, pos uint64) {
				seq, err := verifyFrame(f)
				if err != nil {
					t.Fatalf("join %d frame %d at %d: %v", j, got, pos, err)
				}
				if got > 0 && seq != last+1 {
					t.Fatalf("join %d: seq %d after %d", j, seq, last)
				}
				last = seq
				got++
			}, 30-got)
			if err != nil {
				t.Fatalf("join %d: %v", j, err)
			}
			if n == 0 {
				if err := sub.Wait(5 * time.Second); err != nil && !errors.Is(err, ErrTimeout) {
					t.Fatalf("join %d: %v", j, err)
				}
			}
		}
		sub.Close()
	}
	stop.Store(true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
