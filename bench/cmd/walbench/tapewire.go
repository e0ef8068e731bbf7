package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/tapewire/tapewire/bench/internal/harness"
	"github.com/tapewire/tapewire/vfs"
	"github.com/tapewire/tapewire/wal"
)

var fillFlag = flag.Int("fill", 0, "wal.Options.PipelineFillBytes for Tapewire (0: default)")

var inflightFlag = flag.Int("inflight", wal.DefaultMaxInFlightFrames, "wal.Options.MaxInFlightFrames for Tapewire")

// A second Tapewire configuration, run as the contender "tapewire-b" in the
// synced workloads when either flag is set: an A/B of options in one run,
// interleaved (its ratio row is tapewire ÷ tapewire-b).
var (
	bInflightFlag = flag.Int("b-inflight", 0, "if set: also run Tapewire with this MaxInFlightFrames as the contender tapewire-b")
	bFillFlag     = flag.Int("b-fill", 0, "if set: also run Tapewire with this PipelineFillBytes as the contender tapewire-b")
)

// walConfig is one set of the options walbench varies.
type walConfig struct{ inflight, fill int }

func configA() walConfig { return walConfig{*inflightFlag, *fillFlag} }

// configB returns the second configuration and whether one was asked for.
func configB() (walConfig, bool) {
	b := configA()
	if *bInflightFlag != 0 {
		b.inflight = *bInflightFlag
	}
	if *bFillFlag != 0 {
		b.fill = *bFillFlag
	}
	return b, *bInflightFlag != 0 || *bFillFlag != 0
}

// prepared is how many zeroed segments Tapewire keeps ready: two, so a burst
// of rotations at 64 writers never waits for zeroing.
const prepared = 2

func openWAL(root string, c walConfig) (*wal.Log, error) {
	dir, err := freshDir(root, "tapewire")
	if err != nil {
		return nil, err
	}
	l, err := wal.Open(dir, wal.Options{FS: vfs.Default, PreparedSegments: prepared, MaxInFlightFrames: c.inflight, PipelineFillBytes: c.fill})
	if err != nil {
		return nil, err
	}
	// Warm up: the first segment is activated and the spares are prepared
	// before measuring (a running appliance has them ready).
	if _, err := l.Append(context.Background(), []wal.Record{{Payload: make([]byte, recordBytes)}}); err != nil {
		l.Close()
		return nil, err
	}
	for l.Metrics().SparesReady < prepared {
		time.Sleep(10 * time.Millisecond)
	}
	return l, nil
}

func tapewireSynced(root string, writers int, d time.Duration, c walConfig) (harness.Result, error) {
	l, err := openWAL(root, c)
	if err != nil {
		return harness.Result{}, err
	}
	recs := make([][]wal.Record, writers)
	for w := range recs {
		recs[w] = []wal.Record{{Type: 10, Payload: make([]byte, recordBytes)}}
	}
	ctx := context.Background()
	r, _, err := closedLoop(writers, d, func(w, n int) error {
		recs[w][0].Payload[0] = byte(n)
		_, err := l.Append(ctx, recs[w])
		return err
	})
	m := l.Metrics()
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	r.BytesPerSec = r.OpsPerSec * recordBytes
	if m.Frames > 0 {
		r.Notes = fmt.Sprintf("%s, %.1f records/frame, %.2f bytes written per payload byte, frames written at mean depth %.2f in %.0f µs mean (seal to write end); %s",
			m.WriteMode, float64(m.Records)/float64(m.Frames), float64(m.WrittenBytes)/float64(m.Records*recordBytes),
			float64(m.InFlightAtSealSum)/float64(m.Frames), float64(m.FrameWriteNanos)/float64(m.Frames)/1e3, r.Notes)
	}
	return r, err
}

func tapewireBatched(root string, callers, batch int, d time.Duration) (harness.Result, error) {
	l, err := openWAL(root, configA())
	if err != nil {
		return harness.Result{}, err
	}
	recs := make([][]wal.Record, callers)
	for c := range recs {
		recs[c] = make([]wal.Record, batch)
		for i := range recs[c] {
			recs[c][i] = wal.Record{Type: 10, Payload: make([]byte, recordBytes)}
		}
	}
	ctx := context.Background()
	r, _, err := closedLoop(callers, d, func(c, n int) error {
		_, err := l.Append(ctx, recs[c])
		return err
	})
	m := l.Metrics()
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	r.Notes = fmt.Sprintf("%s, ops are calls of %d records; %.1f records/frame; %s (per call)", m.WriteMode, batch, float64(m.Records)/float64(max(m.Frames, 1)), r.Notes)
	r.BytesPerSec = r.OpsPerSec * float64(batch*recordBytes)
	r.OpsPerSec *= float64(batch)
	return r, err
}
