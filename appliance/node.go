package appliance

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapewire/tapewire/lsm"
	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/shm"
	"github.com/tapewire/tapewire/vfs"
	"github.com/tapewire/tapewire/wal"
)

// Options are the parts of a node that are not configuration: where it
// logs, and (for tests) its file system.
type Options struct {
	// FS is the file system of the WAL and the store (default: the OS).
	FS vfs.FS
	// Log receives notices and recovery progress (default os.Stderr).
	Log io.Writer
}

// Node is one assembled appliance: the WAL, the store, the topics and the
// tenants. Open recovers it; Run serves until its context ends and then
// stops gracefully; Close releases what is left.
type Node struct {
	cfg   Config
	opts  Options
	logw  io.Writer
	logMu sync.Mutex

	fs      vfs.FS // the WAL's: base with its durable writes timed
	storeFS vfs.FS // the store's: base itself, so lsm can map its tables
	wal     *wal.Log
	db      *lsm.DB
	met     *metrics
	storage *storage
	lvc     *lastValueTenant
	users   *Users
	admin   *adminServer

	catalog  map[string]uint32 // topic name → id
	recovery RecoveryReport
	// bf is the event-log backfill Open prepared (nil: none); its fields
	// but the atomics and the channels are fixed once Open returns.
	bf *backfill

	ckptMu      sync.Mutex
	lastCkpt    atomic.Pointer[CheckpointResult]
	ckptWALBase int64
	ckptID      uint64

	startedAt time.Time
	onStop    []func()
	started   bool
	stopOnce  sync.Once
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
	ckptStop  chan struct{}
	ckptNow   chan chan error
}

// RecoveryReport says what Open found and did.
type RecoveryReport struct {
	WALVerdict      string        `json:"wal_verdict"`
	CoveredLSN      uint64        `json:"covered_lsn"`
	ReplayedRecords int64         `json:"replayed_records"`
	ReplayedBytes   int64         `json:"replayed_bytes"`
	ReplayDuration  time.Duration `json:"replay_duration_ns"`
	// ResumedBackfill: records whose event log a backfill of the previous
	// process left unfinished, taken over by this start's backfill (or,
	// with recovery.backfill_event_log off, rebuilt in Open).
	ResumedBackfill uint64 `json:"resumed_backfill_records,omitempty"`
	// EventLogBackfill: the background rebuild of the replayed range's
	// event log (recovery.backfill_event_log), filled in by Status.
	EventLogBackfill *BackfillStatus   `json:"event_log_backfill,omitempty"`
	CreatedTopics    []string          `json:"created_topics,omitempty"`
	ResumedTopics    map[string]uint64 `json:"resumed_topics,omitempty"` // topic → durable position resumed from
	Duration         time.Duration     `json:"duration_ns"`
}

func (n *Node) logf(format string, args ...any) {
	n.logMu.Lock()
	defer n.logMu.Unlock()
	fmt.Fprintf(n.logw, time.Now().Format("15:04:05.000")+" "+format+"\n", args...)
}

// Open recovers a node from its configuration: it opens the store, replays
// the WAL from the LSN the store's manifest covers, registers topics in the
// catalog, creates missing topics (sequence numbers continuing from the
// store), and attaches the storage tenant to every durable topic at its
// durable position, so frames published but not yet persisted when the
// previous process died are persisted now. Tenants start with Run.
func Open(cfg Config, opts Options) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	start := time.Now()
	n := &Node{cfg: cfg, opts: opts, logw: opts.Log, catalog: map[string]uint32{}}
	if n.logw == nil {
		n.logw = os.Stderr
	}
	base := opts.FS
	if base == nil {
		base = &vfs.OS{Logf: n.logf}
	}
	n.met = newMetrics(n)
	n.fs = &timedFS{FS: base, hist: n.met.fsyncDuration}
	// The store gets the file system unwrapped: lsm maps a table through
	// the file's descriptor or, on vfs.OS, by path, and a wrapper hides
	// both, so every table would be read into the heap instead (timedFS
	// times only O_DSYNC writes, which the store never makes).
	n.storeFS = base
	if err := n.open(); err != nil {
		if n.wal != nil && wal.IsCorruption(err) {
			// Damage the replay's reader found in a segment Open did not
			// scan: leave the log as it is (no close frame).
			n.wal.Fail(err)
		}
		n.closeStores()
		return nil, err
	}
	n.recovery.Duration = time.Since(start)
	n.startBackfill()
	return n, nil
}

