package appliance

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tapewire/tapewire/vfs"
)

// metrics holds the appliance's Prometheus registry. Counters the hot paths
// bump are plain atomics read at scrape time by the collector; the two
// histograms (fsync and commit latency) are lock-free Observe calls made
// once per write or per batch, never per frame.
type metrics struct {
	reg *prometheus.Registry

	fsyncDuration prometheus.Histogram // O_DSYNC write or fdatasync of the WAL
	commitLatency prometheus.Histogram // batch appended → durable seen by the committer
	ckptDuration  prometheus.Histogram

	walAppends    atomic.Uint64
	topicFailures atomic.Uint64
	checkpoints   atomic.Uint64
	lvcUpdates    atomic.Uint64
	lvcLost       atomic.Uint64
	lvcSkipped    atomic.Uint64
}

func newMetrics(n *Node) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.fsyncDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "tapewire_wal_fsync_duration_seconds",
		Help:    "Latency of WAL writes made durable: each O_DIRECT|O_DSYNC frame write (and any fdatasync).",
		Buckets: prometheus.ExponentialBuckets(0.00002, 2, 18), // 20 µs .. 2.6 s
	})
	m.commitLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "tapewire_storage_commit_duration_seconds",
		Help:    "Time from a storage batch's WAL append to the committer seeing it durable (then the rings' durable positions advance).",
		Buckets: prometheus.ExponentialBuckets(0.00002, 2, 18),
	})
	m.ckptDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "tapewire_checkpoint_duration_seconds",
		Help:    "Duration of checkpoints (memtable flush, covered LSN, WAL truncation).",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	})
	m.reg.MustRegister(m.fsyncDuration, m.commitLatency, m.ckptDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&nodeCollector{n: n})
	return m
}

// nodeCollector reads the node's counters at scrape time.
type nodeCollector struct{ n *Node }

