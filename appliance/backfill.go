package appliance

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tapewire/tapewire/vfs"
	"github.com/tapewire/tapewire/wal"
)

// The event-log backfill (recovery.backfill_event_log, the default).
//
// Open's replay applies only the state, quarantine and catalog keys of the
// WAL records it replays; the event-log keys (e/) of that range — most of
// the bytes — are written afterwards, in the background, by a backfill that
// reads the same WAL records again and writes their e/ keys straight into
// SSTables (lsm.Ingest). The store's covered LSN then runs ahead of its
// event log: a flush during or after the replay makes CoveredLSN claim
// records whose e/ keys are not in any table yet. The backfill marker
// records that claim's exception durably:
//
//	<node.data_dir>/EVENTLOG-BACKFILL   "tapewire-event-log-backfill v1 from=<LSN> crc=<crc32c>\n"
//
// It is written (temporary file, fsync, rename, directory sync) before the
// replay applies anything, so it is durable before any flush can cover a
// replayed LSN, and removed (remove, directory sync) only once every
// backfill table is in the manifest (Ingest returns after its manifest edit
// is durable). While it exists:
//
//   - the event log holds every e/ key up to from-1 and from the live
//     applier's records on, and the WAL still holds from onwards: a
//     checkpoint truncates the WAL before min(covered+1, from), never past
//     from (Checkpoint);
//   - a start that finds it with from ≤ the covered LSN (a crash or stop
//     during a backfill) reads [from, covered] once for its topics' newest
//     sequence numbers and keeps the marker's from: its own backfill then
//     rebuilds [from, the WAL's end at Open] (with backfill_event_log off,
//     Open rebuilds [from, covered] itself and removes the marker);
//   - GET /v1/events for a topic range the running backfill has not
//     written yet waits for it (bounded by the request) or answers 503
//     with Retry-After, never a silent gap (waitEventLog);
//   - the store's newest sequence number of a topic is the larger of the
//     newest stored one and the newest the replay saw (lastStoredSeq), so
//     sequence numbers never go backwards and duplicates are still
//     skipped; live e/ keys therefore lie after every backfilled key of
//     their topic, and Ingest never overlaps the memtable.
//
// Ingest records no LSN and re-ingesting a key writes the same bytes with
// a newer sequence number, so a backfill run twice (a crash after some of
// its tables were installed) leaves each event exactly once in the event
// log (an iterator returns each key once).

// backfillMarkerName is the marker file in node.data_dir.
const backfillMarkerName = "EVENTLOG-BACKFILL"

const backfillMarkerPrefix = "tapewire-event-log-backfill v1 from="

// backfillReadWait bounds how long GET /v1/events waits for a running
// backfill before it answers 503 (the request's own context may end
// sooner).
// (Tests shorten it.)
var backfillReadWait atomic.Int64

func init() { backfillReadWait.Store(int64(10 * time.Second)) }

// backfillGroupHook, if set (tests: fault injection), runs after each
// group the background backfill ingested, with the number ingested so far
// and the backfill's stop channel; an error it returns fails the backfill.
var backfillGroupHook func(groups int, stop <-chan struct{}) error

func (n *Node) backfillMarkerPath() string {
	return filepath.Join(n.cfg.Node.DataDir, backfillMarkerName)
}

func markerText(from uint64) string {
	body := backfillMarkerPrefix + strconv.FormatUint(from, 10)
	return fmt.Sprintf("%s crc=%08x\n", body, crc32.Checksum([]byte(body), crc32.MakeTable(crc32.Castagnoli)))
}

// readBackfillMarker returns the pending backfill's first LSN, if a marker
// exists. A marker that does not parse is an error naming the file: the
// event log it describes cannot be trusted to be complete.
func readBackfillMarker(fs vfs.FS, path string) (uint64, bool, error) {
	f, err := fs.Open(path, 0)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("event-log backfill marker %s: %w", path, err)
	}
	defer f.Close()
	buf := make([]byte, 256)
	k, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, false, fmt.Errorf("event-log backfill marker %s: %w", path, err)
	}
	text := string(buf[:k])
	bad := fmt.Errorf("event-log backfill marker %s holds %q, not %q: it says the event log of a WAL range is still to be rebuilt, but not which; restore it, or remove it only after moving the data directory aside", path, text, markerText(0)[:len(backfillMarkerPrefix)]+"<LSN> crc=<crc32c>")
	body, _, ok := strings.Cut(strings.TrimSuffix(text, "\n"), " crc=")
	if !ok || !strings.HasPrefix(body, backfillMarkerPrefix) {
		return 0, false, bad
	}
	from, err := strconv.ParseUint(body[len(backfillMarkerPrefix):], 10, 64)
	if err != nil || from == 0 || markerText(from) != text {
		return 0, false, bad
	}
	return from, true, nil
}

