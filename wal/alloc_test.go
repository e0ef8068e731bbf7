package wal

import (
	"context"
	"testing"

	"github.com/tapewire/tapewire/vfs"
)

// TestAppendAsyncDoesNotAllocate guards the committer's hot path: an async
// append (and the flush and acknowledgement it causes) allocates nothing.
func TestAppendAsyncDoesNotAllocate(t *testing.T) {
	l, err := Open(ext4Dir(t), Options{FS: vfs.Default, SegmentSizeBytes: 8 << 20, MaxGroupBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	recs := []Record{{Type: 10, Payload: make([]byte, 124)}}
	// Warm up: the first segment rotation and pools.
	for range 200 {
		if _, err := l.AppendAsync(recs); err != nil {
			t.Fatal(err)
		}
	}
	var last LSN
	allocs := testing.AllocsPerRun(2000, func() {
		last, err = l.AppendAsync(recs)
		if err != nil {
			t.Fatal(err)
		}
	})
	if err := l.WaitDurable(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	if allocs != 0 {
		t.Fatalf("AppendAsync allocates %.2f times per call, want 0", allocs)
	}
}

// TestAppendSyncAllocations bounds the synchronous path (pooled waiters).
func TestAppendSyncAllocations(t *testing.T) {
	l, err := Open(ext4Dir(t), Options{FS: vfs.Default, SegmentSizeBytes: 8 << 20, MaxGroupBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	recs := []Record{{Type: 10, Payload: make([]byte, 124)}}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := l.Append(ctx, recs); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Fatalf("Append allocates %.2f times per call, want 0", allocs)
	}
}
