package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapewire/tapewire/bench/internal/harness"
	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/shm"
)

// publishBatch is the number of frames a throughput publisher claims at once.
const publishBatch = 64

// publishResult is what a publishing child reports.
type publishResult struct {
	Seconds     float64 `json:"seconds"`
	AllocsPerOp float64 `json:"allocs_per_op"`
}

// publishFrames publishes n frames of size bytes in batches, each carrying
// its index, and returns the elapsed time and allocations per frame.
func publishFrames(p *ring.Publisher, n, size, batch int) (publishResult, error) {
	sizes := make([]int, batch)
	for i := range sizes {
		sizes[i] = size
	}
	claims := make([]ring.Claim, batch)
	mallocs := harness.Mallocs()
	start := time.Now()
	for i := 0; i < n; i += batch {
		k := min(batch, n-i)
		if err := p.ClaimBatch(sizes[:k], schema.TypeHeartbeat, 0, claims[:k]); err != nil {
			return publishResult{}, err
		}
		for j := 0; j < k; j++ {
			binary.LittleEndian.PutUint64(claims[j].Payload(), uint64(i+j))
		}
		p.CommitBatch(claims[:k])
	}
	return publishResult{Seconds: time.Since(start).Seconds(), AllocsPerOp: harness.AllocsPerOp(mallocs, int64(n))}, nil
}

// consumeFrames polls n frames, checking that frame i carries i, and returns
// the time from the end of the first poll that got frames to the last frame,
// the frames received in that time, and allocations per frame.
func consumeFrames(sub *ring.Subscriber, n int) (time.Duration, int, float64, error) {
	next := uint64(0)
	var bad error
	h := func(f []byte, pos uint64) {
		if v := binary.LittleEndian.Uint64(f[schema.HeaderSize:]); v != next && bad == nil {
			bad = fmt.Errorf("frame %d carries %d", next, v)
		}
		next++
	}
	for next == 0 {
		if _, err := sub.Poll(h, 4096); err != nil {
			return 0, 0, 0, err
		}
	}
	first := int(next)
	start := time.Now()
	mallocs := harness.Mallocs()
	for next < uint64(n) {
		k, err := sub.Poll(h, 4096)
		if err != nil {
			return 0, 0, 0, err
		}
		if k == 0 {
			shm.Pause()
		}
	}
	timed := n - first
	return time.Since(start), timed, harness.AllocsPerOp(mallocs, int64(timed)), bad
}

func init() {
	// tw-publish: topic frames size: publish to topic and report.
	childRoles["tw-publish"] = func(o shm.Options, cpu int, args []string) error {
		p, err := ring.OpenPublisher(o, args[0], ring.PublisherOptions{BackPressureTimeout: 30 * time.Second})
		if err != nil {
			return err
		}
		defer p.Close()
		ready()
		r, err := publishFrames(p, argInt(args, 1), argInt(args, 2), publishBatch)
		if err != nil {
			return err
		}
		report(r)
		return nil
	}
	// uds-publish: frames size: write frames on fd 3, 64 per write call.
	childRoles["uds-publish"] = func(o shm.Options, cpu int, args []string) error {
		n, size := argInt(args, 0), argInt(args, 1)
		buf := make([]byte, publishBatch*size)
		ready()
		start := time.Now()
		for i := 0; i < n; i += publishBatch {
			k := min(publishBatch, n-i)
			for j := 0; j < k; j++ {
				binary.LittleEndian.PutUint64(buf[j*size:], uint64(i+j))
			}
			for off := 0; off < k*size; {
				m, err := unix.Write(3, buf[off:k*size])
				if err != nil {
					return err
				}
				off += m
			}
		}
		report(publishResult{Seconds: time.Since(start).Seconds()})
		return nil
	}
}

