package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tapewire/tapewire/bench/internal/harness"
	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/schema"
)

// roundTrip measures a ping-pong over two non-durable reliable topics (one
// publisher and one subscriber goroutine per side) for d, while a producer
// loads the durable topic at full speed (ingest) or while the storage
// tenant idles.
func (e *env) roundTrip(ingest bool, d time.Duration) (harness.Result, error) {
	np, err := e.startNodeProcess()
	if err != nil {
		return harness.Result{}, err
	}
	defer np.stop()
	o := shmOf(np.cfg)
	var wg sync.WaitGroup
	if ingest {
		gen := harness.Child("loadgen", "-lg-base", o.Base, "-lg-namespace", o.Namespace)
		gen.Stdout = nil
		if err := gen.Start(); err != nil {
			return harness.Result{}, err
		}
		defer func() { _ = gen.Process.Signal(syscall.SIGTERM); _ = gen.Wait() }()
		time.Sleep(300 * time.Millisecond)
	}
	pingPub, err := ring.OpenPublisher(o, "ping", ring.PublisherOptions{})
	if err != nil {
		return harness.Result{}, err
	}
	defer pingPub.Close()
	pongPub, err := ring.OpenPublisher(o, "pong", ring.PublisherOptions{})
	if err != nil {
		return harness.Result{}, err
	}
	defer pongPub.Close()
	pingSub, err := ring.OpenSubscriber(o, "ping", ring.SubscriberOptions{})
	if err != nil {
		return harness.Result{}, err
	}
	defer pingSub.Close()
	pongSub, err := ring.OpenSubscriber(o, "pong", ring.SubscriberOptions{})
	if err != nil {
		return harness.Result{}, err
	}
	defer pongSub.Close()
	frame, err := schema.AppendEvent(nil, schema.Header{}, &schema.Heartbeat{Source: "ping", IntervalNs: 1})
	if err != nil {
		return harness.Result{}, err
	}
	var stop atomic.Bool
	var echoErr error
	wg.Add(1)
	go func() { // the echo side
		defer wg.Done()
		echo := func(f []byte, _ uint64) {
			if _, err := pongPub.Offer(f); err != nil && echoErr == nil {
				echoErr = err
			}
		}
		for !stop.Load() {
			if err := pingSub.Wait(50 * time.Millisecond); err != nil {
				continue
			}
			if _, err := pingSub.Poll(echo, 16); err != nil {
				echoErr = err
				return
			}
		}
	}()
	h := harness.NewHistogram()
	got := 0
	count := func([]byte, uint64) { got++ }
	start := time.Now()
	ops := int64(0)
	for time.Since(start) < d {
		t0 := time.Now()
		if _, err := pingPub.Offer(frame); err != nil {
			stop.Store(true)
			return harness.Result{}, err
		}
		for got == 0 {
			if err := pongSub.Wait(time.Second); err != nil {
				stop.Store(true)
				return harness.Result{}, fmt.Errorf("no pong: %w", err)
			}
			if _, err := pongSub.Poll(count, 1); err != nil {
				stop.Store(true)
				return harness.Result{}, err
			}
		}
		got = 0
		h.Record(int64(time.Since(t0)))
		ops++
	}
	elapsed := time.Since(start)
	stop.Store(true)
	wg.Wait()
	if echoErr != nil {
		return harness.Result{}, echoErr
	}
	r := harness.Result{OpsPerSec: float64(ops) / elapsed.Seconds()}
	h.Fill(&r)
	if ingest {
		r.Notes = "closed-loop ping-pong over two reliable topics while a producer process loads the durable topic at full speed (appliance, producer and ping-pong processes share 2 vCPUs)"
	} else {
		r.Notes = "closed-loop ping-pong over two reliable topics, storage tenant idle"
	}
	return r, nil
}
