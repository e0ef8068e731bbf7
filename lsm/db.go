package lsm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapewire/tapewire/lsm/internal/base"
	"github.com/tapewire/tapewire/lsm/internal/compact"
	"github.com/tapewire/tapewire/lsm/internal/manifest"
	"github.com/tapewire/tapewire/lsm/internal/record"
	"github.com/tapewire/tapewire/lsm/sstable"
	"github.com/tapewire/tapewire/vfs"
	"github.com/tapewire/tapewire/wal"
)

// ErrNotFound is returned by Get when the key has no value.
var ErrNotFound = errors.New("lsm: not found")

// ErrClosed is returned by operations on a closed database.
var ErrClosed = errors.New("lsm: database is closed")

// ErrCorruption is wrapped by every error about damaged stored data; such
// errors are *base.CorruptionError values naming the file and offset.
var ErrCorruption = base.ErrCorruption

const (
	currentName    = "CURRENT"
	lockName       = "LOCK"
	walDirName     = "wal"
	tableSuffix    = ".sst"
	manifestPrefix = "MANIFEST-"
	// defaultManifestRolloverBytes: a manifest larger than this is replaced
	// by a fresh one holding a snapshot of the current version.
	defaultManifestRolloverBytes = 4 << 20
)

// DB is an LSM key-value store. All methods are safe for concurrent use.
type DB struct {
	opts Options
	fs   vfs.FS
	dir  string
	lock io.Closer
	log  *wal.Log // standalone mode only

	// shut is set when Close begins; writes check it under commitMu.
	shut atomic.Bool
	// visibleSeq is one above the largest sequence number readers may see.
	visibleSeq atomic.Uint64
	// readState is the current set of memtables and version.
	readState atomic.Pointer[readState]

	// commitMu orders writes: sequence numbers, log positions and memtable
	// reservations are assigned under it, in one order.
	commitMu    sync.Mutex
	nextSeq     base.SeqNum    // guarded by commitMu
	lastLSN     uint64         // external mode: highest LSN applied; guarded by commitMu
	pubMu       sync.Mutex     // guards pending
	pubCond     sync.Cond      // signalled when visibleSeq advances
	pending     []*commitEntry // assigned, not yet visible, in seq order, from pendingHead
	pendingHead int

	// mu guards everything below and the Compacting flags of files.
	mu          sync.Mutex
	bgCond      sync.Cond // background work, stalls and waiters
	mem         *memTable
	imm         []*memTable // oldest first
	current     *manifest.Version
	nextFileNum uint64
	coveredLSN  uint64      // highest LSN all of whose writes are in tables
	flushedSeq  base.SeqNum // largest seqnum in tables
	snapshots   snapshotList
	cursors     [manifest.NumLevels][]byte
	compactions int // running
	// running are the rewriting compactions in progress (their outputs may
	// land anywhere in their inputs' key range: moves must keep clear).
	running []*compact.Compaction
	// testHookRewrite, if set (by tests), sees every rewriting compaction
	// as it starts.
	testHookRewrite func(*compact.Compaction)
	flushing        bool
	manualWait      int // manual compactions waiting: automatic ones yield
	bgErr           error
	closing         bool
	closed          bool

	manifestFile vfs.File
	manifestNum  uint64
	manifestOff  int64
	// manifestRolloverBytes is defaultManifestRolloverBytes (tests lower it).
	manifestRolloverBytes int64

	deleter deleter
	// arenas supplies memtable buffers (see arenaPool).
	arenas arenaPool
	// preparing is set while a goroutine allocates the next arena ahead of
	// the rotation that will need it.
	preparing atomic.Bool
	// recycling counts the rotated memtables whose arenas have not come
	// back to the pool yet: while one will, no new arena is prepared (it
	// would be zeroed for nothing and the recycled one freed). Close
	// drives it below zero (the mutable memtable was never rotated).
	recycling atomic.Int32

	tableStats sstable.Stats
	metrics    dbMetrics

	wg sync.WaitGroup
}

// readState is what a reader needs: the memtables and the version, with a
// reference keeping the version's files open.
type readState struct {
	refs    atomic.Int32
	mem     *memTable
	imm     []*memTable // oldest first
	version *manifest.Version
}

// Close releases the reference taken by acquireReadState (it is the closer
// Get returns).
func (rs *readState) Close() error {
	rs.unref()
	return nil
}

func (rs *readState) unref() {
	if rs.refs.Add(-1) == 0 {
		rs.mem.unref()
		for _, m := range rs.imm {
			m.unref()
		}
		rs.version.Unref()
	}
}

