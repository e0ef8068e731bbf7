package lsm

import (
	"bytes"
	"io"
	"sync"

	"github.com/tapewire/tapewire/lsm/bloom"
	"github.com/tapewire/tapewire/lsm/internal/base"
	"github.com/tapewire/tapewire/lsm/internal/manifest"
	"github.com/tapewire/tapewire/lsm/sstable"
)

var getScratchPool = sync.Pool{New: func() any { return new(sstable.GetScratch) }}

// Get returns the value of key. The value is a view — into the memtable
// arena or the table's mapping — valid until the returned closer is closed;
// the closer keeps the memtables and table files it may point into alive.
// A missing key returns ErrNotFound and a nil closer. Hot path: no
// allocation (guarded by TestGetDoesNotAllocate); each table's bloom filter
// is consulted before any of its blocks.
func (d *DB) Get(key []byte) ([]byte, io.Closer, error) {
	return d.getAt(key, 0)
}

// getAt reads key as of seqLimit (0: the latest visible state).
func (d *DB) getAt(key []byte, seqLimit base.SeqNum) ([]byte, io.Closer, error) {
	if seqLimit == 0 {
		// Load the sequence before the read state: every write below it was
		// applied to a memtable that this (or a later) read state reaches.
		seqLimit = base.SeqNum(d.visibleSeq.Load())
	}
	rs := d.acquireReadState()
	if rs == nil {
		return nil, nil, ErrClosed
	}
	if v, kind, found := rs.mem.index.Get(key, seqLimit); found {
		return d.getResult(rs, v, kind)
	}
	for i := len(rs.imm) - 1; i >= 0; i-- {
		if v, kind, found := rs.imm[i].index.Get(key, seqLimit); found {
			return d.getResult(rs, v, kind)
		}
	}
	h := bloom.Hash(key)
	scratch := getScratchPool.Get().(*sstable.GetScratch)
	defer getScratchPool.Put(scratch)
	l0 := rs.version.Levels[0]
	for i := len(l0) - 1; i >= 0; i-- {
		f := l0[i]
		if bytes.Compare(key, f.SmallestUser()) < 0 || bytes.Compare(key, f.LargestUser()) > 0 {
			continue
		}
		if v, kind, found, err := d.getTable(f, key, h, seqLimit, scratch); err != nil || found {
			return d.getTableResult(rs, v, kind, err)
		}
	}
	for level := 1; level < manifest.NumLevels; level++ {
		f := rs.version.FindFile(level, key)
		if f == nil {
			continue
		}
		if v, kind, found, err := d.getTable(f, key, h, seqLimit, scratch); err != nil || found {
			return d.getTableResult(rs, v, kind, err)
		}
	}
	rs.unref()
	return nil, nil, ErrNotFound
}

func (d *DB) getTable(f *manifest.FileMetadata, key []byte, h uint64, seqLimit base.SeqNum, s *sstable.GetScratch) ([]byte, base.Kind, bool, error) {
	if f.SmallestSeq >= seqLimit {
		return nil, 0, false, nil // every entry is newer than the read
	}
	return tableOf(f).r.Get(key, h, seqLimit, s)
}

func (d *DB) getResult(rs *readState, v []byte, kind base.Kind) ([]byte, io.Closer, error) {
	if kind == base.KindSet {
		return v, rs, nil
	}
	rs.unref()
	return nil, nil, ErrNotFound
}

func (d *DB) getTableResult(rs *readState, v []byte, kind base.Kind, err error) ([]byte, io.Closer, error) {
	if err != nil {
		rs.unref()
		return nil, nil, err
	}
	return d.getResult(rs, v, kind)
}
