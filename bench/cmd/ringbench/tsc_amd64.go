package main

// rdtsc reads the time-stamp counter, fenced on both sides (see the
// assembly): ~10-20 ns, against 100-400 ns for time.Now on this VM, so
// per-operation latency samples do not drown in clock cost. The host has
// constant_tsc and nonstop_tsc; ticksPerNs is calibrated against the wall
// clock at start.
func rdtsc() uint64