// acquireReadState returns the current read state with a reference, or nil
// once the database is closed. Hot path: a CAS loop, no lock, no allocation. A state whose count already
// reached zero is dead and never revived, so the loop reloads the pointer.
func (d *DB) acquireReadState() *readState {
	for {
		rs := d.readState.Load()
		if rs == nil {
			return nil // closed
		}
		n := rs.refs.Load()
		if n > 0 && rs.refs.CompareAndSwap(n, n+1) {
			return rs
		}
	}
}

// updateReadStateLocked publishes a new read state. d.mu held.
func (d *DB) updateReadStateLocked() {
	rs := &readState{mem: d.mem, imm: append([]*memTable(nil), d.imm...), version: d.current}
	rs.refs.Store(1)
	d.mem.ref()
	for _, m := range d.imm {
		m.ref()
	}
	d.current.Ref()
	if old := d.readState.Swap(rs); old != nil {
		old.unref()
	}
}

func (d *DB) tablePath(num uint64) string {
	return filepath.Join(d.dir, fmt.Sprintf("%06d%s", num, tableSuffix))
}

func (d *DB) manifestPath(num uint64) string {
	return filepath.Join(d.dir, fmt.Sprintf("%s%06d", manifestPrefix, num))
}

// Open opens (creating if needed) the database in dir and recovers it: the
// manifest gives the tables, and in Standalone mode the log is replayed from
// the highest LSN they cover.
func Open(dir string, opts Options) (*DB, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	d := &DB{opts: o, fs: o.FS, dir: dir, arenas: arenaPool{size: o.MemTableSizeBytes},
		manifestRolloverBytes: defaultManifestRolloverBytes}
	d.pubCond.L = &d.pubMu
	d.bgCond.L = &d.mu
	if err := d.fs.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("lsm: create %s: %w", dir, err)
	}
	lock, err := d.fs.Lock(filepath.Join(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("lsm: lock %s (another process has the database open?): %w", dir, err)
	}
	d.lock = lock
	if err := d.recover(); err != nil {
		d.abandon()
		return nil, err
	}
	d.deleter.start(d)
	d.wg.Add(1 + o.CompactionConcurrency)
	go d.flushLoop()
	for i := 0; i < o.CompactionConcurrency; i++ {
		go d.compactLoop()
	}
	d.mu.Lock()
	d.bgCond.Broadcast()
	d.mu.Unlock()
	return d, nil
}

// abandon releases what a failed Open acquired.
func (d *DB) abandon() {
	if d.log != nil {
		_ = d.log.Close()
	}
	if rs := d.readState.Swap(nil); rs != nil {
		rs.unref()
	}
	if d.mem != nil {
		d.releaseMemTablesLocked()
	}
	if d.current != nil {
		d.closing = true
		for _, files := range d.current.Levels {
			for _, f := range files {
				if f.TableHandle != nil {
					_ = tableOf(f).close()
				}
			}
		}
	}
	if d.manifestFile != nil {
		_ = d.manifestFile.Close()
	}
	_ = d.lock.Close()
}

// recoveredState accumulates the manifest's edits.
type recoveredState struct {
	files       map[uint64]manifest.NewFile
	nextFileNum uint64
	lastSeq     base.SeqNum
	lastLSN     uint64
}

func (d *DB) readManifest() (*recoveredState, uint64, error) {
	st := &recoveredState{files: map[uint64]manifest.NewFile{}, nextFileNum: 1}
	cur, err := d.readWhole(filepath.Join(d.dir, currentName))
	if errors.Is(err, os.ErrNotExist) {
		return st, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	name := strings.TrimSuffix(string(cur), "\n")
	numStr, ok := strings.CutPrefix(name, manifestPrefix)
	num, perr := strconv.ParseUint(numStr, 10, 64)
	if !ok || perr != nil || strings.ContainsAny(name, "/\\") {
		return nil, 0, base.Corruptf(filepath.Join(d.dir, currentName), 0, "does not name a manifest: %q", cur)
	}
	path := d.manifestPath(num)
	data, err := d.readWhole(path)
	if err != nil {
		return nil, 0, fmt.Errorf("lsm: manifest named by CURRENT: %w", err)
	}
	r := record.NewReader(path, data)
	for {
		payload, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, err
		}
		var e manifest.VersionEdit
		if err := e.Decode(payload); err != nil {
			return nil, 0, base.Corruptf(path, r.Offset(), "%v", err)
		}
		st.apply(&e)
	}
	if r.TornTail() {
		d.opts.Logf("lsm: manifest %s ends in a torn record at %d (an edit never acknowledged); ignored", path, r.Offset())
	}
	return st, num, nil
}

