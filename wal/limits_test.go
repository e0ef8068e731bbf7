package wal

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/tapewire/tapewire/vfs"
)

func TestLimitsNameTheLimit(t *testing.T) {
	opts := crashOptions(vfs.NewCrashFS(1))
	opts.MaxRecordBytes = 1000
	l, err := Open("/wal", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	_, err = l.Append(ctx, []Record{{Payload: make([]byte, 1001)}})
	if err == nil || !strings.Contains(err.Error(), "Options.MaxRecordBytes = 1000") {
		t.Fatalf("oversized record: %v", err)
	}
	big := make([]Record, 20)
	for i := range big {
		big[i].Payload = make([]byte, 1000)
	}
	_, err = l.AppendAsync(big)
	if err == nil || !strings.Contains(err.Error(), "Options.MaxGroupBytes = 8192") {
		t.Fatalf("oversized batch: %v", err)
	}
	if _, err := l.Append(ctx, nil); err == nil {
		t.Fatal("empty append accepted")
	}
	if err := l.TruncateBefore(l.DurableLSN() + 2); err == nil {
		t.Fatal("TruncateBefore beyond the durable LSN accepted")
	}
	if err := l.WaitDurable(ctx, 99); err == nil {
		t.Fatal("WaitDurable of an unassigned LSN accepted")
	}
	for _, bad := range []Options{
		{SegmentSizeBytes: 4096 * 3, MaxGroupBytes: 8192},
		{MaxInFlightFrames: 17},
		{SegmentSizeBytes: 100000},
	} {
		bad.FS = vfs.NewCrashFS(1)
		if _, err := Open("/x", bad); err == nil {
			t.Fatalf("options %+v accepted", bad)
		}
	}
}

func TestMaxWaiters(t *testing.T) {
	// One in-flight slot and a write that blocks: waiters pile up.
	fs := &blockingFS{FS: vfs.NewCrashFS(1), release: make(chan struct{})}
	opts := crashOptions(fs)
	opts.MaxWaiters = 3
	opts.MaxInFlightFrames = 1
	l, err := Open("/wal", opts)
	if err != nil {
		t.Fatal(err)
	}
	// Prepare the first segment before blocking writes.
	if _, err := l.Append(context.Background(), []Record{{Payload: []byte("a")}}); err != nil {
		t.Fatal(err)
	}
	fs.block.Store(true)
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := l.Append(context.Background(), []Record{{Payload: []byte("b")}})
			errs <- err
		}()
	}
	var limited int
	for range 2 {
		if err := <-errs; err != nil && strings.Contains(err.Error(), "Options.MaxWaiters = 3") {
			limited++
		} else {
			t.Fatalf("expected a MaxWaiters error, got %v", err)
		}
	}
	fs.block.Store(false)
	close(fs.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("waiter within the limit failed: %v", err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNotifyAndRecycling(t *testing.T) {
	fs := vfs.NewCrashFS(3)
	opts := crashOptions(fs)
	var mu sync.Mutex
	var seen []LSN
	opts.Notify = func(d LSN, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			t.Errorf("notify error: %v", err)
		}
		if n := len(seen); n > 0 && d <= seen[n-1] {
			t.Errorf("durable LSN went from %d to %d", seen[n-1], d)
		}
		seen = append(seen, d)
	}
	l, err := Open("/wal", opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var last LSN
	for i := range 200 {
		if last, err = l.Append(ctx, []Record{{Payload: payloadFor(1, i)}}); err != nil {
			t.Fatal(err)
		}
		if i%20 == 19 {
			if err := l.TruncateBefore(last + 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	m := l.Metrics()
	if m.Recycled == 0 {
		t.Fatalf("no segment recycled: %+v", m)
	}
	mu.Lock()
	if len(seen) == 0 || seen[len(seen)-1] != last {
		t.Fatalf("notify saw %d values, last %v, want %d", len(seen), seen[len(seen)-1:], last)
	}
	mu.Unlock()
	// The active segment survives any truncation; the log still reads.
	r, err := l.NewReader(last)
	if err != nil {
		t.Fatal(err)
	}
	if recs := readAll(t, r); len(recs) != 1 || recs[0].LSN != last {
		t.Fatalf("read %d records from the last LSN", len(recs))
	}
	r.Close()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open("/wal", opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep := l.Recovery(); rep.Decision.Verdict != Clean || rep.LastLSN != last {
		t.Fatalf("reopen after truncation and recycling: %+v", rep.Decision)
	}
	if err := l.Close(); err != nil || !errors.Is(l.Close(), ErrClosed) {
		t.Fatalf("close twice: %v", err)
	}
	if _, err := l.AppendAsync([]Record{{Payload: []byte("x")}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
}
