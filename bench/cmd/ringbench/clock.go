package main

import "time"

// ticksPerNs is the TSC rate, measured by calibrate.
var ticksPerNs = 1.0

// calibrate measures the TSC rate against the wall clock over 100 ms.
func calibrate() {
	t0, c0 := time.Now(), rdtsc()
	for time.Since(t0) < 100*time.Millisecond {
	}
	c1, el := rdtsc(), time.Since(t0)
	ticksPerNs = float64(c1-c0) / float64(el.Nanoseconds())
}

// ticksToNs converts a TSC difference to nanoseconds.
func ticksToNs(d uint64) int64 { return int64(float64(d) / ticksPerNs) }