func (st *recoveredState) apply(e *manifest.VersionEdit) {
	for _, df := range e.Deleted {
		delete(st.files, df.FileNum)
	}
	for _, a := range e.Added {
		st.files[a.Meta.FileNum] = a
	}
	st.nextFileNum = max(st.nextFileNum, e.NextFileNum)
	st.lastSeq = max(st.lastSeq, e.LastSeq)
	if e.HasLastLSN {
		st.lastLSN = max(st.lastLSN, e.LastLSN)
	}
}

func (d *DB) readWhole(path string) ([]byte, error) {
	f, err := d.fs.Open(path, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	data := make([]byte, st.Size)
	if n, err := f.ReadAt(data, 0); n != len(data) {
		return nil, fmt.Errorf("lsm: read %s: %d of %d bytes: %w", path, n, len(data), err)
	}
	return data, nil
}

func (d *DB) recover() error {
	st, oldManifest, err := d.readManifest()
	if err != nil {
		return err
	}
	edit := &manifest.VersionEdit{}
	for _, nf := range st.files {
		edit.Added = append(edit.Added, nf)
		st.nextFileNum = max(st.nextFileNum, nf.Meta.FileNum+1)
	}
	sort.Slice(edit.Added, func(i, j int) bool { return edit.Added[i].Meta.FileNum < edit.Added[j].Meta.FileNum })
	empty := manifest.NewVersion(d.obsoleteFiles)
	v, err := empty.Apply(edit)
	if err != nil {
		return base.Corruptf(d.manifestPath(oldManifest), 0, "recovered version: %v", err)
	}
	d.current = v
	for _, nf := range edit.Added {
		if err := d.openTable(nf.Meta); err != nil {
			return err
		}
	}
	d.nextFileNum = st.nextFileNum
	d.flushedSeq = st.lastSeq
	d.coveredLSN = st.lastLSN
	d.nextSeq = st.lastSeq + 1
	d.lastLSN = st.lastLSN
	d.visibleSeq.Store(uint64(d.nextSeq))
	if err := d.removeOrphans(st.files); err != nil {
		return err
	}
	if err := d.createManifest(); err != nil {
		return err
	}
	if oldManifest != 0 {
		if err := d.fs.Remove(d.manifestPath(oldManifest)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("lsm: remove old manifest: %w", err)
		}
	}
	mem, err := d.newMemTable()
	if err != nil {
		return err
	}
	d.mem = mem
	d.updateReadStateLocked()
	if d.opts.Durability == Standalone {
		return d.replayLog()
	}
	return nil
}

// removeOrphans deletes tables no manifest edit references (left by a flush
// or compaction that crashed before its edit was durable), stale manifests
// and temporary files.
func (d *DB) removeOrphans(live map[uint64]manifest.NewFile) error {
	names, err := d.fs.List(d.dir)
	if err != nil {
		return fmt.Errorf("lsm: list %s: %w", d.dir, err)
	}
	removed := 0
	for _, name := range names {
		var orphan bool
		switch {
		case strings.HasSuffix(name, tableSuffix):
			num, err := strconv.ParseUint(strings.TrimSuffix(name, tableSuffix), 10, 64)
			_, isLive := live[num]
			orphan = err == nil && !isLive
		case strings.HasPrefix(name, manifestPrefix), strings.HasSuffix(name, ".tmp"):
			orphan = true
		}
		if !orphan {
			continue
		}
		if err := d.fs.Remove(filepath.Join(d.dir, name)); err != nil {
			return fmt.Errorf("lsm: remove orphan %s: %w", name, err)
		}
		d.opts.Logf("lsm: removed orphan %s", name)
		removed++
	}
	if removed > 0 {
		return d.fs.SyncDir(d.dir)
	}
	return nil
}

// createManifest starts a new manifest holding the whole current state and
// points CURRENT at it (tmp + sync + rename + directory sync). d.mu held or
// single-threaded.
func (d *DB) createManifest() error {
	num := d.nextFileNum
	d.nextFileNum++
	path := d.manifestPath(num)
	f, err := d.fs.Open(path, vfs.FlagWrite|vfs.FlagCreate|vfs.FlagTruncate)
	if err != nil {
		return fmt.Errorf("lsm: create manifest: %w", err)
	}
	snap := d.current.Edit()
	snap.NextFileNum = d.nextFileNum
	snap.LastSeq = d.flushedSeq
	snap.LastLSN, snap.HasLastLSN = d.coveredLSN, true
	buf, err := record.Append(nil, 0, snap.Encode(nil))
	if err == nil {
		_, err = f.WriteAt(buf, 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = d.setCurrent(num)
	}
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("lsm: install manifest %s: %w", path, err)
	}
	old, oldNum := d.manifestFile, d.manifestNum
	d.manifestFile, d.manifestNum, d.manifestOff = f, num, int64(len(buf))
	if old != nil {
		_ = old.Close()
		if err := d.fs.Remove(d.manifestPath(oldNum)); err != nil {
			d.opts.Logf("lsm: remove old manifest %06d: %v", oldNum, err)
		}
	}
	return nil
}

func (d *DB) setCurrent(num uint64) error {
	tmp := filepath.Join(d.dir, currentName+".tmp")
	f, err := d.fs.Open(tmp, vfs.FlagWrite|vfs.FlagCreate|vfs.FlagTruncate)
	if err != nil {
		return err
	}
	_, err = f.WriteAt([]byte(fmt.Sprintf("%s%06d\n", manifestPrefix, num)), 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = d.fs.Rename(tmp, filepath.Join(d.dir, currentName))
	}
	if err == nil {
		err = d.fs.SyncDir(d.dir)
	}
	return err
}

// logAndApply makes edit durable in the manifest and installs the version it
// produces. d.mu held. Counters in the edit are filled in here.
func (d *DB) logAndApply(edit *manifest.VersionEdit) error {
	nv, err := d.current.Apply(edit)
	if err != nil {
		return err
	}
	edit.NextFileNum = d.nextFileNum
	edit.LastSeq = d.flushedSeq
	edit.LastLSN, edit.HasLastLSN = d.coveredLSN, true
	buf, err := record.Append(nil, uint64(d.manifestOff), edit.Encode(nil))
	if err == nil {
		_, err = d.manifestFile.WriteAt(buf, d.manifestOff)
	}
	if err == nil {
		err = d.manifestFile.Sync()
	}
	if err != nil {
		// The edit may have reached the disk even though the write or sync
		// failed, so the files it adds must not be deleted: nv is dropped
		// without releasing its references (a file it alone holds becomes an
		// orphan the next Open removes if the edit did not persist). The
		// manifest may now end in a partial record: nothing more can be
		// appended safely, and the database stops accepting work.
		return d.failLocked(fmt.Errorf("lsm: write manifest %06d: %w", d.manifestNum, err))
	}
	d.manifestOff += int64(len(buf))
	old := d.current
	d.current = nv
	d.updateReadStateLocked()
	old.Unref()
	if d.manifestOff > d.manifestRolloverBytes {
		if err := d.createManifest(); err != nil {
			return d.failLocked(err)
		}
	}
	return nil
}

// failLocked records a background error that stops the database: writes
// and background work return it from then on. d.mu held.
func (d *DB) failLocked(err error) error {
	if d.bgErr == nil {
		d.bgErr = err
		d.opts.Logf("lsm: %v", err)
	}
	d.bgCond.Broadcast()
	return d.bgErr
}

// obsoleteFiles receives files that left the last version holding them.
func (d *DB) obsoleteFiles(files []*manifest.FileMetadata) {
	d.deleter.enqueue(files)
}

// CoveredLSN is the highest log position all of whose writes are in tables:
// in ExternalLog mode the caller replays its log from CoveredLSN()+1 after
// Open and may truncate its log up to it.
func (d *DB) CoveredLSN() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.coveredLSN
}