func (w *workloads) throughput() {
	for _, size := range []int{64, 1024} {
		name := "throughput-64B"
		n := w.b.Size(20_000_000, 3_000_000)
		capacity := uint64(1 << 20)
		if size == 1024 {
			name = "throughput-1KiB"
			n = w.b.Size(4_000_000, 600_000)
			capacity = 4 << 20
		}
		if !w.b.Wants(name) {
			continue
		}
		tapewire := func(repeat int) (harness.Result, error) {
			o, cleanup, err := newBase()
			if err != nil {
				return harness.Result{}, err
			}
			defer cleanup()
			p, err := ring.CreateLog(o, "tp", ring.LogConfig{CapacityBytes: capacity, Mode: ring.Reliable}, ring.PublisherOptions{})
			if err != nil {
				return harness.Result{}, err
			}
			p.Close()
			sub, err := ring.OpenSubscriber(o, "tp", ring.SubscriberOptions{Wait: ring.WaitStrategy{Kind: ring.BusySpin}})
			if err != nil {
				return harness.Result{}, err
			}
			defer sub.Close()
			release := harness.Pin(w.cpuA)
			defer release()
			c, err := startChild(nil, "tw-publish", childArgs(o, w.cpuB, "tp", n, size)...)
			if err != nil {
				return harness.Result{}, err
			}
			el, timed, pollAllocs, err := consumeFrames(sub, n)
			if err != nil {
				c.kill()
				return harness.Result{}, err
			}
			var pr publishResult
			if err := c.result(&pr); err != nil {
				return harness.Result{}, err
			}
			waits := sub.Log().Publisher().BackPressureWait
			return harness.Result{
				OpsPerSec: float64(timed) / el.Seconds(), BytesPerSec: float64(timed*size) / el.Seconds(),
				AllocsPerOp: pr.AllocsPerOp + pollAllocs,
				Notes: fmt.Sprintf("reliable %d KiB ring, batches of %d; publisher side %.1f M/s, waited for room %d times; allocs/op publish %.3f poll %.3f",
					capacity>>10, publishBatch, float64(n)/pr.Seconds/1e6, waits, pr.AllocsPerOp, pollAllocs),
			}, nil
		}
		uds := func(repeat int) (harness.Result, error) {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return harness.Result{}, err
			}
			mine := fds[0]
			theirs := os.NewFile(uintptr(fds[1]), "uds")
			defer unix.Close(mine)
			release := harness.Pin(w.cpuA)
			defer release()
			c, err := startChild([]*os.File{theirs}, "uds-publish", childArgs(shm.Options{Base: "-", Namespace: "-"}, w.cpuB, n, size)...)
			theirs.Close()
			if err != nil {
				return harness.Result{}, err
			}
			buf := make([]byte, 1<<20)
			total, got, first := n*size, 0, 0
			var start time.Time
			var check uint64
			for got < total {
				m, err := unix.Read(mine, buf)
				if err != nil || m == 0 {
					c.kill()
					return harness.Result{}, fmt.Errorf("read after %d bytes: %v", got, err)
				}
				if got == 0 {
					start, first = time.Now(), m
				}
				check += uint64(buf[0]) // read what arrived
				got += m
			}
			el := time.Since(start)
			var pr publishResult
			if err := c.result(&pr); err != nil {
				return harness.Result{}, err
			}
			timed := float64(total-first) / float64(size)
			return harness.Result{OpsPerSec: timed / el.Seconds(), BytesPerSec: float64(total-first) / el.Seconds(),
				Notes: fmt.Sprintf("socketpair stream, %d frames per write, 1 MiB reads (check %d)", publishBatch, check%10)}, nil
		}
		w.b.Interleave(name,
			harness.Contender{System: harness.Ours, Run: tapewire},
			harness.Contender{System: "unix-socket", Run: uds},
		)
	}
	w.inprocThroughput()
}

func (w *workloads) inprocThroughput() {
	const name = "throughput-inproc-64B"
	if !w.b.Wants(name) {
		return
	}
	n := w.b.Size(20_000_000, 3_000_000)
	tapewire := func(repeat int) (harness.Result, error) {
		o, cleanup, err := newBase()
		if err != nil {
			return harness.Result{}, err
		}
		defer cleanup()
		p, err := ring.CreateLog(o, "tp", ring.LogConfig{CapacityBytes: 1 << 20, Mode: ring.Reliable}, ring.PublisherOptions{BackPressureTimeout: 30 * time.Second})
		if err != nil {
			return harness.Result{}, err
		}
		sub, err := ring.OpenSubscriber(o, "tp", ring.SubscriberOptions{Wait: ring.WaitStrategy{Kind: ring.BusySpin}})
		if err != nil {
			p.Close()
			return harness.Result{}, err
		}
		defer sub.Close()
		release := harness.Pin(w.cpuA)
		defer release()
		done := make(chan error, 1)
		var pr publishResult
		go func() {
			defer p.Close()
			rel := harness.Pin(w.cpuB)
			defer rel()
			var err error
			pr, err = publishFrames(p, n, 64, publishBatch)
			done <- err
		}()
		el, timed, pollAllocs, err := consumeFrames(sub, n)
		if perr := <-done; err == nil {
			err = perr
		}
		if err != nil {
			return harness.Result{}, err
		}
		return harness.Result{OpsPerSec: float64(timed) / el.Seconds(), BytesPerSec: float64(timed*64) / el.Seconds(),
			AllocsPerOp: pollAllocs,
			Notes: fmt.Sprintf("publisher and subscriber goroutines pinned to the two CPUs, batches of %d; publisher side %.1f M/s; allocs/op counts both (process-wide)",
				publishBatch, float64(n)/pr.Seconds/1e6)}, nil
	}
	channel := func(repeat int) (harness.Result, error) {
		ch := make(chan [64]byte, 4096)
		go func() {
			rel := harness.Pin(w.cpuB)
			defer rel()
			var v [64]byte
			for i := 0; i < n; i++ {
				binary.LittleEndian.PutUint64(v[:], uint64(i))
				ch <- v
			}
		}()
		release := harness.Pin(w.cpuA)
		defer release()
		v := <-ch
		start := time.Now()
		mallocs := harness.Mallocs()
		bad := 0
		for i := 1; i < n; i++ {
			v = <-ch
			if binary.LittleEndian.Uint64(v[:]) != uint64(i) {
				bad++
			}
		}
		el := time.Since(start)
		if bad != 0 {
			return harness.Result{}, fmt.Errorf("%d values out of order", bad)
		}
		return harness.Result{OpsPerSec: float64(n-1) / el.Seconds(), BytesPerSec: float64((n-1)*64) / el.Seconds(),
			AllocsPerOp: harness.AllocsPerOp(mallocs, int64(n-1)),
			Notes:       "chan [64]byte with buffer 4096, sender and receiver goroutines pinned (go-disruptor is not served by the module proxy here)"}, nil
	}
	w.b.Interleave(name,
		harness.Contender{System: harness.Ours, Run: tapewire},
		harness.Contender{System: "go-channel", Run: channel},
	)
}