// writeBackfillMarker makes the marker say from, durably (temporary file,
// fsync, rename, directory sync).
func writeBackfillMarker(fs vfs.FS, path string, from uint64) error {
	tmp := path + ".tmp"
	f, err := fs.Open(tmp, vfs.FlagWrite|vfs.FlagCreate|vfs.FlagTruncate)
	if err != nil {
		return fmt.Errorf("write event-log backfill marker %s: %w", tmp, err)
	}
	text := []byte(markerText(from))
	if _, err := f.WriteAt(text, 0); err != nil {
		f.Close()
		return fmt.Errorf("write event-log backfill marker %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync event-log backfill marker %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close event-log backfill marker %s: %w", tmp, err)
	}
	if err := fs.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename event-log backfill marker to %s: %w", path, err)
	}
	if err := fs.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("sync %s: %w", filepath.Dir(path), err)
	}
	return nil
}

// removeBackfillMarker removes the marker durably.
func removeBackfillMarker(fs vfs.FS, path string) error {
	if err := fs.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove event-log backfill marker %s: %w", path, err)
	}
	if err := fs.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("sync %s: %w", filepath.Dir(path), err)
	}
	return nil
}

// backfill is one background rebuild of the event log of WAL LSNs
// [from, through], the range Open's replay applied without its e/ keys.
type backfill struct {
	from, through wal.LSN
	total         int64             // records in the range
	maxSeq        map[uint32]uint64 // newest frame sequence number per topic id in the range
	openReturned  time.Time

	records, bytes atomic.Int64 // progress
	markerGone     atomic.Bool  // the marker was removed: the WAL range is no longer needed

	stop     chan struct{} // closed to cancel (Close)
	done     chan struct{} // closed when the backfill ended (err set before)
	err      error
	duration time.Duration
}

func newBackfill(from, through wal.LSN, seen topicSeqs) *backfill {
	return &backfill{from: from, through: through, total: int64(through - from + 1),
		maxSeq: seen.toMap(), stop: make(chan struct{}), done: make(chan struct{})}
}

// scanFrameSeqs notes the newest sequence number per topic of the frame
// records in WAL LSNs [from, through] (a resumed backfill's range, whose
// state the store already holds), verifying the records as it reads.
func (n *Node) scanFrameSeqs(from, through wal.LSN, seen *topicSeqs) error {
	r, err := n.wal.NewReader(from)
	if err != nil {
		return fmt.Errorf("read WAL from LSN %d: %w", from, err)
	}
	defer r.Close()
	for next := from; next <= through; next++ {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("the WAL ends before LSN %d", next)
		} else if err == nil && rec.LSN != next {
			err = fmt.Errorf("WAL record %d where %d was expected", rec.LSN, next)
		}
		if err != nil {
			return fmt.Errorf("read the unfinished backfill's range: %w", err)
		}
		if rec.Type != recFrame {
			continue
		}
		d, err := decodeRecord(rec.Type, rec.LSN, rec.Payload)
		if err != nil {
			return err
		}
		seen.note(d.topic, d.seq)
	}
	return nil
}

// BackfillStatus is the event-log backfill's progress (/v1/status,
// recovery.event_log_backfill).
type BackfillStatus struct {
	State        string  `json:"state"` // running, done, failed, stopped
	FromLSN      uint64  `json:"from_lsn"`
	ThroughLSN   uint64  `json:"through_lsn"`
	Records      int64   `json:"records"`
	TotalRecords int64   `json:"total_records"`
	Bytes        int64   `json:"bytes"`
	Percent      float64 `json:"percent"`
	DurationNs   int64   `json:"duration_ns,omitempty"` // from Open's return to the end
	Error        string  `json:"error,omitempty"`
}