var (
	descRingPublished  = prometheus.NewDesc("tapewire_ring_published_position_bytes", "End of the newest committed frame of a log topic.", []string{"topic"}, nil)
	descRingDurable    = prometheus.NewDesc("tapewire_ring_durable_position_bytes", "Durable position of a log topic (advanced after the WAL commit).", []string{"topic"}, nil)
	descRingLag        = prometheus.NewDesc("tapewire_ring_durable_lag_bytes", "Published minus durable position: bytes a reliable publisher runs ahead of durability.", []string{"topic"}, nil)
	descRingNextSeq    = prometheus.NewDesc("tapewire_ring_published_frames", "Frames committed to a log topic so far (its next sequence number).", []string{"topic"}, nil)
	descRingBackPress  = prometheus.NewDesc("tapewire_ring_backpressure_waits_total", "Claims of the topic's publisher that had to wait for subscribers.", []string{"topic"}, nil)
	descStoreFrames    = prometheus.NewDesc("tapewire_storage_frames_total", "Frames persisted to the event log.", []string{"topic"}, nil)
	descStoreBytes     = prometheus.NewDesc("tapewire_storage_frame_bytes_total", "Frame bytes persisted to the event log.", []string{"topic"}, nil)
	descQuarantine     = prometheus.NewDesc("tapewire_storage_quarantined_frames_total", "Malformed frames kept under q/ instead of the event log.", []string{"topic"}, nil)
	descDuplicates     = prometheus.NewDesc("tapewire_storage_duplicate_frames_total", "Frames read again after a restart that the store already held.", []string{"topic"}, nil)
	descDurableWaited  = prometheus.NewDesc("tapewire_storage_durable_deferred_total", "Durable-position advances that waited for the publisher to store the published position after a frame already durable in the WAL.", []string{"topic"}, nil)
	descLost           = prometheus.NewDesc("tapewire_storage_lost_frames_total", "Sequence numbers overwritten in a ring before they could be persisted (appliance down, subscription evicted).", []string{"topic"}, nil)
	descLastSeq        = prometheus.NewDesc("tapewire_storage_last_seq", "Sequence number of the newest frame persisted or quarantined.", []string{"topic"}, nil)
	descTopicFailed    = prometheus.NewDesc("tapewire_storage_topic_failed", "1 when the storage tenant stopped reading a topic after a ring error.", []string{"topic"}, nil)
	descWALDurable     = prometheus.NewDesc("tapewire_wal_durable_lsn", "Highest WAL LSN known durable.", nil, nil)
	descWALFrames      = prometheus.NewDesc("tapewire_wal_frames_total", "WAL frames (commit groups) written.", nil, nil)
	descWALRecords     = prometheus.NewDesc("tapewire_wal_records_total", "WAL records written.", nil, nil)
	descWALWritten     = prometheus.NewDesc("tapewire_wal_written_bytes_total", "Bytes written to WAL segments, padding included.", nil, nil)
	descWALAppends     = prometheus.NewDesc("tapewire_wal_appends_total", "Storage batches appended to the WAL.", nil, nil)
	descWALInflight    = prometheus.NewDesc("tapewire_wal_inflight_frames", "WAL frames written and not yet acknowledged.", nil, nil)
	descLSMFiles       = prometheus.NewDesc("tapewire_lsm_level_files", "SSTables per LSM level.", []string{"level"}, nil)
	descLSMBytes       = prometheus.NewDesc("tapewire_lsm_level_bytes", "Bytes per LSM level.", []string{"level"}, nil)
	descLSMMem         = prometheus.NewDesc("tapewire_lsm_memtable_bytes", "Arena bytes used by the mutable memtable.", nil, nil)
	descLSMImm         = prometheus.NewDesc("tapewire_lsm_immutable_memtables", "Full memtables waiting for flush.", nil, nil)
	descLSMFlushes     = prometheus.NewDesc("tapewire_lsm_flushes_total", "Memtable flushes.", nil, nil)
	descLSMCompactions = prometheus.NewDesc("tapewire_lsm_compactions_total", "Compactions.", nil, nil)
	descLSMStalls      = prometheus.NewDesc("tapewire_lsm_write_stalls_total", "Writes that waited for a flush or for L0 to shrink.", nil, nil)
	descLSMCovered     = prometheus.NewDesc("tapewire_lsm_covered_lsn", "Highest WAL LSN all of whose writes are in SSTables.", nil, nil)
	descLSMApplied     = prometheus.NewDesc("tapewire_lsm_applied_lsn", "Highest WAL LSN applied to the memtable.", nil, nil)
	descCheckpoints    = prometheus.NewDesc("tapewire_checkpoints_total", "Checkpoints completed.", nil, nil)
	descTopicFailures  = prometheus.NewDesc("tapewire_storage_topic_failures_total", "Topics the storage tenant stopped reading.", nil, nil)
	descLVCUpdates     = prometheus.NewDesc("tapewire_lastvalue_updates_total", "Quotes written to the last-value topic.", nil, nil)
	descLVCLost        = prometheus.NewDesc("tapewire_lastvalue_lost_frames_total", "Source frames the last-value tenant missed (it reads without gating the publisher).", nil, nil)
	descLVCSkipped     = prometheus.NewDesc("tapewire_lastvalue_skipped_frames_total", "Source frames that were not usable ticks (other types, malformed, too large).", nil, nil)
	descBackfillDone   = prometheus.NewDesc("tapewire_recovery_backfill_records_total", "WAL records whose event-log keys the background backfill after the last start has written.", nil, nil)
	descBackfillLeft   = prometheus.NewDesc("tapewire_recovery_backfill_pending_records", "WAL records whose event-log keys the backfill has still to write (0 once it is done; stays above 0 if it failed or was stopped).", nil, nil)
	descBackfillUp     = prometheus.NewDesc("tapewire_recovery_backfill_running", "1 while the event-log backfill after the last start runs.", nil, nil)
	descStorageUp      = prometheus.NewDesc("tapewire_storage_up", "1 while the storage tenant runs without a fatal error.", nil, nil)
)