func (n *Node) open() error {
	cfg := &n.cfg
	if err := n.fs.MkdirAll(cfg.Node.DataDir); err != nil {
		return fmt.Errorf("data directory %s: %w", cfg.Node.DataDir, err)
	}
	if _, inMemory, err := vfs.FileSystemType(cfg.Node.DataDir); err == nil && inMemory {
		n.logf("warning: node.data_dir %s is on tmpfs: nothing survives a reboot, and O_DIRECT/fsync mean nothing there", cfg.Node.DataDir)
	}
	db, err := lsm.Open(cfg.lsmDir(), n.lsmOptions())
	if err != nil {
		return fmt.Errorf("open store %s: %w", cfg.lsmDir(), err)
	}
	n.db = db
	n.storage = newStorage(cfg.Storage, nil, db, n.met, n.logf)
	n.storage.groupMemBytes = uint64(cfg.LSM.MemTableSizeBytes) / 4
	w, err := wal.Open(cfg.walDir(), n.walOptions())
	if err != nil {
		return fmt.Errorf("open WAL %s: %w", cfg.walDir(), err)
	}
	n.wal = w
	n.storage.wal = w
	if err := n.replay(); err != nil {
		return err
	}
	if err := n.loadCatalog(); err != nil {
		return err
	}
	// Everything the WAL holds is in the store now.
	n.storage.appliedLSN.Store(uint64(w.DurableLSN()))
	n.storage.lastAppended = w.DurableLSN()
	if err := n.attachTopics(); err != nil {
		return err
	}
	n.storage.allocate()
	n.users = newUsers(n)
	n.ckptWALBase = n.wal.Metrics().WrittenBytes
	return nil
}

func (n *Node) lsmOptions() lsm.Options {
	c := n.cfg.LSM
	bloom := c.BloomBitsPerKey
	if bloom == 0 {
		bloom = -1
	}
	return lsm.Options{
		FS: n.storeFS, Durability: lsm.ExternalLog,
		MemTableSizeBytes: c.MemTableSizeBytes, MaxImmutableMemTables: c.MaxImmutableMemTables,
		L0CompactionTrigger: c.L0CompactionTrigger, L0StopWritesThreshold: c.L0StopWritesThreshold,
		BaseLevelBytes: c.BaseLevelBytes, LevelMultiplier: c.LevelMultiplier,
		TargetFileSizeBytes: c.TargetFileSizeBytes, CompactionConcurrency: c.CompactionConcurrency,
		CompactionRateBytesPerSec: c.CompactionRateBytesPerSec, BlockSizeBytes: c.BlockSizeBytes,
		BloomBitsPerKey: bloom, BloomBitsPerKeyFor: storeBloomBits,
		Partition: storePartition, Logf: n.logf,
	}
}

func (n *Node) walOptions() wal.Options {
	c := n.cfg.WAL
	return wal.Options{
		FS: n.fs, SegmentSizeBytes: c.SegmentSizeBytes, MaxGroupBytes: c.MaxGroupBytes,
		// The replay reads every record from the store's covered LSN on
		// and verifies the frames as it goes (one read of the log).
		DeferSealedVerification: true,
		MaxInFlightFrames:       c.MaxInFlightFrames, PipelineFillBytes: c.PipelineFillBytes,
		MaxWaiters: c.MaxWaiters, PreparedSegments: c.PreparedSegments, RecycledSegments: max(c.RecycledSegments, -1),
		Notify: func(lsn wal.LSN, err error) { n.storage.notify(lsn, err) },
		Logf:   n.logf,
	}
}

// replayProgress renders one progress line: records, bytes, rate, ETA.
func replayProgress(done, total, bytes int64, elapsed time.Duration) string {
	sec := max(elapsed.Seconds(), 1e-9)
	rate := float64(bytes) / sec
	eta := time.Duration(0)
	if done > 0 && total > done {
		eta = time.Duration(float64(total-done) / (float64(done) / sec) * float64(time.Second))
	}
	return fmt.Sprintf("%d/%d records, %.1f MiB, %.1f MiB/s, %.0f records/s, elapsed %v, ETA %v",
		done, total, float64(bytes)/(1<<20), rate/(1<<20), float64(done)/sec, elapsed.Round(time.Millisecond), eta.Round(time.Millisecond))
}

