package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/tapewire/tapewire/bench/internal/harness"
	"github.com/tapewire/tapewire/vfs"
	"github.com/tapewire/tapewire/wal"
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

	// Pebble: the same payload in its WAL, with a memtable large enough that
	// nothing is flushed, so reopening replays all of it.
	o := pebbleOptions()
	o.MemTableSize = uint64(max(2*rp.records*recordBytes, 64<<20))
	db, err := pebble.Open(rp.pebbleDir, o)
	if err != nil {
		return nil, err
	}
	value := make([]byte, recordBytes-16)
	k := make([]byte, 16)
	for n := int64(0); n < rp.records; {
		b := db.NewBatch()
		for i := 0; i < 1000 && n < rp.records; i++ {
			_ = b.Set(key(k, 0, int(n)), value, nil)
			n++
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			return nil, err
		}
		b.Close()
	}
	if err := db.Close(); err != nil {
		return nil, err
	}
	return rp, nil
}

// tapewire opens the log (recovery scans every segment) and reads every
// record from LSN 1; bytes/s is frame bytes over the read time.
func (rp *replayData) tapewire() (harness.Result, error) {
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

// pebble opens the store read-only: Open replays the whole WAL into
// memtables. Bytes/s counts the same payload-bearing bytes as ours.
func (rp *replayData) pebble() (harness.Result, error) {
	o := pebbleOptions()
	o.MemTableSize = uint64(max(2*rp.records*recordBytes, 64<<20))
	o.ReadOnly = true
	t0 := time.Now()
	db, err := pebble.Open(rp.pebbleDir, o)
	if err != nil {
		return harness.Result{}, err
	}
	open := time.Since(t0)
	if err := db.Close(); err != nil {
		return harness.Result{}, err
	}
	return harness.Result{
		OpsPerSec:   float64(rp.records) / open.Seconds(),
		BytesPerSec: float64(rp.frameBytes) / open.Seconds(),
		Notes:       fmt.Sprintf("read-only Open replaying %d records from its WAL: %.0f ms", rp.records, open.Seconds()*1e3),
	}, nil
}

// floor reads the WAL's segment files with 8 MiB O_DIRECT reads.
func (rp *replayData) floor() (harness.Result, error) {
	names, err := os.ReadDir(rp.walDir)
	if err != nil {
		return harness.Result{}, err
	}
	buf := vfs.AlignedBuffer(8 << 20)
	var total int64
	t0 := time.Now()
	for _, e := range names {
		if filepath.Ext(e.Name()) != ".wal" {
			continue
		}
		f, err := vfs.Default.Open(filepath.Join(rp.walDir, e.Name()), vfs.FlagDirect)
		if err != nil {
			return harness.Result{}, err
		}
		for off := int64(0); ; {
			n, err := f.ReadAt(buf, off)
			total += int64(n)
			off += int64(n)
			if err != nil || n < len(buf) {
				break
			}
		}
		f.Close()
	}
	el := time.Since(t0)
	return harness.Result{BytesPerSec: float64(total) / el.Seconds(), OpsPerSec: float64(total) / float64(len(buf)) / el.Seconds(),
		Notes: fmt.Sprintf("8 MiB O_DIRECT reads of all %d MiB of segment files", total>>20)}, nil
}
