package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/record"
	"github.com/tapewire/tapewire/bench/internal/harness"
	"github.com/tapewire/tapewire/vfs"
	"github.com/tapewire/tapewire/wal"
	"golang.org/x/sys/unix"
)

// replayData is a WAL of about logBytes of 124-byte records, and a Pebble
// store whose WAL holds the same payload un-flushed.
type replayData struct {
	walDir, pebbleDir string
	records           int64
	frameBytes        int64
}

func newReplayData(root string, logBytes int64) (*replayData, error) {
	rp := &replayData{walDir: filepath.Join(root, "replay-wal"), pebbleDir: filepath.Join(root, "replay-pebble")}
	l, err := wal.Open(rp.walDir, wal.Options{FS: vfs.Default, PreparedSegments: 2})
	if err != nil {
		return nil, err
	}
	recs := make([]wal.Record, 1000)
	for i := range recs {
		recs[i] = wal.Record{Type: 10, Payload: make([]byte, recordBytes)}
	}
	var last wal.LSN
	for l.Metrics().FrameBytes < logBytes {
		if last, err = l.AppendAsync(recs); err != nil {
			l.Close()
			return nil, err
		}
	}
	m := l.Metrics()
	if err := l.Close(); err != nil {
		return nil, err
	}
	rp.records, rp.frameBytes = int64(last), m.FrameBytes

	// Pebble: the same payload in Pebble's WAL record format (what its
	// recovery reads), one record per batch of 1000 entries as a committed
	// batch would be.
	if err := os.MkdirAll(rp.pebbleDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(rp.pebbleDir, "000001.log"))
	if err != nil {
		return nil, err
	}
	w := record.NewWriter(f)
	batchBuf := make([]byte, 1000*recordBytes)
	for n := int64(0); n < rp.records; n += 1000 {
		k := min(1000, rp.records-n)
		if _, err := w.WriteRecord(batchBuf[:k*recordBytes]); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	// Drop both logs from the page cache: replay after a restart reads disk.
	dropCache(rp.walDir)
	dropCache(rp.pebbleDir)
	return rp, nil
}

// tapewire opens the log (recovery scans every segment) and reads every
// record from LSN 1; bytes/s is frame bytes over the read time.
func (rp *replayData) tapewire() (harness.Result, error) {
	dropCache(rp.walDir)
	t0 := time.Now()
	rep, err := wal.Inspect(vfs.Default, rp.walDir)
	if err != nil {
		return harness.Result{}, err
	}
	if rep.Decision.Verdict == wal.Corrupt {
		return harness.Result{}, rep.Err()
	}
	scan := time.Since(t0)
	t1 := time.Now()
	r, err := rep.NewReader(vfs.Default, 1)
	if err != nil {
		return harness.Result{}, err
	}
	defer r.Close()
	var n int64
	var sum byte
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return harness.Result{}, err
		}
		sum += rec.Payload[len(rec.Payload)-1]
		n++
	}
	read := time.Since(t1)
	if n != rp.records {
		return harness.Result{}, fmt.Errorf("replayed %d records, wrote %d (checksum %d)", n, rp.records, sum)
	}
	return harness.Result{
		OpsPerSec:   float64(n) / read.Seconds(),
		BytesPerSec: float64(rp.frameBytes) / read.Seconds(),
		Notes: fmt.Sprintf("%d records, %d MiB of frames; reader %.0f ms; recovery scan of all segments %.0f ms (%.2f GB/s)",
			n, rp.frameBytes>>20, read.Seconds()*1e3, scan.Seconds()*1e3, float64(rep.Bytes)/scan.Seconds()/1e9),
	}, nil
}

// pebble reads the same payload back with Pebble's WAL record reader and
// walks every 124-byte entry of each batch record.
func (rp *replayData) pebble() (harness.Result, error) {
	dropCache(rp.pebbleDir)
	t0 := time.Now()
	f, err := os.Open(filepath.Join(rp.pebbleDir, "000001.log"))
	if err != nil {
		return harness.Result{}, err
	}
	defer f.Close()
	rr := record.NewReader(f, 0)
	buf := bytes.NewBuffer(make([]byte, 0, 1000*recordBytes))
	var n int64
	var sum byte
	var logBytes int64
	for {
		r, err := rr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return harness.Result{}, err
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			return harness.Result{}, err
		}
		b := buf.Bytes()
		logBytes += int64(len(b))
		for off := 0; off+recordBytes <= len(b); off += recordBytes {
			sum += b[off+recordBytes-1]
			n++
		}
	}
	el := time.Since(t0)
	if n != rp.records {
		return harness.Result{}, fmt.Errorf("pebble record reader returned %d entries, wrote %d (checksum %d)", n, rp.records, sum)
	}
	return harness.Result{
		OpsPerSec:   float64(n) / el.Seconds(),
		BytesPerSec: float64(rp.frameBytes) / el.Seconds(),
		Notes: fmt.Sprintf("pebble/v2/record reader over %d MiB of batch records (1000 entries each): %.0f ms; bytes/s counts Tapewire's frame bytes for the same payload",
			logBytes>>20, el.Seconds()*1e3),
	}, nil
}

// floor reads the WAL's segment files, every byte, with O_DIRECT reads of
// chunk bytes, inflight at a time (each goroutine reads the next chunk of
// the next file as soon as its previous read returns): what the device
// delivers, without parsing.
func (rp *replayData) floor(chunk, inflight int) (harness.Result, error) {
	names, err := os.ReadDir(rp.walDir)
	if err != nil {
		return harness.Result{}, err
	}
	type piece struct {
		f   vfs.File
		off int64
	}
	var pieces []piece
	for _, e := range names {
		if filepath.Ext(e.Name()) != ".wal" {
			continue
		}
		f, err := vfs.Default.Open(filepath.Join(rp.walDir, e.Name()), vfs.FlagDirect)
		if err != nil {
			return harness.Result{}, err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return harness.Result{}, err
		}
		for off := int64(0); off < st.Size; off += int64(chunk) {
			pieces = append(pieces, piece{f, off})
		}
	}
	dropCache(rp.walDir)
	var next atomic.Int64
	var total atomic.Int64
	errs := make(chan error, inflight)
	t0 := time.Now()
	for range inflight {
		go func() {
			buf := vfs.AlignedBuffer(chunk)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(pieces) {
					errs <- nil
					return
				}
				n, err := pieces[i].f.ReadAt(buf, pieces[i].off)
				total.Add(int64(n))
				if err != nil && !errors.Is(err, io.EOF) {
					errs <- err
					return
				}
			}
		}()
	}
	for range inflight {
		if err := <-errs; err != nil {
			return harness.Result{}, err
		}
	}
	el := time.Since(t0)
	// No ops/s: reads per second against records per second would be a
	// meaningless ratio.
	return harness.Result{BytesPerSec: float64(total.Load()) / el.Seconds(),
		Notes: fmt.Sprintf("%d KiB O_DIRECT reads, %d in flight, of all %d MiB of segment files", chunk>>10, inflight, total.Load()>>20)}, nil
}

// dropCache asks the kernel to forget the cached pages of the files in dir
// (POSIX_FADV_DONTNEED), so every contender reads from the device.
func dropCache(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		f.Close()
	}
}
