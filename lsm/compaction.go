package lsm

import (
	"bytes"
	"fmt"
	"time"

	"github.com/tapewire/tapewire/lsm/internal/base"
	"github.com/tapewire/tapewire/lsm/internal/compact"
	"github.com/tapewire/tapewire/lsm/internal/manifest"
)

// compactLoop runs automatic compactions while any level is over its target.
func (d *DB) compactLoop() {
	defer d.wg.Done()
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		if d.closing || d.bgErr != nil {
			return
		}
		var c *compact.Compaction
		if !d.opts.DisableAutomaticCompactions && d.manualWait == 0 {
			c = compact.Pick(d.current, d.compactOptions(), &d.cursors, d.running)
		}
		if c == nil {
			d.bgCond.Wait()
			continue
		}
		if err := d.runCompactionLocked(c); err != nil {
			d.failLocked(err)
		}
	}
}

// runCompactionLocked performs c and installs its result. d.mu is held on
// entry and exit and released during I/O.
func (d *DB) runCompactionLocked(c *compact.Compaction) error {
	files := c.Files()
	for _, f := range files {
		f.Compacting = true
	}
	d.compactions++
	defer func() {
		for _, f := range files {
			f.Compacting = false
		}
		d.compactions--
		d.bgCond.Broadcast()
	}()
	start := time.Now()
	edit := &manifest.VersionEdit{}
	for i, in := range c.Inputs {
		for _, f := range in {
			edit.Deleted = append(edit.Deleted, manifest.DeletedFile{Level: c.StartLevel + i, FileNum: f.FileNum})
		}
	}
	if c.TrivialMove {
		for _, f := range c.Inputs[0] {
			edit.Added = append(edit.Added, manifest.NewFile{Level: c.OutputLevel, Meta: f})
		}
		if err := d.logAndApply(edit); err != nil {
			return err
		}
		d.metrics.trivialMoves.Add(1)
		return nil
	}
	if d.testHookRewrite != nil {
		d.testHookRewrite(c)
	}
	v := d.current
	v.Ref()
	snapshots := d.snapshots.copySeqs()
	d.running = append(d.running, c)
	d.mu.Unlock()
	metas, bytesIn, err := d.compactFiles(c, v, snapshots)
	v.Unref()
	d.mu.Lock()
	d.running = removeCompaction(d.running, c)
	if err != nil {
		return err
	}
	for _, m := range metas {
		edit.Added = append(edit.Added, manifest.NewFile{Level: c.OutputLevel, Meta: m})
	}
	if err := d.logAndApply(edit); err != nil {
		return err
	}
	var out uint64
	for _, m := range metas {
		out += m.Size
	}
	d.metrics.compactions.Add(1)
	d.metrics.compactionBytesIn.Add(bytesIn)
	d.metrics.compactionBytesOut.Add(out)
	d.metrics.compactionNanos.Add(int64(time.Since(start)))
	return nil
}

func removeCompaction(cs []*compact.Compaction, c *compact.Compaction) []*compact.Compaction {
	for i, x := range cs {
		if x == c {
			copy(cs[i:], cs[i+1:])
			cs[len(cs)-1] = nil
			return cs[:len(cs)-1]
		}
	}
	return cs
}

// compactFiles merges c's inputs into new tables for c.OutputLevel.
func (d *DB) compactFiles(c *compact.Compaction, v *manifest.Version, snapshots []base.SeqNum) ([]*manifest.FileMetadata, uint64, error) {
	var iters []base.InternalIterator
	var bytesIn uint64
	if c.StartLevel == 0 {
		for i := len(c.Inputs[0]) - 1; i >= 0; i-- {
			iters = append(iters, newLevelIter([]*manifest.FileMetadata{c.Inputs[0][i]}))
		}
	} else {
		iters = append(iters, newLevelIter(c.Inputs[0]))
	}
	if len(c.Inputs[1]) > 0 {
		iters = append(iters, newLevelIter(c.Inputs[1]))
	}
	for _, f := range c.Files() {
		bytesIn += f.Size
	}
	merged := newMergingIter(iters)
	defer merged.Close()
	elide := func(ukey []byte) bool { return !levelOverlapsBelow(v, c.OutputLevel, ukey) }
	it := compact.NewIter(merged, snapshots, elide)
	limiter := newRateLimiter(d.opts.CompactionRateBytesPerSec / int64(d.opts.CompactionConcurrency))
	metas, err := d.writeTables(it, d.targetFileSize(c.OutputLevel), limiter)
	if err != nil {
		return nil, 0, fmt.Errorf("lsm: compaction L%d→L%d: %w", c.StartLevel, c.OutputLevel, err)
	}
	return metas, bytesIn, nil
}

// Compact flushes the memtable and compacts every level's data overlapping
// [start, end] (user keys, inclusive; nil means unbounded) down to the
// deepest level holding data there, dropping what no reader can see —
// including tombstones, once they reach the bottom.
func (d *DB) Compact(start, end []byte) error {
	if start != nil && end != nil && bytes.Compare(start, end) > 0 {
		return fmt.Errorf("lsm: Compact range start %q is above end %q", start, end)
	}
	if err := d.Flush(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.manualWait++
	defer func() { d.manualWait-- }()
	last := -1
	for l := 0; l < manifest.NumLevels; l++ {
		if c, busy := compact.PickManual(d.current, l, start, end); c != nil || busy {
			last = l
		} else if l == manifest.NumLevels-1 && overlapsRange(d.current.Levels[l], start, end) {
			last = l
		}
	}
	if last == 0 {
		last = 1
	}
	for level := 0; level < last; level++ {
		for {
			if d.bgErr != nil {
				return d.bgErr
			}
			if d.closing {
				return ErrClosed
			}
			c, busy := compact.PickManual(d.current, level, start, end)
			if busy {
				d.bgCond.Wait()
				continue
			}
			if c == nil {
				break
			}
			if err := d.runCompactionLocked(c); err != nil {
				return d.failLocked(err)
			}
			break
		}
	}
	return nil
}

func overlapsRange(files []*manifest.FileMetadata, start, end []byte) bool {
	for _, f := range files {
		if (end == nil || bytes.Compare(f.SmallestUser(), end) <= 0) && (start == nil || bytes.Compare(f.LargestUser(), start) >= 0) {
			return true
		}
	}
	return false
}

// targetFileSize is the output split size for level (>= 1).
func (d *DB) targetFileSize(level int) uint64 {
	return d.opts.TargetFileSizeBytes << (level - 1)
}
