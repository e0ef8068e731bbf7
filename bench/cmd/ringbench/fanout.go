package main

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tapewire/tapewire/bench/internal/harness"
	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/shm"
)

type fanoutResult struct {
	Received uint64 `json:"received"`
	Lost     uint64 `json:"lost"`
}

func init() {
	// fanout-sub: poll the lossy topic until told to stop.
	childRoles["fanout-sub"] = func(o shm.Options, cpu int, args []string) error {
		ctl, err := openControl(o)
		if err != nil {
			return err
		}
		defer ctl.Close()
		sub, err := ring.OpenSubscriber(o, "fan", ring.SubscriberOptions{Wait: ring.WaitStrategy{Kind: ring.SpinYield, SpinIterations: 200}})
		if err != nil {
			return err
		}
		defer sub.Close()
		var sum uint64
		h := func(f []byte, pos uint64) { sum += uint64(f[len(f)-1]) }
		ready()
		for !stopped(ctl) {
			n, err := sub.Poll(h, 1024)
			if err != nil {
				return err
			}
			if n == 0 {
				if err := sub.Wait(10 * time.Millisecond); err != nil && !isTimeout(err) {
					return err
				}
			}
		}
		lost, _, _ := sub.Loss()
		report(fanoutResult{Received: sub.Frames(), Lost: lost})
		return nil
	}
}

func (w *workloads) fanout() {
	n := w.b.Size(20_000_000, 3_000_000)
	for _, subs := range []int{1, 2, 4} {
		name := fmt.Sprintf("fanout-64B-%dsub", subs)
		if !w.b.Wants(name) {
			continue
		}
		run := func(subscribers int) func(int) (harness.Result, error) {
			return func(repeat int) (harness.Result, error) {
				o, ctl, cleanup, err := newControlBase()
				if err != nil {
					return harness.Result{}, err
				}
				defer cleanup()
				p, err := ring.CreateLog(o, "fan", ring.LogConfig{CapacityBytes: 1 << 20, Mode: ring.Lossy, Subscribers: 8}, ring.PublisherOptions{})
				if err != nil {
					return harness.Result{}, err
				}
				defer p.Close()
				var children []*child
				for i := 0; i < subscribers; i++ {
					c, err := startChild(nil, "fanout-sub", childArgs(o, w.cpuB)...)
					if err != nil {
						for _, c := range children {
							c.kill()
						}
						return harness.Result{}, err
					}
					children = append(children, c)
				}
				release := harness.Pin(w.cpuA)
				pr, err := publishFrames(p, n, 64, 16)
				release()
				atomic.StoreUint32(ctl.Uint32At(ctlStop), 1)
				var received, lost uint64
				for _, c := range children {
					var fr fanoutResult
					if cerr := c.result(&fr); cerr != nil && err == nil {
						err = cerr
					}
					received += fr.Received
					lost += fr.Lost
				}
				if err != nil {
					return harness.Result{}, err
				}
				notes := "publisher alone (lossy 1 MiB ring, batches of 16)"
				if subscribers > 0 {
					notes = fmt.Sprintf("%d lossy subscriber processes sharing CPU %d, publisher on CPU %d: they got %.1f%% of the frames, lost %.1f%% (laps); publish allocs/op %.3f",
						subscribers, w.cpuB, w.cpuA, 100*float64(received)/float64(n*subscribers), 100*float64(lost)/float64(n*subscribers), pr.AllocsPerOp)
				}
				return harness.Result{OpsPerSec: float64(n) / pr.Seconds, BytesPerSec: float64(n*64) / pr.Seconds, AllocsPerOp: pr.AllocsPerOp, Notes: notes}, nil
			}
		}
		w.b.Interleave(name,
			harness.Contender{System: harness.Ours, Run: run(subs)},
			harness.Contender{System: "floor-no-subscribers", Run: run(0)},
		)
	}
}

func isTimeout(err error) bool { return errors.Is(err, ring.ErrTimeout) }
