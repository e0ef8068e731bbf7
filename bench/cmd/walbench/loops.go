package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapewire/tapewire/bench/internal/harness"
)

// closedLoop runs op from writers goroutines for d, each timing every
// operation, and returns ops/s and the merged latency percentiles.
func closedLoop(writers int, d time.Duration, op func(w int, n int) error) (harness.Result, int64, error) {
	hs := make([]*harness.Histogram, writers)
	counts := make([]int64, writers)
	errs := make([]error, writers)
	var stop atomic.Bool
	var wg sync.WaitGroup
	before := harness.Mallocs()
	cpuBefore := processCPU()
	start := time.Now()
	for w := range writers {
		hs[w] = harness.NewHistogram()
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := hs[w]
			for n := 0; !stop.Load(); n++ {
				t0 := time.Now()
				if err := op(w, n); err != nil {
					errs[w] = err
					stop.Store(true)
					return
				}
				h.Record(int64(time.Since(t0)))
				counts[w]++
			}
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	cpu := processCPU() - cpuBefore
	var total int64
	for w := range writers {
		if errs[w] != nil {
			return harness.Result{}, 0, errs[w]
		}
		total += counts[w]
		if w > 0 {
			hs[0].Merge(hs[w])
		}
	}
	r := harness.Result{OpsPerSec: float64(total) / elapsed.Seconds(), AllocsPerOp: harness.AllocsPerOp(before, total),
		Notes: fmt.Sprintf("process CPU %.2f µs/op", float64(cpu)/1e3/float64(max(total, 1)))}
	hs[0].Fill(&r)
	return r, total, nil
}

// processCPU returns the process's user+system CPU time in nanoseconds (the
// same for every contender, so CPU per operation compares across systems).
func processCPU() int64 {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