// errBackfillStopped ends a backfill cancelled by Close: the marker stays,
// the next start rebuilds the range.
var errBackfillStopped = errors.New("event-log backfill stopped by the node's shutdown; the next start rebuilds the rest")

func (b *backfill) status() *BackfillStatus {
	st := &BackfillStatus{State: "running", FromLSN: uint64(b.from), ThroughLSN: uint64(b.through),
		Records: b.records.Load(), TotalRecords: b.total, Bytes: b.bytes.Load()}
	if b.total > 0 {
		st.Percent = 100 * float64(st.Records) / float64(b.total)
	}
	select {
	case <-b.done:
		st.DurationNs = int64(b.duration)
		switch {
		case b.err == nil:
			st.State = "done"
		case errors.Is(b.err, errBackfillStopped):
			st.State = "stopped"
		default:
			st.State, st.Error = "failed", b.err.Error()
		}
	default:
	}
	return st
}

// BackfillStatus returns the event-log backfill's progress, or nil when
// Open started none.
func (n *Node) BackfillStatus() *BackfillStatus {
	if n.bf == nil {
		return nil
	}
	return n.bf.status()
}

// WaitBackfill waits until the event-log backfill Open started has ended
// (at once if there is none) and returns its error.
func (n *Node) WaitBackfill(ctx context.Context) error {
	if n.bf == nil {
		return nil
	}
	select {
	case <-n.bf.done:
		return n.bf.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// backfillPendingFrom returns the first LSN whose WAL records a backfill
// still needs (0: none), for the checkpoint's truncation.
func (n *Node) backfillPendingFrom() wal.LSN {
	if n.bf == nil || n.bf.markerGone.Load() {
		return 0
	}
	return n.bf.from
}

// startBackfill runs the backfill Open prepared, in the background.
func (n *Node) startBackfill() {
	b := n.bf
	if b == nil {
		return
	}
	b.openReturned = time.Now()
	n.logf("recovery: Open returned after %v; the event log of WAL LSN %d..%d (%d records) is being rebuilt in the background (/v1/events waits for ranges not yet rebuilt)", n.recovery.Duration.Round(time.Millisecond), b.from, b.through, b.total)
	go func() {
		err := n.rebuildEventLog(b.from, b.through, b.stop, b)
		if err == nil {
			err = removeBackfillMarker(n.storeFS, n.backfillMarkerPath())
			if err == nil {
				b.markerGone.Store(true)
			}
		}
		b.duration = time.Since(b.openReturned)
		b.err = err
		close(b.done)
		switch {
		case err == nil:
			n.logf("recovery: event-log backfill finished: %d records (%.1f MiB) of WAL LSN %d..%d in the event log %v after Open returned",
				b.records.Load(), float64(b.bytes.Load())/(1<<20), b.from, b.through, b.duration.Round(time.Millisecond))
		case errors.Is(err, errBackfillStopped):
			n.logf("recovery: %v (%d of %d records done)", err, b.records.Load(), b.total)
		default:
			n.logf("recovery: event-log backfill failed: %v; /v1/events refuses the range, the next start retries it", err)
		}
	}()
}

// stopBackfill cancels a running backfill and waits for it, at most
// patience for it to finish on its own first.
func (n *Node) stopBackfill(patience time.Duration) {
	b := n.bf
	if b == nil || b.openReturned.IsZero() {
		return
	}
	if patience > 0 {
		t := time.NewTimer(patience)
		select {
		case <-b.done:
		case <-t.C:
		}
		t.Stop()
	}
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	<-b.done
}

// waitEventLog makes /v1/events never return a gap: a request for topic
// id from sequence number from that the backfill has not written yet waits
// for it, at most until ctx ends or backfillReadWait; then it returns an
// error saying so (the caller answers 503 with Retry-After).
func (n *Node) waitEventLog(ctx context.Context, id uint32, from uint64) error {
	b := n.bf
	if b == nil {
		return nil
	}
	if newest, ok := b.maxSeq[id]; !ok || from > newest {
		return nil // only events the live applier writes
	}
	t := time.NewTimer(time.Duration(backfillReadWait.Load()))
	defer t.Stop()
	select {
	case <-b.done:
		if b.err != nil {
			return fmt.Errorf("the event log of this range (WAL LSN %d..%d) could not be rebuilt after the restart: %v; it is rebuilt at the next start", b.from, b.through, b.err)
		}
		return nil
	case <-ctx.Done():
	case <-t.C:
	}
	st := b.status()
	return fmt.Errorf("the event log up to sequence number %d of this topic is still being rebuilt from the WAL after a restart (event-log backfill %.0f%% done, %d of %d records); retry", b.maxSeq[id], st.Percent, st.Records, st.TotalRecords)
}

// backfillGroupBytes is the e/ keys and frames one ingest of the backfill
// writes (one table per topic and group, cut at the target file size).
func (n *Node) backfillGroupBytes() int {
	return max(int(n.cfg.LSM.MemTableSizeBytes/2), 1<<20)
}

// rebuildEventLog writes the e/ keys of the frame records in WAL LSNs
// [from, through] into SSTables (lsm.Ingest). A reader goroutine decodes
// the next group while the last is ingested. b, if not nil, gets the
// progress. It returns errBackfillStopped once stop is closed.
func (n *Node) rebuildEventLog(from, through wal.LSN, stop <-chan struct{}, b *backfill) error {
	if through < from {
		return nil
	}
	r, err := n.wal.NewReader(from)
	if err != nil {
		return fmt.Errorf("event-log backfill: read WAL from LSN %d: %w", from, err)
	}
	defer r.Close()
	type group struct {
		runs           eventRuns
		records, bytes int64
		err            error
	}
	budget := n.backfillGroupBytes()
	free := make(chan *group, 2)
	full := make(chan *group, 2)
	for range 2 {
		free <- &group{runs: eventRuns{budgetBytes: budget}}
	}
	quit := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(full)
		var err error
		var keyBuf []byte
		var pend *wal.Record // a record that did not fit the last group
		var pendCopy []byte
		next := from
		for next <= through {
			var g *group
			select {
			case g = <-free:
			case <-quit:
				return
			}
			g.runs.reset()
			g.records, g.bytes, g.err = 0, 0, nil
			for next <= through && g.runs.bytes < budget {
				var rec wal.Record
				if pend != nil {
					rec, pend = *pend, nil
				} else {
					rec, err = r.Next()
					if err == nil && rec.LSN != next {
						err = fmt.Errorf("WAL record %d where %d was expected", rec.LSN, next)
					}
					if errors.Is(err, io.EOF) {
						err = fmt.Errorf("the WAL ends before LSN %d", next)
					}
					if err != nil {
						g.err = fmt.Errorf("event-log backfill: %w", err)
						break
					}
				}
				if rec.Type == recFrame {
					d, err := decodeRecord(rec.Type, rec.LSN, rec.Payload)
					if err != nil {
						g.err = fmt.Errorf("event-log backfill: %w", err)
						break
					}
					keyBuf = appendEventKey(keyBuf[:0], d.topic, d.seq)
					if !g.runs.add(d.topic, keyBuf, d.frame) {
						if g.runs.bytes == 0 {
							g.err = fmt.Errorf("event-log backfill: WAL record %d: event key %q out of order in an empty group", rec.LSN, keyBuf)
							break
						}
						// Out of order within the group (the same key
						// again): it starts the next group, ingested after.
						pendCopy = append(pendCopy[:0], rec.Payload...)
						rec.Payload = pendCopy
						pend = &rec
						break
					}
				}
				g.records++
				g.bytes += int64(len(rec.Payload))
				next++
			}
			select {
			case full <- g:
			case <-quit:
				return
			}
			if g.err != nil {
				return
			}
		}
	}()
	defer func() { close(quit); <-readerDone }()
	groups := 0
	for g := range full {
		if g.err != nil {
			return g.err
		}
		select {
		case <-stop:
			return errBackfillStopped
		default:
		}
		if err := ingestEvents(n.db, &g.runs); err != nil {
			return fmt.Errorf("event-log backfill: WAL records up to %d: %w", through, err)
		}
		groups++
		if b != nil {
			b.records.Add(g.records)
			b.bytes.Add(g.bytes)
			if hook := backfillGroupHook; hook != nil {
				if err := hook(groups, stop); err != nil {
					return fmt.Errorf("event-log backfill: after %d groups: %w", groups, err)
				}
			}
		}
		free <- g
	}
	return nil
}