// Describe sends nothing: the collector is unchecked (its label values,
// the topics, are known only once the node has opened).
func (c *nodeCollector) Describe(chan<- *prometheus.Desc) {}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	if s := n.storage; s != nil {
		for _, t := range s.topics {
			pub, dur := t.lg.Published(), t.lg.Durable()
			gauge(descRingPublished, float64(pub), t.name)
			gauge(descRingDurable, float64(dur), t.name)
			gauge(descRingLag, float64(pub-min(pub, dur)), t.name)
			gauge(descRingNextSeq, float64(t.lg.PublishedFrames()), t.name)
			counter(descRingBackPress, float64(t.lg.Publisher().BackPressureWait), t.name)
			counter(descStoreFrames, float64(t.frames.Load()), t.name)
			counter(descStoreBytes, float64(t.bytes.Load()), t.name)
			counter(descQuarantine, float64(t.quarantined.Load()), t.name)
			counter(descDuplicates, float64(t.duplicates.Load()), t.name)
			counter(descLost, float64(t.lost.Load()), t.name)
			counter(descDurableWaited, float64(t.durableDeferred.Load()), t.name)
			failed := 0.0
			if n.topicFailed(t) {
				failed = 1
			}
			gauge(descTopicFailed, failed, t.name)
		}
		if u := s.users; u != nil {
			counter(descStoreFrames, float64(u.frames.Load()), u.name)
		}
		up := 1.0
		if s.Err() != nil {
			up = 0
		}
		gauge(descStorageUp, up)
		counter(descWALAppends, float64(n.met.walAppends.Load()))
		gauge(descLSMApplied, float64(s.appliedLSN.Load()))
	}
	if b := n.BackfillStatus(); b != nil {
		counter(descBackfillDone, float64(b.Records))
		gauge(descBackfillLeft, float64(b.TotalRecords-b.Records))
		running := 0.0
		if b.State == "running" {
			running = 1
		}
		gauge(descBackfillUp, running)
	}
	for name, seq := range n.lastSeqSnapshot() {
		gauge(descLastSeq, float64(seq), name)
	}
	wm := n.wal.Metrics()
	gauge(descWALDurable, float64(wm.DurableLSN))
	counter(descWALFrames, float64(wm.Frames))
	counter(descWALRecords, float64(wm.Records))
	counter(descWALWritten, float64(wm.WrittenBytes))
	gauge(descWALInflight, float64(wm.InFlightFrames))
	lm := n.db.Metrics()
	for i, l := range lm.Levels {
		gauge(descLSMFiles, float64(l.Files), strconv.Itoa(i))
		gauge(descLSMBytes, float64(l.Bytes), strconv.Itoa(i))
	}
	gauge(descLSMMem, float64(lm.MemTableBytes))
	gauge(descLSMImm, float64(lm.ImmutableMemTables))
	counter(descLSMFlushes, float64(lm.Flushes))
	counter(descLSMCompactions, float64(lm.Compactions))
	counter(descLSMStalls, float64(lm.Stalls))
	gauge(descLSMCovered, float64(lm.CoveredLSN))
	counter(descCheckpoints, float64(n.met.checkpoints.Load()))
	counter(descTopicFailures, float64(n.met.topicFailures.Load()))
	counter(descLVCUpdates, float64(n.met.lvcUpdates.Load()))
	counter(descLVCLost, float64(n.met.lvcLost.Load()))
	counter(descLVCSkipped, float64(n.met.lvcSkipped.Load()))
}

// timedFS wraps the WAL's file system to time every durable write: the WAL
// writes frames with O_DIRECT|O_DSYNC, so a write's duration is the device's
// sync latency (tapewire_wal_fsync_duration_seconds, as etcd's
// etcd_disk_wal_fsync_duration_seconds).
type timedFS struct {
	vfs.FS
	hist prometheus.Histogram
}

func (fs *timedFS) Open(name string, flags vfs.Flag) (vfs.File, error) {
	f, err := fs.FS.Open(name, flags)
	if err != nil || flags&vfs.FlagDSync == 0 {
		return f, err
	}
	return &timedFile{File: f, hist: fs.hist}, nil
}

type timedFile struct {
	vfs.File
	hist prometheus.Histogram
}

func (f *timedFile) WriteAt(p []byte, off int64) (int, error) {
	start := time.Now()
	n, err := f.File.WriteAt(p, off)
	f.hist.Observe(time.Since(start).Seconds())
	return n, err
}

func (f *timedFile) Sync() error {
	start := time.Now()
	err := f.File.Sync()
	f.hist.Observe(time.Since(start).Seconds())
	return err
}
