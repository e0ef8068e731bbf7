package harness

import (
	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: 1 ns to 100 s at 3 significant figures, as BENCH.md asks.
const (
	histogramMinNs   = 1
	histogramMaxNs   = 100_000_000_000
	histogramSigFigs = 3
)

// Histogram records latencies in nanoseconds. Values outside its range are
// clamped to the range rather than dropped, so a pathological outlier still
// shows in max and p99.9.
type Histogram struct {
	h *hdrhistogram.Histogram
}

// NewHistogram returns an empty histogram. Recording never allocates.
func NewHistogram() *Histogram {
	return &Histogram{h: hdrhistogram.New(histogramMinNs, histogramMaxNs, histogramSigFigs)}
}

func clamp(ns int64) int64 {
	if ns < histogramMinNs {
		return histogramMinNs
	}
	if ns > histogramMaxNs {
		return histogramMaxNs
	}
	return ns
}

// Record adds one latency sample.
func (h *Histogram) Record(ns int64) { _ = h.h.RecordValue(clamp(ns)) }

// RecordCorrected adds a sample from a closed-loop run at the expected
// interval between operations, back-filling the samples a stalled loop failed
// to issue (coordinated-omission correction for closed loops; OpenLoop does
// not need it).
func (h *Histogram) RecordCorrected(ns, expectedIntervalNs int64) {
	_ = h.h.RecordCorrectedValue(clamp(ns), expectedIntervalNs)
}

// Merge adds every sample of o.
func (h *Histogram) Merge(o *Histogram) { h.h.Merge(o.h) }

// Count is the number of samples.
func (h *Histogram) Count() int64 { return h.h.TotalCount() }

// Reset empties the histogram.
func (h *Histogram) Reset() { h.h.Reset() }

// Percentile returns the value at percentile q (0..100).
func (h *Histogram) Percentile(q float64) int64 { return h.h.ValueAtQuantile(q) }

// Fill sets the percentile fields of r from the histogram.
func (h *Histogram) Fill(r *Result) {
	r.P50Ns = h.h.ValueAtQuantile(50)
	r.P90Ns = h.h.ValueAtQuantile(90)
	r.P99Ns = h.h.ValueAtQuantile(99)
	r.P999Ns = h.h.ValueAtQuantile(99.9)
	r.MaxNs = h.h.Max()
}
