package main

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	badger "github.com/dgraph-io/badger/v4"

	"github.com/tapewire/tapewire/lsm"
)

// engine is what every workload needs from a system under test.
type engine interface {
	// put writes one key without waiting for durability.
	put(k, v []byte) error
	// putSync writes one key and returns once it is durable.
	putSync(k, v []byte) error
	// get reads one key and returns a digest of the value (its length plus
	// its last byte), or 0, false if absent.
	get(k []byte) (int, bool, error)
	// scan reads n entries from start and returns how many it saw.
	scan(start []byte, n int) (int, error)
	// settle flushes memtables so reads hit tables.
	settle() error
	close() error
}

// ---- tapewire ----

type tapewire struct {
	db    *lsm.DB
	batch lsm.Batch
	lsn   uint64
	ext   bool
}

// openTapewire opens ours. In ExternalLog mode (the appliance's: the LSM is
// fed from a log that is already durable) puts carry increasing LSNs and the
// engine writes no log of its own; Standalone owns a wal.Log.
func openTapewire(dir string, external bool) (*tapewire, error) {
	o := lsm.Options{}
	if external {
		o.Durability = lsm.ExternalLog
	}
	db, err := lsm.Open(dir, o)
	if err != nil {
		return nil, err
	}
	return &tapewire{db: db, ext: external}, nil
}

func (t *tapewire) put(k, v []byte) error {
	if !t.ext {
		return t.db.Set(k, v, lsm.NoSync)
	}
	t.batch.Reset()
	t.batch.Set(k, v)
	t.lsn++
	return t.db.ApplyAt(&t.batch, t.lsn)
}

func (t *tapewire) putSync(k, v []byte) error { return t.db.Set(k, v, lsm.Sync) }

func (t *tapewire) get(k []byte) (int, bool, error) {
	v, c, err := t.db.Get(k)
	if errors.Is(err, lsm.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	n := len(v) + int(v[len(v)-1])
	c.Close()
	return n, true, nil
}

func (t *tapewire) scan(start []byte, n int) (int, error) {
	it := t.db.NewIter(nil)
	seen := 0
	var sum uint64
	defer func() { readChecksum.Add(sum) }()
	for ok := it.SeekGE(start); ok && seen < n; ok = it.Next() {
		sum += uint64(len(it.Key()) + len(it.Value()))
		seen++
	}
	return seen, it.Close()
}

func (t *tapewire) settle() error { return t.db.Flush() }
func (t *tapewire) close() error  { return t.db.Close() }

// ---- pebble, tuned like CockroachDB ----

type pebbleEngine struct {
	db    *pebble.DB
	cache interface{ Unref() }
}

func openPebble(dir string, disableWAL bool) (*pebbleEngine, error) {
	cache := pebble.NewCache(256 << 20)
	o := &pebble.Options{Cache: cache, MemTableSize: 64 << 20, DisableWAL: disableWAL, Logger: quietLogger{}}
	for i := range o.Levels {
		o.Levels[i].BlockSize = 32 << 10
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, o)
	if err != nil {
		cache.Unref()
		return nil, err
	}
	return &pebbleEngine{db: db, cache: cache}, nil
}

func (p *pebbleEngine) put(k, v []byte) error     { return p.db.Set(k, v, pebble.NoSync) }
func (p *pebbleEngine) putSync(k, v []byte) error { return p.db.Set(k, v, pebble.Sync) }

func (p *pebbleEngine) get(k []byte) (int, bool, error) {
	v, c, err := p.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	n := len(v) + int(v[len(v)-1])
	c.Close()
	return n, true, nil
}

func (p *pebbleEngine) scan(start []byte, n int) (int, error) {
	it, err := p.db.NewIter(nil)
	if err != nil {
		return 0, err
	}
	seen := 0
	var sum uint64
	defer func() { readChecksum.Add(sum) }()
	for ok := it.SeekGE(start); ok && seen < n; ok = it.Next() {
		sum += uint64(len(it.Key()) + len(it.Value()))
		seen++
	}
	return seen, it.Close()
}

func (p *pebbleEngine) settle() error { return p.db.Flush() }

func (p *pebbleEngine) close() error {
	err := p.db.Close()
	p.cache.Unref()
	return err
}

// quietLogger drops Pebble's informational messages (they would interleave
// with the results) and keeps its errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pebble: "+format+"\n", args...)
}
func (quietLogger) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pebble: fatal: "+format+"\n", args...)
	os.Exit(1)
}

// ---- badger ----

type badgerEngine struct{ db *badger.DB }

func openBadger(dir string, syncWrites bool) (*badgerEngine, error) {
	o := badger.DefaultOptions(dir).WithLogger(nil).WithSyncWrites(syncWrites)
	db, err := badger.Open(o)
	if err != nil {
		return nil, err
	}
	return &badgerEngine{db: db}, nil
}

func (b *badgerEngine) put(k, v []byte) error {
	return b.db.Update(func(txn *badger.Txn) error { return txn.Set(k, v) })
}

func (b *badgerEngine) putSync(k, v []byte) error { return b.put(k, v) }

func (b *badgerEngine) get(k []byte) (int, bool, error) {
	n, found := 0, false
	err := b.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(k)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		return item.Value(func(v []byte) error { n = len(v); return nil })
	})
	return n, found, err
}

func (b *badgerEngine) scan(start []byte, n int) (int, error) {
	seen := 0
	var sum uint64
	defer func() { readChecksum.Add(sum) }()
	err := b.db.View(func(txn *badger.Txn) error {
		o := badger.DefaultIteratorOptions
		o.PrefetchValues = false
		it := txn.NewIterator(o)
		defer it.Close()
		for it.Seek(start); it.Valid() && seen < n; it.Next() {
			item := it.Item()
			if err := item.Value(func(v []byte) error { sum += uint64(len(v)); return nil }); err != nil {
				return err
			}
			seen++
		}
		return nil
	})
	return seen, err
}

func (b *badgerEngine) settle() error { return nil }
func (b *badgerEngine) close() error  { return b.db.Close() }

// readChecksum sums what every read returned, so no read can be optimised
// away; main prints it.
var readChecksum atomic.Uint64

// tempDir makes a fresh directory for one run under the bench work root.
func tempDir(root, name string) (string, error) {
	d, err := os.MkdirTemp(root, name+"-")
	if err != nil {
		return "", fmt.Errorf("create directory for %s under %s: %w", name, root, err)
	}
	return d, nil
}
