// Command schemabench measures Tapewire's event frames against encoding/json
// on the same Go values, per event type:
//
//   - <Type>/roundtrip: build a frame into a reused buffer, verify it and
//     decode every field into a reused value (tapewire: PutEvent +
//     DecodeEvent; encoding/json: Marshal + Unmarshal);
//   - <Type>/read: verify and read every field of an existing frame
//     (DecodeEvent; json.Unmarshal of an existing document);
//   - <Type>/build: build the frame (PutEvent; json.Marshal).
//
// Each repeat runs the operation for a fixed time in batches of batchOps,
// records the mean per operation of every batch in an HDR histogram (timing
// single operations of ~50 ns would mostly measure the clock), and counts
// allocations over the whole repeat. After each repeat the decoded value is
// compared with the original, so neither side can skip work.
//
// Usage:
//
//	go run ./cmd/schemabench [-quick] [-json PATH] [-only REGEXP]
package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/tapewire/tapewire/bench/internal/harness"
	"github.com/tapewire/tapewire/schema"
)

// batchOps is how many operations one latency sample averages.
const batchOps = 64

func main() {
	b := harness.New("schemabench")
	d := b.Duration(400*time.Millisecond, 40*time.Millisecond)
	release := harness.Pin(0)
	defer release()
	for _, typ := range schema.Types() {
		ev := sampleEvent(typ)
		for _, w := range workloads(typ, ev) {
			name := typ.String() + "/" + w.name
			if !b.Wants(name) {
				continue
			}
			b.Interleave(name,
				harness.Contender{System: harness.Ours, Run: func(int) (harness.Result, error) { return measure(d, w.ours) }},
				harness.Contender{System: "encoding/json", Run: func(int) (harness.Result, error) { return measure(d, w.peer) }},
			)
		}
	}
	b.Finish()
}

// operation is one measured operation and the check run after a repeat.
type operation struct {
	run   func() error
	check func() error
}

type workload struct {
	name       string
	ours, peer operation
}

func workloads(typ schema.Type, ev schema.Event) []workload {
	size, err := schema.FrameSize(ev)
	if err != nil {
		panic(err) // sampleEvent builds values within the schema's bounds
	}
	buf := make([]byte, size)
	frame := make([]byte, size)
	if _, err := schema.PutEvent(frame, schema.Header{Seq: 1}, ev); err != nil {
		panic(err)
	}
	doc, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	seq := uint64(0)
	var jsonOut []byte

	oursOut, _ := schema.NewEvent(typ)
	peerOut, _ := schema.NewEvent(typ)
	oursSame := func() error { return same(ev, oursOut) }
	peerSame := func() error { return same(ev, peerOut) }

	return []workload{
		{
			name: "roundtrip",
			ours: operation{run: func() error {
				seq++
				if _, err := schema.PutEvent(buf, schema.Header{Seq: seq}, ev); err != nil {
					return err
				}
				_, err := schema.DecodeEvent(buf, oursOut)
				return err
			}, check: oursSame},
			peer: operation{run: func() error {
				out, err := json.Marshal(ev)
				if err != nil {
					return err
				}
				return json.Unmarshal(out, peerOut)
			}, check: peerSame},
		},
		{
			name: "read",
			ours: operation{run: func() error {
				_, err := schema.DecodeEvent(frame, oursOut)
				return err
			}, check: oursSame},
			peer: operation{run: func() error { return json.Unmarshal(doc, peerOut) }, check: peerSame},
		},
		{
			name: "build",
			ours: operation{run: func() error {
				seq++
				_, err := schema.PutEvent(buf, schema.Header{Seq: seq}, ev)
				return err
			}, check: func() error {
				if err := schema.Verify(buf); err != nil {
					return err
				}
				_, err := schema.DecodeEvent(buf, oursOut)
				if err != nil {
					return err
				}
				return oursSame()
			}},
			peer: operation{run: func() error {
				var err error
				jsonOut, err = json.Marshal(ev)
				return err
			}, check: func() error {
				if err := json.Unmarshal(jsonOut, peerOut); err != nil {
					return err
				}
				return peerSame()
			}},
		},
	}
}

func same(want, got schema.Event) error {
	if !reflect.DeepEqual(want, got) {
		return fmt.Errorf("decoded %+v, want %+v", got, want)
	}
	return nil
}

// measure runs op for about d after a warm-up and reports throughput, the
// per-operation latency percentiles of batch means and allocations per
// operation.
func measure(d time.Duration, op operation) (harness.Result, error) {
	for i := 0; i < 1000; i++ {
		if err := op.run(); err != nil {
			return harness.Result{}, err
		}
	}
	h := harness.NewHistogram()
	var ops int64
	before := harness.Mallocs()
	start := time.Now()
	for time.Since(start) < d {
		t0 := time.Now()
		for i := 0; i < batchOps; i++ {
			if err := op.run(); err != nil {
				return harness.Result{}, err
			}
		}
		h.Record(int64(time.Since(t0)) / batchOps)
		ops += batchOps
	}
	elapsed := time.Since(start)
	allocs := harness.AllocsPerOp(before, ops)
	if err := op.check(); err != nil {
		return harness.Result{}, err
	}
	r := harness.Result{OpsPerSec: float64(ops) / elapsed.Seconds(), AllocsPerOp: allocs,
		Notes: fmt.Sprintf("latency = mean per op over batches of %d, closed loop, one goroutine pinned", batchOps)}
	h.Fill(&r)
	return r, nil
}
