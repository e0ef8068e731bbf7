// Command walbench measures Tapewire's write-ahead log against Pebble (tuned
// as CockroachDB runs it, synced writes) and against the raw device floor
// (O_DIRECT|O_DSYNC 4 KiB writes), interleaved in one run on one ext4
// directory. Workloads:
//
//   - synced-append-{1,16,64}w: closed-loop writers, each appending one
//     124-byte record and waiting for durability; ops/s and latency. At 64
//     writers the device is also measured with 8 KiB writes 2 and 3 in
//     flight: the size and depth Tapewire's frames are written at there.
//   - batched-append-1000r-4w: four callers appending 1000 records of 124
//     bytes per call; payload MB/s.
//   - replay: read back a 1 GiB log (64 MiB under -quick) from its first
//     LSN with a Reader; bytes/s of log read, and the recovery scan's time
//     and rate in the notes. Pebble's figure is its WAL record reader over
//     the same payload; the floors read every segment byte with O_DIRECT.
//
// Every contender's notes give the process CPU per operation; Tapewire's
// also the mean depth and write latency of its frames (wal.Metrics).
//
// Usage: walbench [-quick] [-json PATH] [-dir DIR] [-repeats N] [-only RE]
// [-inflight N] [-fill BYTES] [-b-inflight N] [-b-fill BYTES]
// (-b-*: a second Tapewire configuration, interleaved as tapewire-b).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tapewire/tapewire/bench/internal/harness"
	"github.com/tapewire/tapewire/vfs"
)

// recordBytes is the payload of one record: a typical Tapewire tick frame.
const recordBytes = 124

func main() {
	dirFlag := flag.String("dir", "", "directory on the disk under test (default: a new directory in $TMPDIR); must not be tmpfs")
	b := harness.New("walbench")
	root, err := benchDir(*dirFlag)
	if err != nil {
		fmt.Fprintln(os.Stderr, "walbench:", err)
		os.Exit(1)
	}

	d := b.Duration(3*time.Second, 500*time.Millisecond)
	for _, writers := range []int{1, 16, 64} {
		w := writers
		inflight := min(w, 16)
		cs := []harness.Contender{
			{System: harness.Ours, Run: func(int) (harness.Result, error) { return tapewireSynced(root, w, d, configA()) }},
			{System: "pebble", Run: func(int) (harness.Result, error) { return pebbleSynced(root, w, d) }},
			{System: fmt.Sprintf("floor-dsync4k-%dinflight", inflight), Run: func(int) (harness.Result, error) { return floorWrites(root, inflight, BlockSize, d) }},
		}
		if w == 64 {
			// The device at the depth and size Tapewire's frames are
			// written at with 64 writers (two cohorts of ~30 records: about
			// two frames of one or two blocks in flight), and one deeper:
			// no append can take less than its frame's write.
			for _, depth := range []int{2, 3} {
				cs = append(cs, harness.Contender{System: fmt.Sprintf("floor-dsync8k-%dinflight", depth), Run: func(int) (harness.Result, error) {
					return floorWrites(root, depth, 2*BlockSize, d)
				}})
			}
		}
		if cb, ok := configB(); ok {
			cs = append(cs, harness.Contender{System: "tapewire-b", Run: func(int) (harness.Result, error) { return tapewireSynced(root, w, d, cb) }})
		}
		b.Interleave(fmt.Sprintf("synced-append-%dw", w), cs...)
	}
	const batch, callers = 1000, 4
	b.Interleave("batched-append-1000r-4w",
		harness.Contender{System: harness.Ours, Run: func(int) (harness.Result, error) { return tapewireBatched(root, callers, batch, d) }},
		harness.Contender{System: "pebble", Run: func(int) (harness.Result, error) { return pebbleBatched(root, callers, batch, d) }},
		harness.Contender{System: "floor-dsync-frame-4inflight", Run: func(int) (harness.Result, error) {
			return floorBatchWrites(root, callers, batch, d)
		}},
	)
	logBytes := int64(b.Size(1<<30, 64<<20))
	if b.Wants("replay") {
		rp, err := newReplayData(root, logBytes)
		if err != nil {
			b.Fail("replay", err)
		} else {
			b.Interleave(fmt.Sprintf("replay-%dMiB", logBytes>>20),
				harness.Contender{System: harness.Ours, Run: func(int) (harness.Result, error) { return rp.tapewire() }},
				harness.Contender{System: "pebble", Run: func(int) (harness.Result, error) { return rp.pebble() }},
				// The device's best (the read-ahead's geometry, chosen by
				// measuring this device), and one large read at a time.
				harness.Contender{System: "floor-odirect-read", Run: func(int) (harness.Result, error) { return rp.floor(256<<10, 8) }},
				harness.Contender{System: "floor-odirect-read-8mib-serial", Run: func(int) (harness.Result, error) { return rp.floor(8<<20, 1) }},
			)
		}
	}
	// Finish exits the process, so deferred calls would not run: remove the
	// segments, Pebble stores and floor files (gigabytes in a full run) first.
	if err := os.RemoveAll(root); err != nil {
		fmt.Fprintln(os.Stderr, "walbench: remove", root+":", err)
	}
	b.Finish()
}

// BlockSize is the device write unit.
const BlockSize = vfs.BlockSize

// benchDir makes a fresh directory on a disk file system.
func benchDir(dir string) (string, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if _, inMemory, err := vfs.FileSystemType(dir); err != nil {
		return "", err
	} else if inMemory {
		return "", fmt.Errorf("%s is tmpfs: O_DIRECT and sync are free there, the comparison would be meaningless; pass -dir on a disk", dir)
	}
	return os.MkdirTemp(dir, "walbench-")
}

// freshDir returns an empty directory under root for one repeat.
func freshDir(root, name string) (string, error) {
	dir := filepath.Join(root, name)
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	return dir, os.MkdirAll(dir, 0o755)
}
