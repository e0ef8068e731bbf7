// Command ringbench measures Tapewire's shared-memory rings against peers and
// physical floors, interleaved in one run (contract: ../shared/BENCH.md):
//
//  1. rtt-64B: ping-pong over two topics between two processes pinned to two
//     CPUs, against the raw cache-line ping-pong floor (two processes on one
//     shared word), the same floor walking a fresh cache line per message as
//     a ring does, a Unix-domain-socket ping-pong and Go channels
//     (in-process).
//  2. throughput-64B, throughput-1KiB: one publisher process (batches of 64
//     frames) and one subscriber process, against a batched Unix-domain
//     socket stream; throughput-inproc-64B: publisher and subscriber
//     goroutines against a buffered Go channel.
//  3. wakeup-parked-rtt: ping-pong where both sides park on the futex
//     before each message arrives, against the raw futex round trip.
//  4. lastvalue-read-256B: reads of a 256-byte value while another process
//     rewrites it flat out, against an RWMutex-protected copy (in-process).
//  5. fanout-64B-{1,2,4}sub: publisher throughput with 1, 2, 4 lossy
//     subscriber processes against the same publisher with none.
//
// shmipc-go and go-disruptor, named as peers by the issue, are not served by
// the module proxy here; ring.md says so.
//
// Usage: ringbench [-quick] [-json PATH] [-repeats N] [-only REGEXP]
package main

import (
	"fmt"
	"os"

	"github.com/tapewire/tapewire/bench/internal/harness"
)

func main() {
	if role := harness.Role(); role != "" {
		os.Exit(childMain(role, os.Args[1:]))
	}
	b := harness.New("ringbench")
	calibrate()
	cpuA, cpuB := harness.PinPair()
	fmt.Fprintf(os.Stderr, "ringbench: CPUs %d and %d, TSC %.3f ticks/ns\n", cpuA, cpuB, ticksPerNs)
	w := &workloads{b: b, cpuA: cpuA, cpuB: cpuB}
	w.rtt()
	w.throughput()
	w.wakeup()
	w.lastValue()
	w.fanout()
	b.Finish()
}

// workloads holds what every workload needs.
type workloads struct {
	b          *harness.Bench
	cpuA, cpuB int
}
