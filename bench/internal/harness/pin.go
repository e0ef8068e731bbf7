package harness

import (
	"fmt"
	"os"

	"github.com/tapewire/tapewire/tune"
)

// Pin locks the calling goroutine to a thread bound to cpu and returns the
// function that undoes it. Where the CPU is not available (a 1-CPU machine, a
// restricted cpuset) it warns once on stderr and runs unpinned: a benchmark
// still runs, and the JSON notes say how it ran.
func Pin(cpu int) (release func()) {
	p, err := tune.Pin(cpu)
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: running unpinned: %v\n", err)
		return func() {}
	}
	return func() { _ = p.Release() }
}

// PinPair returns the two CPUs a two-party benchmark (publisher/subscriber,
// ping/pong) should use: the first two allowed CPUs, or the same CPU twice on
// a one-CPU machine.
func PinPair() (a, b int) {
	cpus, err := tune.AllowedCPUs()
	if err != nil || len(cpus) == 0 {
		return 0, 0
	}
	if len(cpus) == 1 {
		return cpus[0], cpus[0]
	}
	return cpus[0], cpus[1]
}