// Close stops background work and releases the database. Writes not yet in
// tables are in the log (Standalone) or the caller's log (ExternalLog).
// Iterators and values still open keep their tables mapped until closed.
func (d *DB) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	d.closing = true
	d.shut.Store(true)
	d.bgCond.Broadcast()
	for d.flushing || d.compactions > 0 {
		d.bgCond.Wait()
	}
	d.closed = true
	d.bgCond.Broadcast()
	d.mu.Unlock()
	d.wg.Wait()
	var err error
	if d.log != nil {
		err = d.log.Close()
	}
	d.deleter.stop()
	// Holding commitMu, no write is between its shut check and its memtable
	// reservation; releaseMemTablesLocked waits for those that reserved.
	d.commitMu.Lock()
	defer d.commitMu.Unlock()
	d.mu.Lock()
	if rs := d.readState.Swap(nil); rs != nil {
		rs.unref()
	}
	d.releaseMemTablesLocked()
	d.current.Unref()
	if cerr := d.manifestFile.Close(); err == nil {
		err = cerr
	}
	bgErr := d.bgErr
	d.mu.Unlock()
	if lerr := d.lock.Close(); err == nil {
		err = lerr
	}
	if err == nil && bgErr != nil && !errors.Is(bgErr, ErrClosed) {
		err = bgErr
	}
	return err
}