// loadCatalog reads the topic catalog and registers every durable topic and
// the internal users topic it lacks (through the WAL, so the catalog
// recovers and replicates like the events it names).
func (n *Node) loadCatalog() error {
	lower, upper := []byte("m/topic/"), []byte("m/topic0")
	it := n.db.NewIter(&lsm.IterOptions{LowerBound: lower, UpperBound: upper})
	maxID := uint32(0)
	for ok := it.First(); ok; ok = it.Next() {
		v := it.Value()
		if len(v) < 4 {
			it.Close()
			return fmt.Errorf("catalog entry %q: %d-byte value, want 8", it.Key(), len(v))
		}
		id := binary.BigEndian.Uint32(v[0:4])
		n.catalog[string(it.Key()[len(lower):])] = id
		maxID = max(maxID, id)
	}
	err := it.Error()
	it.Close()
	if err != nil {
		return fmt.Errorf("read topic catalog: %w", err)
	}
	want := []string{UsersTopic}
	for _, t := range n.cfg.Topics {
		if t.Kind == KindLog && t.Durable {
			want = append(want, t.Name)
		}
	}
	var records []wal.Record
	for _, name := range want {
		if _, ok := n.catalog[name]; ok {
			continue
		}
		maxID++
		kind := catalogRing
		if name == UsersTopic {
			kind = catalogInternal
		}
		n.catalog[name] = maxID
		records = append(records, wal.Record{Type: recCatalog, Payload: catalogRecord(maxID, kind, name)})
	}
	if len(records) == 0 {
		return nil
	}
	last, err := n.wal.Append(context.Background(), records)
	if err != nil {
		return fmt.Errorf("register topics in the catalog: %w", err)
	}
	sb := &n.storage.build
	sb.reset()
	first := last - wal.LSN(len(records)) + 1
	for i, r := range records {
		if err := sb.add(r.Type, first+wal.LSN(i), r.Payload); err != nil {
			return err
		}
	}
	if err := n.db.ApplyAt(sb.batch(), uint64(last)); err != nil {
		return fmt.Errorf("register topics in the catalog: %w", err)
	}
	n.storage.appliedLSN.Store(uint64(last))
	n.storage.lastAppended = last
	return nil
}

// lastStoredSeq returns the newest sequence number the store holds for a
// topic id (event log or quarantine).
func (n *Node) lastStoredSeq(id uint32) (uint64, bool, error) {
	var best uint64
	found := false
	for _, space := range []byte{'e', 'q'} {
		lower, upper := topicPrefix(space, id)
		it := n.db.NewIter(&lsm.IterOptions{LowerBound: lower, UpperBound: upper})
		if it.Last() {
			if _, seq, ok := parseTopicSeqKey(it.Key()); ok && (!found || seq > best) {
				best, found = seq, true
			}
		}
		err := it.Error()
		it.Close()
		if err != nil {
			return 0, false, err
		}
	}
	// Frames whose e/ keys the backfill writes after Open count as
	// stored: sequence numbers continue after them, duplicates of them
	// are skipped.
	if n.bf != nil {
		if seq, ok := n.bf.maxSeq[id]; ok && (!found || seq > best) {
			best, found = seq, true
		}
	}
	return best, found, nil
}

