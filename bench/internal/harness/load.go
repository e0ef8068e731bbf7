package harness

import (
	"fmt"
	"runtime"
	"time"
)

// OpenLoop calls op at the offered rate (operations per second) for the given
// duration, from one goroutine, and returns the latency of every operation
// measured from its intended start time: when op falls behind, the queueing
// delay it causes is charged to the operations that had to wait, which is the
// coordinated-omission correction. It waits for each intended start by
// spinning (with Gosched), never on a timer, because Go timers overshoot
// sub-millisecond sleeps by about a millisecond here.
//
// The returned Result has OpsPerSec (achieved), the percentiles, and Notes
// naming the offered rate; op's error stops the run and is returned.
func OpenLoop(ratePerSec float64, d time.Duration, op func() error) (Result, error) {
	if ratePerSec <= 0 {
		return Result{}, fmt.Errorf("open loop: offered rate %.1f/s must be positive", ratePerSec)
	}
	interval := time.Duration(float64(time.Second) / ratePerSec)
	if interval <= 0 {
		return Result{}, fmt.Errorf("open loop: offered rate %.0f/s exceeds 1e9/s", ratePerSec)
	}
	h := NewHistogram()
	start := time.Now()
	n := int64(d / interval)
	for i := int64(0); i < n; i++ {
		intended := start.Add(time.Duration(i) * interval)
		for time.Now().Before(intended) {
			runtime.Gosched()
		}
		if err := op(); err != nil {
			return Result{}, fmt.Errorf("open loop: operation %d: %w", i, err)
		}
		h.Record(int64(time.Since(intended)))
	}
	elapsed := time.Since(start)
	r := Result{OpsPerSec: float64(n) / elapsed.Seconds(), Notes: fmt.Sprintf("offered %.0f/s", ratePerSec)}
	h.Fill(&r)
	return r, nil
}

// Mallocs returns the process's cumulative heap allocation count. Take it
// before and after a measured loop and divide by the operations with
// AllocsPerOp.
func Mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// AllocsPerOp is the allocations since before (a Mallocs reading) divided by
// ops.
func AllocsPerOp(before uint64, ops int64) float64 {
	if ops <= 0 {
		return 0
	}
	return float64(Mallocs()-before) / float64(ops)
}