// deleter closes obsolete tables and deletes their files, paced to
// Options.DeletionRateBytesPerSec. While the database is closing, tables
// are only closed: files that were live stay, and files that became obsolete
// but were not yet deleted are orphans removed by the next Open.
type deleter struct {
	d       *DB
	mu      sync.Mutex
	cond    sync.Cond
	queue   []*manifest.FileMetadata
	pending atomic.Int64 // files enqueued and not yet handled
	stopped bool
	done    chan struct{}
}

func (dl *deleter) start(d *DB) {
	dl.d = d
	dl.cond.L = &dl.mu
	dl.done = make(chan struct{})
	go dl.loop()
}

func (dl *deleter) enqueue(files []*manifest.FileMetadata) {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	if dl.done == nil || dl.stopped {
		// Not running (recovery, or after Close): close tables only.
		for _, f := range files {
			if f.TableHandle != nil {
				_ = tableOf(f).close()
			}
		}
		return
	}
	dl.queue = append(dl.queue, files...)
	dl.pending.Add(int64(len(files)))
	dl.cond.Signal()
}

func (dl *deleter) stop() {
	dl.mu.Lock()
	dl.stopped = true
	dl.cond.Signal()
	dl.mu.Unlock()
	<-dl.done
}

func (dl *deleter) loop() {
	defer close(dl.done)
	d := dl.d
	for {
		dl.mu.Lock()
		for len(dl.queue) == 0 && !dl.stopped {
			dl.cond.Wait()
		}
		batch := dl.queue
		dl.queue = nil
		stopped := dl.stopped
		dl.mu.Unlock()
		for _, f := range batch {
			if f.TableHandle != nil {
				_ = tableOf(f).close()
			}
			if stopped {
				continue
			}
			start := time.Now()
			if err := d.fs.Remove(d.tablePath(f.FileNum)); err != nil && !errors.Is(err, os.ErrNotExist) {
				d.opts.Logf("lsm: delete obsolete table %06d: %v", f.FileNum, err)
			}
			d.metrics.filesDeleted.Add(1)
			if rate := d.opts.DeletionRateBytesPerSec; rate > 0 {
				want := time.Duration(float64(f.Size) / float64(rate) * float64(time.Second))
				if spent := time.Since(start); want > spent {
					time.Sleep(want - spent)
				}
			}
		}
		dl.pending.Add(-int64(len(batch)))
		if stopped && len(batch) == 0 {
			return
		}
	}
}

// levelOverlapsBelow reports whether any level deeper than level holds a
// file whose range contains ukey (v is the compaction's input version).
func levelOverlapsBelow(v *manifest.Version, level int, ukey []byte) bool {
	for l := level + 1; l < manifest.NumLevels; l++ {
		if v.FindFile(l, ukey) != nil {
			return true
		}
	}
	return false
}

func (d *DB) compactOptions() compact.Options {
	return compact.Options{L0Trigger: d.opts.L0CompactionTrigger, L0FileThreshold: d.opts.L0CompactionFileThreshold,
		BaseLevelBytes: d.opts.BaseLevelBytes, LevelMultiplier: d.opts.LevelMultiplier}
}

// releaseMemTablesLocked drops the database's references to its memtables
// once their writers are done, and closes the arena pool; a memtable still
// held by an open iterator or Get value is freed when that is released.
func (d *DB) releaseMemTablesLocked() {
	for _, m := range append([]*memTable{d.mem}, d.imm...) {
		m.waitWriters()
		m.unref()
	}
	d.mem, d.imm = nil, nil
	d.arenas.close()
}

// newMemTable makes a memtable over a spare arena buffer if there is one,
// else a new one.
func (d *DB) newMemTable() (*memTable, error) {
	buf, err := d.arenas.get()
	if err != nil {
		return nil, err
	}
	return newMemTable(buf, d.recycleArena)
}

// prepareArena allocates and faults in the next memtable's buffer off the
// commit path.
func (d *DB) prepareArena() {
	if buf, err := allocArena(d.opts.MemTableSizeBytes, true); err == nil {
		d.arenas.put(buf)
	}
	d.preparing.Store(false)
}

// recycleArena receives the buffer of a dead memtable.
func (d *DB) recycleArena(buf []byte) {
	d.recycling.Add(-1)
	if d.arenas.put(buf) {
		d.metrics.arenasRecycled.Add(1)
	}
}
