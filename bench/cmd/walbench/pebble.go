package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/tapewire/tapewire/bench/internal/harness"
)

// pebbleOptions tunes Pebble as CockroachDB does for its storage engine: a
// 64 MiB memtable, L0 thresholds and base-level size from CockroachDB's
// defaults, concurrent compactions, background syncing of tables; every
// write that must be durable is committed with pebble.Sync.
func pebbleOptions() *pebble.Options {
	o := &pebble.Options{
		MemTableSize:                64 << 20,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       2,
		L0StopWritesThreshold:       1000,
		LBaseMaxBytes:               64 << 20,
		BytesPerSync:                512 << 10,
		MaxOpenFiles:                1000,
		CompactionConcurrencyRange:  func() (int, int) { return 1, 2 },
		Logger:                      quietLogger{},
	}
	o.EnsureDefaults()
	return o
}

func openPebble(root string, o *pebble.Options) (*pebble.DB, error) {
	dir, err := freshDir(root, "pebble")
	if err != nil {
		return nil, err
	}
	return pebble.Open(dir, o)
}

// keyValue splits a 124-byte record into a 16-byte key and a 108-byte value.
func key(buf []byte, w, n int) []byte {
	binary.BigEndian.PutUint64(buf[0:], uint64(w))
	binary.BigEndian.PutUint64(buf[8:], uint64(n))
	return buf[:16]
}

func pebbleSynced(root string, writers int, d time.Duration) (harness.Result, error) {
	db, err := openPebble(root, pebbleOptions())
	if err != nil {
		return harness.Result{}, err
	}
	keys := make([][]byte, writers)
	for w := range keys {
		keys[w] = make([]byte, 16)
	}
	value := make([]byte, recordBytes-16)
	r, _, err := closedLoop(writers, d, func(w, n int) error {
		return db.Set(key(keys[w], w, n), value, pebble.Sync)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	r.BytesPerSec = r.OpsPerSec * recordBytes
	r.Notes = "Set(16-byte key, 108-byte value, pebble.Sync); " + r.Notes
	return r, err
}

func pebbleBatched(root string, callers, batch int, d time.Duration) (harness.Result, error) {
	db, err := openPebble(root, pebbleOptions())
	if err != nil {
		return harness.Result{}, err
	}
	value := make([]byte, recordBytes-16)
	keys := make([][]byte, callers)
	for c := range keys {
		keys[c] = make([]byte, 16)
	}
	r, _, err := closedLoop(callers, d, func(c, n int) error {
		b := db.NewBatch()
		for i := range batch {
			if err := b.Set(key(keys[c], c, n*batch+i), value, nil); err != nil {
				return err
			}
		}
		err := b.Commit(pebble.Sync)
		b.Close()
		return err
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	r.Notes = fmt.Sprintf("batches of %d Sets committed with pebble.Sync; %s (per call)", batch, r.Notes)
	r.BytesPerSec = r.OpsPerSec * float64(batch*recordBytes)
	r.OpsPerSec *= float64(batch)
	return r, err
}

// quietLogger drops Pebble's informational messages (they would interleave
// with the result table) but still reports errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pebble: "+format+"\n", args...)
}
func (quietLogger) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pebble: "+format+"\n", args...)
	os.Exit(1)
}
