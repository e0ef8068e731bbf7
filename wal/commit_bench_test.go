package wal

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tapewire/tapewire/vfs"
)

// nullFS completes every frame write at once without storing it (reads see
// zeros): what is left of a synced append is the commit path's own CPU —
// locking, group formation, hand-offs and wake-ups.
type nullFS struct{ vfs.FS }

func (fs nullFS) Open(name string, flags vfs.Flag) (vfs.File, error) {
	f, err := fs.FS.Open(name, flags)
	if err != nil || flags&vfs.FlagDSync == 0 {
		return f, err
	}
	return nullFile{f}, nil
}

type nullFile struct{ vfs.File }

func (nullFile) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }

// BenchmarkCommitPathCPU: synced appends of 124-byte records from W
// goroutines against a device that takes no time; ns/op is the CPU and
// scheduling cost per append (divide by GOMAXPROCS for CPU time).
func BenchmarkCommitPathCPU(b *testing.B) {
	for _, writers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			l, err := Open("/wal", Options{FS: nullFS{vfs.NewCrashFS(1)}, SegmentSizeBytes: 64 << 20})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			b.ResetTimer()
			appendConcurrently(b, l, writers)
			b.StopTimer()
			m := l.Metrics()
			b.ReportMetric(float64(m.Records)/float64(m.Frames), "records/frame")
		})
	}
}

// BenchmarkSyncedAppendDisk: synced appends of 124-byte records from W
// goroutines to a log on the real disk (the test's temporary directory,
// which must not be tmpfs): walbench's synced-append workload, in a form
// that go test can profile. cpu-µs/op is the process's CPU per append.
func BenchmarkSyncedAppendDisk(b *testing.B) {
	for _, c := range []struct{ writers, inflight int }{{1, 0}, {16, 0}, {64, 0}, {64, 2}, {64, 3}, {64, 8}} {
		writers := c.writers
		b.Run(fmt.Sprintf("writers=%d/inflight=%d", writers, c.inflight), func(b *testing.B) {
			dir := b.TempDir()
			if _, inMemory, err := vfs.FileSystemType(dir); err != nil || inMemory {
				b.Fatalf("%s is not a disk file system (err %v): set TMPDIR", dir, err)
			}
			l, err := Open(dir, Options{FS: vfs.Default, PreparedSegments: 2, MaxInFlightFrames: c.inflight})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			cpu0 := processCPU()
			b.ResetTimer()
			per := appendConcurrently(b, l, writers)
			b.StopTimer()
			m := l.Metrics()
			b.ReportMetric(float64(m.Records)/float64(m.Frames), "records/frame")
			b.ReportMetric(float64(processCPU()-cpu0)/1e3/float64(per*writers), "cpu-µs/op")
		})
	}
}

// processCPU returns the process's user+system CPU time in nanoseconds.
func processCPU() int64 {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// appendConcurrently makes b.N synced appends of one 124-byte record (at
// least; rounded up to a multiple of writers) from writers goroutines and
// returns the appends each made.
func appendConcurrently(b *testing.B, l *Log, writers int) int {
	var wg sync.WaitGroup
	per := b.N/writers + 1
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs := []Record{{Payload: make([]byte, 124)}}
			for range per {
				if _, err := l.Append(context.Background(), recs); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return per
}
