package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// chanCompletion reports a write's outcome on a channel.
type chanCompletion chan error

func (c chanCompletion) WriteDone(err error) { c <- err }

func openAsync(t testing.TB, path string) (AsyncWriterAt, File) {
	t.Helper()
	fs := &OS{AsyncWrites: true}
	f, err := fs.Open(path, FlagWrite|FlagCreate|FlagDirect|FlagDSync)
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.AsyncErr(); err != nil {
		t.Fatalf("io_uring refused on this kernel: %v", err)
	}
	aw, ok := f.(AsyncWriterAt)
	if !ok {
		t.Fatalf("%s: O_DIRECT|O_DSYNC file of an OS with AsyncWrites is not an AsyncWriterAt (direct %v)", path, f.Direct())
	}
	return aw, f
}

// TestAsyncWritesOnDisk writes blocks through io_uring, many in flight, to
// a real disk file system, and reads them back; a misaligned write reports
// the kernel's EINVAL through WriteDone; a file opened without FlagDSync is
// not asynchronous (its writes would not be durable on completion).
func TestAsyncWritesOnDisk(t *testing.T) {
	dir := diskDir(t)
	aw, f := openAsync(t, filepath.Join(dir, "f"))
	defer f.Close()
	const blocks = 200 // more than the ring's slots: submission waits for one
	bufs := make([][]byte, blocks)
	done := make(chanCompletion, blocks)
	for i := range bufs {
		bufs[i] = AlignedBuffer(BlockSize)
		for j := range bufs[i] {
			bufs[i][j] = byte(i + j)
		}
		aw.WriteAtAsync(bufs[i], int64(i)*BlockSize, done)
	}
	for range blocks {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	got := AlignedBuffer(BlockSize)
	for i := range bufs {
		if _, err := f.ReadAt(got, int64(i)*BlockSize); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, bufs[i]) {
			t.Fatalf("block %d reads back different bytes", i)
		}
	}
	aw.WriteAtAsync(bufs[0][:100], 0, done)
	if err := <-done; !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("misaligned async write: %v, want EINVAL", err)
	}
	plain, err := (&OS{AsyncWrites: true}).Open(filepath.Join(dir, "g"), FlagWrite|FlagCreate|FlagDirect)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, ok := plain.(AsyncWriterAt); ok {
		t.Fatal("a file without FlagDSync offers asynchronous writes")
	}
}

// BenchmarkDSyncWrite4K compares 4 KiB O_DIRECT|O_DSYNC writes kept
// `depth` in flight by pwrite from depth goroutines and by io_uring from
// one; cpu-µs/op is the process's user+system CPU per write.
func BenchmarkDSyncWrite4K(b *testing.B) {
	dir := b.TempDir()
	for _, depth := range []int{1, 3, 8} {
		for _, mode := range []string{"pwrite", "uring"} {
			b.Run(fmt.Sprintf("%s/depth=%d", mode, depth), func(b *testing.B) {
				path := filepath.Join(dir, mode)
				aw, f := openAsync(b, path)
				defer f.Close()
				if err := f.Preallocate(0, 64<<20); err != nil {
					b.Fatal(err)
				}
				zero := AlignedBuffer(1 << 20)
				for off := int64(0); off < 64<<20; off += 1 << 20 {
					if _, err := f.WriteAt(zero, off); err != nil {
						b.Fatal(err)
					}
				}
				buf := AlignedBuffer(BlockSize)
				slots := int64(64<<20) / BlockSize
				var ru0, ru1 unix.Rusage
				_ = unix.Getrusage(unix.RUSAGE_SELF, &ru0)
				start := time.Now()
				b.ResetTimer()
				if mode == "pwrite" {
					var wg sync.WaitGroup
					per := b.N/depth + 1
					for d := range depth {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for i := range per {
								if _, err := f.WriteAt(buf, (int64(i*depth+d)%slots)*BlockSize); err != nil {
									b.Error(err)
									return
								}
							}
						}()
					}
					wg.Wait()
				} else {
					done := make(chanCompletion, depth)
					for i := range b.N {
						if i >= depth {
							if err := <-done; err != nil {
								b.Fatal(err)
							}
						}
						aw.WriteAtAsync(buf, (int64(i)%slots)*BlockSize, done)
					}
					for range min(depth, b.N) {
						if err := <-done; err != nil {
							b.Fatal(err)
						}
					}
				}
				b.StopTimer()
				_ = unix.Getrusage(unix.RUSAGE_SELF, &ru1)
				cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
				b.ReportMetric(float64(time.Since(start).Microseconds())*float64(depth)/float64(b.N), "µs-latency")
			})
		}
	}
}
