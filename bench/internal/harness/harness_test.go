package harness

import (
	"math"
	"testing"
	"time"
)

func TestComputeRatiosOrientsThroughputAndLatency(t *testing.T) {
	var rs []Result
	for rep := 0; rep < 3; rep++ {
		rs = append(rs,
			Result{Workload: "w", System: Ours, Repeat: rep, OpsPerSec: 200, P50Ns: 100},
			Result{Workload: "w", System: "peer", Repeat: rep, OpsPerSec: 100, P50Ns: 300},
		)
	}
	got := ComputeRatios(rs)
	want := map[string]float64{"ops_per_sec": 2, "p50_ns": 3}
	if len(got) != len(want) {
		t.Fatalf("got %d ratios %+v, want %d", len(got), got, len(want))
	}
	for _, r := range got {
		if r.Peer != "peer" || r.Workload != "w" || r.Pairs != 3 {
			t.Fatalf("bad ratio %+v", r)
		}
		if math.Abs(r.MedianRatio-want[r.Metric]) > 1e-9 {
			t.Fatalf("%s ratio %v, want %v", r.Metric, r.MedianRatio, want[r.Metric])
		}
	}
}

func TestComputeRatiosPairsSameRepeatAndTakesMedian(t *testing.T) {
	rs := []Result{
		{Workload: "w", System: Ours, Repeat: 0, OpsPerSec: 10},
		{Workload: "w", System: Ours, Repeat: 1, OpsPerSec: 30},
		{Workload: "w", System: Ours, Repeat: 2, OpsPerSec: 1000},
		{Workload: "w", System: "p", Repeat: 0, OpsPerSec: 10},  // 1
		{Workload: "w", System: "p", Repeat: 1, OpsPerSec: 10},  // 3
		{Workload: "w", System: "p", Repeat: 2, OpsPerSec: 100}, // 10
		{Workload: "other", System: "p", Repeat: 0, OpsPerSec: 1},
	}
	got := ComputeRatios(rs)
	if len(got) != 1 || got[0].MedianRatio != 3 {
		t.Fatalf("got %+v, want one ratio of 3", got)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{5}, 5}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestHistogramFillAndClamp(t *testing.T) {
	h := NewHistogram()
	for i := int64(1); i <= 1000; i++ {
		h.Record(i * 1000)
	}
	h.Record(-5) // clamped to the minimum, not dropped
	var r Result
	h.Fill(&r)
	if h.Count() != 1001 {
		t.Fatalf("count %d", h.Count())
	}
	if r.P50Ns < 495_000 || r.P50Ns > 505_000 {
		t.Fatalf("p50 %d", r.P50Ns)
	}
	if r.MaxNs < 999_000 || r.MaxNs > 1_001_000 || r.P99Ns < 985_000 {
		t.Fatalf("p99 %d max %d", r.P99Ns, r.MaxNs)
	}
}

func TestOpenLoopChargesStallsToWaitingOperations(t *testing.T) {
	calls := 0
	// 1000/s for 50 ms = 50 operations; the 10th stalls 20 ms, so about 20
	// later operations start late and must show it.
	r, err := OpenLoop(1000, 50*time.Millisecond, func() error {
		calls++
		if calls == 10 {
			time.Sleep(20 * time.Millisecond)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 50 {
		t.Fatalf("%d calls, want 50", calls)
	}
	if r.P90Ns < int64(5*time.Millisecond) {
		t.Fatalf("p90 %d ns: the stall was not charged to the operations behind it", r.P90Ns)
	}
	if r.Notes == "" {
		t.Fatal("offered rate missing from notes")
	}
}

func TestInterleaveAlternatesOrderAndRecordsFailures(t *testing.T) {
	b := &Bench{name: "t", repeats: 4}
	var order []string
	mk := func(name string, fail bool) Contender {
		return Contender{System: name, Run: func(repeat int) (Result, error) {
			order = append(order, name)
			if fail {
				return Result{}, errTest
			}
			return Result{OpsPerSec: 1}, nil
		}}
	}
	b.Interleave("w", mk("a", false), mk("b", false))
	want := "abbaabba"
	got := ""
	for _, s := range order {
		got += s
	}
	if got != want {
		t.Fatalf("order %q, want %q", got, want)
	}
	order = nil
	b.Interleave("x", mk("a", false), mk("bad", true))
	if len(b.failed) != 1 {
		t.Fatalf("failures %v, want exactly one (a broken contender is not retried)", b.failed)
	}
	if len(order) != 5 {
		t.Fatalf("ran %v: the failing contender should run once, the other 4 times", order)
	}
}

type testError struct{}

func (testError) Error() string { return "boom" }

var errTest = testError{}

func TestValidateRejectsBrokenDocuments(t *testing.T) {
	good := Document{Bench: "b", Results: []Result{{Workload: "w", System: Ours, OpsPerSec: 1}}, Ratios: []Ratio{{MedianRatio: 1.5}}}
	if err := Validate(good); err != nil {
		t.Fatalf("good document rejected: %v", err)
	}
	for name, doc := range map[string]Document{
		"no results":     {Bench: "b"},
		"no tapewire":    {Bench: "b", Results: []Result{{Workload: "w", System: "peer", OpsPerSec: 1}}},
		"no measure":     {Bench: "b", Results: []Result{{Workload: "w", System: Ours}}},
		"zero ratio":     {Bench: "b", Results: good.Results, Ratios: []Ratio{{MedianRatio: 0}}},
		"infinite ratio": {Bench: "b", Results: good.Results, Ratios: []Ratio{{MedianRatio: math.Inf(1)}}},
		"NaN ratio":      {Bench: "b", Results: good.Results, Ratios: []Ratio{{MedianRatio: math.NaN()}}},
	} {
		if Validate(doc) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
