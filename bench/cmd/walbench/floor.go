package main

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/tapewire/tapewire/bench/internal/harness"
	"github.com/tapewire/tapewire/vfs"
	"github.com/tapewire/tapewire/wal"
)

const floorFileBytes = 64 << 20

// floorFile creates a preallocated, zero-written file (as WAL segments are)
// opened O_DIRECT|O_DSYNC.
func floorFile(root string) (vfs.File, error) {
	dir, err := freshDir(root, "floor")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "floor")
	f, err := vfs.Default.Open(path, vfs.FlagWrite|vfs.FlagCreate|vfs.FlagDirect)
	if err != nil {
		return nil, err
	}
	zero := vfs.AlignedBuffer(1 << 20)
	for off := int64(0); off < floorFileBytes; off += int64(len(zero)) {
		if _, err := f.WriteAt(zero, off); err != nil {
			f.Close()
			return nil, err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	f.Close()
	f, err = vfs.Default.Open(path, vfs.FlagWrite|vfs.FlagDirect|vfs.FlagDSync)
	if err != nil {
		return nil, err
	}
	if !f.Direct() {
		f.Close()
		return nil, fmt.Errorf("O_DIRECT refused on %s", dir)
	}
	return f, nil
}

// floorWrites issues size-byte O_DIRECT|O_DSYNC writes to consecutive
// offsets from inflight goroutines: the device's own cost of a commit.
func floorWrites(root string, inflight, size int, d time.Duration) (harness.Result, error) {
	f, err := floorFile(root)
	if err != nil {
		return harness.Result{}, err
	}
	defer f.Close()
	bufs := make([][]byte, inflight)
	for i := range bufs {
		bufs[i] = vfs.AlignedBuffer(size)
		bufs[i][0] = 1
	}
	var next atomic.Int64
	slots := int64(floorFileBytes / size)
	r, _, err := closedLoop(inflight, d, func(w, n int) error {
		off := (next.Add(1) % slots) * int64(size)
		_, err := f.WriteAt(bufs[w], off)
		return err
	})
	r.BytesPerSec = r.OpsPerSec * float64(size)
	r.Notes = fmt.Sprintf("%d-byte O_DIRECT|O_DSYNC pwrite, %d in flight; %s", size, inflight, r.Notes)
	return r, err
}

// floorBatchWrites writes, from callers goroutines, the frame one batched
// append produces (1000 records of 124 bytes: headers, padding, 4 KiB
// aligned); bytes/s counts payload as the other contenders do.
func floorBatchWrites(root string, callers, batch int, d time.Duration) (harness.Result, error) {
	frame := wal.FrameHeaderSize + batch*(wal.RecordHeaderSize+(recordBytes+7)&^7)
	size := (frame + BlockSize - 1) &^ (BlockSize - 1)
	r, err := floorWrites(root, callers, size, d)
	r.BytesPerSec = r.OpsPerSec * float64(batch*recordBytes)
	r.OpsPerSec *= float64(batch)
	return r, err
}
