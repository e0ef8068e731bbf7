package wal

import (
	"errors"
	"io"
	"testing"

	"github.com/tapewire/tapewire/vfs"
)

// BenchmarkReplay reads a 32 MiB log of 124-byte records from disk with a
// Reader (the recovery scan is not timed).
func BenchmarkReplay(b *testing.B) {
	dir := ext4Dir(b)
	l, err := Open(dir, Options{FS: vfs.Default})
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]Record, 1000)
	for i := range recs {
		recs[i] = Record{Payload: make([]byte, 124)}
	}
	for l.Metrics().FrameBytes < 32<<20 {
		if _, err := l.AppendAsync(recs); err != nil {
			b.Fatal(err)
		}
	}
	bytes := l.Metrics().FrameBytes
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	rep, err := Inspect(vfs.Default, dir)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(bytes)
	b.ResetTimer()
	for range b.N {
		r, err := rep.NewReader(vfs.Default, 1)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.Next(); err != nil {
				if !errors.Is(err, io.EOF) {
					b.Fatal(err)
				}
				break
			}
		}
		r.Close()
	}
}

// BenchmarkReaderCPU reads a 32 MiB log held in memory: the reader's own
// cost per byte, without the device.
func BenchmarkReaderCPU(b *testing.B) {
	fs := vfs.NewCrashFS(1)
	l, err := Open("/wal", Options{FS: fs})
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]Record, 1000)
	for i := range recs {
		recs[i] = Record{Payload: make([]byte, 124)}
	}
	for l.Metrics().FrameBytes < 32<<20 {
		if _, err := l.AppendAsync(recs); err != nil {
			b.Fatal(err)
		}
	}
	bytes := l.Metrics().FrameBytes
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	rep, err := Inspect(fs, "/wal")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(bytes)
	b.ResetTimer()
	for range b.N {
		r, err := rep.NewReader(fs, 1)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.Next(); err != nil {
				if !errors.Is(err, io.EOF) {
					b.Fatal(err)
				}
				break
			}
		}
		r.Close()
	}
}
