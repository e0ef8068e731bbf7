package main

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/tapewire/tapewire/bench/internal/harness"
	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/shm"
)

// parkAtOnce parks on the futex without spinning or yielding first.
var parkAtOnce = ring.WaitStrategy{Kind: ring.SpinPark, SpinIterations: -1, YieldIterations: -1}

func init() {
	// futex-pong: rounds: raw futex ping-pong on the control word.
	childRoles["futex-pong"] = func(o shm.Options, cpu int, args []string) error {
		rounds := argInt(args, 0)
		ctl, err := openControl(o)
		if err != nil {
			return err
		}
		defer ctl.Close()
		word, parked := ctl.Uint32At(ctlWord), ctl.Uint32At(ctlParked)
		ready()
		for i := uint32(0); i < uint32(rounds); i++ {
			atomic.StoreUint32(parked, 1)
			for atomic.LoadUint32(word) != 2*i+1 {
				if _, err := shm.FutexWait(word, 2*i, 0); err != nil {
					return err
				}
			}
			atomic.StoreUint32(parked, 0)
			atomic.StoreUint32(word, 2*i+2)
			if _, err := shm.FutexWake(word, 1); err != nil {
				return err
			}
		}
		report(struct{}{})
		return nil
	}
}

func (w *workloads) wakeup() {
	const name = "wakeup-parked-rtt"
	if !w.b.Wants(name) {
		return
	}
	rounds := w.b.Size(20_000, 3_000)
	warm := rounds / 10
	total := warm + rounds
	tapewire := func(repeat int) (harness.Result, error) {
		o, cleanup, err := newBase()
		if err != nil {
			return harness.Result{}, err
		}
		defer cleanup()
		ping, sub, err := pingPongTopics(o, parkAtOnce, ring.PublisherOptions{})
		if err != nil {
			return harness.Result{}, err
		}
		defer ping.Close()
		defer sub.Close()
		c, err := startChild(nil, "tw-pong", childArgs(o, w.cpuB, total, 1, 0)...)
		if err != nil {
			return harness.Result{}, err
		}
		pingLog := ping.Log()
		var sum uint64
		r, err := timedRounds(w.cpuA, warm, rounds,
			func() { // untimed: until the ponger sleeps in the kernel
				for pingLog.ParkedSubscribers() == 0 {
					shm.Pause()
				}
				settle()
			},
			func(i int) error {
				cl, err := ping.Claim(rttFrameBytes, schema.TypeHeartbeat, 0)
				if err != nil {
					return err
				}
				binary.LittleEndian.PutUint64(cl.Payload(), uint64(i))
				ping.Commit(cl)
				for {
					f, _, err := sub.Next()
					if err != nil {
						return err
					}
					if f != nil {
						sum += binary.LittleEndian.Uint64(f[schema.HeaderSize:])
						return nil
					}
					if err := sub.Wait(0); err != nil {
						return err
					}
				}
			})
		if err != nil {
			c.kill()
			return r, err
		}
		if want := uint64(total) * uint64(total-1) / 2; sum != want {
			return r, fmt.Errorf("echoed payload sum %d, want %d", sum, want)
		}
		r.Notes = "both sides park on the data futex at once (no spin, no yield); the pinger sends 30 µs after the ponger parked; each round trip is two wake-ups"
		return r, c.result(&struct{}{})
	}
	floor := func(repeat int) (harness.Result, error) {
		o, ctl, cleanup, err := newControlBase()
		if err != nil {
			return harness.Result{}, err
		}
		defer cleanup()
		word, parked := ctl.Uint32At(ctlWord), ctl.Uint32At(ctlParked)
		c, err := startChild(nil, "futex-pong", childArgs(o, w.cpuB, total)...)
		if err != nil {
			return harness.Result{}, err
		}
		r, err := timedRounds(w.cpuA, warm, rounds,
			func() {
				for atomic.LoadUint32(parked) == 0 {
					shm.Pause()
				}
				settle()
			},
			func(i int) error {
				atomic.StoreUint32(word, 2*uint32(i)+1)
				if _, err := shm.FutexWake(word, 1); err != nil {
					return err
				}
				for atomic.LoadUint32(word) != 2*uint32(i)+2 {
					if _, err := shm.FutexWait(word, 2*uint32(i)+1, 0); err != nil {
						return err
					}
				}
				return nil
			})
		if err != nil {
			c.kill()
			return r, err
		}
		r.Notes = "raw FUTEX_WAIT/FUTEX_WAKE ping-pong between two processes on one shared word; sent 30 µs after the ponger said it sleeps"
		return r, c.result(&struct{}{})
	}
	w.b.Interleave(name,
		harness.Contender{System: harness.Ours, Run: tapewire},
		harness.Contender{System: "floor-futex", Run: floor},
	)
}

// settleNs is how long the pinger waits, untimed, after the ponger said it
// is about to sleep, so that it really is asleep in FUTEX_WAIT (the flag is
// set just before the system call) and each round measures two wake-ups.
const settleNs = 30_000

func settle() {
	start := rdtsc()
	for ticksToNs(rdtsc()-start) < settleNs {
		shm.Pause()
	}
}
