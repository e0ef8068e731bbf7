package main

import (
	"testing"

	"github.com/tapewire/tapewire/schema"
)

// TestWorkloadsAgree runs every operation of every workload a few times and
// its check: both systems must reproduce the sample value exactly, or the
// comparison would be meaningless.
func TestWorkloadsAgree(t *testing.T) {
	for _, typ := range schema.Types() {
		for _, w := range workloads(typ, sampleEvent(typ)) {
			for _, c := range []struct {
				system string
				op     operation
			}{{"tapewire", w.ours}, {"encoding/json", w.peer}} {
				for i := 0; i < 3; i++ {
					if err := c.op.run(); err != nil {
						t.Fatalf("%v/%s %s: %v", typ, w.name, c.system, err)
					}
				}
				if err := c.op.check(); err != nil {
					t.Errorf("%v/%s %s: %v", typ, w.name, c.system, err)
				}
			}
		}
	}
}

// TestTapewireHotPathsDoNotAllocate pins the allocs/op column of our side.
func TestTapewireHotPathsDoNotAllocate(t *testing.T) {
	for _, typ := range schema.Types() {
		for _, w := range workloads(typ, sampleEvent(typ)) {
			if a := testing.AllocsPerRun(50, func() { _ = w.ours.run() }); a != 0 {
				t.Errorf("%v/%s: %v allocs/op", typ, w.name, a)
			}
		}
	}
}