// attachTopics creates missing topics and attaches the storage tenant to
// every durable one.
func (n *Node) attachTopics() error {
	s := n.storage
	n.recovery.ResumedTopics = map[string]uint64{}
	uid := n.catalog[UsersTopic]
	last, ok, err := n.lastStoredSeq(uid)
	if err != nil {
		return err
	}
	s.users = &internalTopic{id: uid, name: UsersTopic, lastSeq: last, haveSeq: ok}
	for i := range n.cfg.Topics {
		t := &n.cfg.Topics[i]
		o, err := n.cfg.shmOptions(t)
		if err != nil {
			return err
		}
		switch t.Kind {
		case KindLastValue:
			continue // the last-value tenant opens it
		case KindLog:
		}
		firstSeq := uint64(0)
		var id uint32
		var lastSeq uint64
		var haveSeq bool
		if t.Durable {
			id = n.catalog[t.Name]
			lastSeq, haveSeq, err = n.lastStoredSeq(id)
			if err != nil {
				return fmt.Errorf("topic %s: read the newest stored sequence number: %w", t.Name, err)
			}
			if haveSeq {
				firstSeq = lastSeq + 1
			}
		}
		created, err := ensureLog(o, t, firstSeq)
		if err != nil {
			return err
		}
		if created {
			n.recovery.CreatedTopics = append(n.recovery.CreatedTopics, t.Name)
			if firstSeq > 0 {
				n.logf("topic %s: created; sequence numbers continue from the store at %d", t.Name, firstSeq)
			}
		}
		if !t.Durable {
			continue
		}
		st, err := n.attachDurable(o, t, id, lastSeq, haveSeq)
		if err != nil {
			return err
		}
		st.index = len(s.topics)
		s.topics = append(s.topics, st)
	}
	return nil
}

// attachDurable subscribes the storage tenant to one durable topic at its
// durable position.
func (n *Node) attachDurable(o shm.Options, t *TopicConfig, id uint32, lastSeq uint64, haveSeq bool) (*storageTopic, error) {
	lg, err := ring.OpenLog(o, t.Name)
	if err != nil {
		return nil, fmt.Errorf("topic %s: %w", t.Name, err)
	}
	durable, nextSeq, mode := lg.Durable(), lg.PublishedFrames(), lg.Mode()
	lg.Close()
	if mode != ring.Reliable {
		return nil, fmt.Errorf("topic %s: the existing segment is lossy but the topic is declared durable: a lossy publisher overwrites frames before they are persisted; remove the segment so the appliance recreates it", t.Name)
	}
	if haveSeq && nextSeq < lastSeq+1 {
		return nil, fmt.Errorf("topic %s: the ring's next sequence number is %d but the store already holds up to %d: the segment was recreated by something other than the appliance; remove %s%s so the appliance recreates it with sequence numbers continuing from the store",
			t.Name, nextSeq, lastSeq, t.Name, ring.LogSuffix)
	}
	// One reliable subscription that reads ahead zero-copy and releases
	// ring space only once the frames are durable (ManualRelease): the
	// publisher can never overwrite a frame that is not yet durable while
	// the appliance lives.
	sub, err := ring.OpenSubscriber(o, t.Name, ring.SubscriberOptions{Resume: true, From: durable, ManualRelease: true})
	resumed := true
	if errors.Is(err, ring.ErrPositionTooOld) {
		// The publisher overwrote frames that were never made durable
		// while no appliance gated it (the old subscription was evicted).
		// The gap shows up as lost sequence numbers at the next frame.
		n.logf("topic %s: durable position %d is no longer in the ring (%v); resuming at the newest frame, the skipped sequence numbers are counted as lost", t.Name, durable, err)
		sub, err = ring.OpenSubscriber(o, t.Name, ring.SubscriberOptions{ManualRelease: true})
		resumed = false
	}
	if err != nil {
		return nil, fmt.Errorf("topic %s: subscribe at durable position %d: %w", t.Name, durable, err)
	}
	if resumed {
		n.recovery.ResumedTopics[t.Name] = durable
	}
	st := &storageTopic{
		id: id, name: t.Name, sub: sub, lg: sub.Log(),
		park:      newParkWords(sub.Log()),
		maxRecord: maxRecordBytes(sub.Log().MaxFrameBytes()),
		lastSeq:   lastSeq, haveSeq: haveSeq,
		durableAt: durable, durableTarget: durable,
	}
	if st.maxRecord > n.cfg.Storage.BatchMaxBytes {
		sub.Close()
		return nil, fmt.Errorf("topic %s: the existing segment's max frame (%d bytes) does not fit storage.batch_max_bytes = %d; raise it or recreate the topic", t.Name, sub.Log().MaxFrameBytes(), n.cfg.Storage.BatchMaxBytes)
	}
	return st, nil
}
