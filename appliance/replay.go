package appliance

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/tapewire/tapewire/wal"
)

// replayBuffers is the number of record groups in the replay pipeline: one
// being read and prepared, one being applied, one ready in between (plus
// one per further concurrent ingest with recovery.ingest_event_log).
const replayBuffers = 3

// replayIngestWorkers is how many groups write their event-log tables at
// once with recovery.ingest_event_log (lsm.Ingest from several goroutines:
// one's table sync overlaps another's table building); the pipeline holds
// that many groups more.
const replayIngestWorkers = 2

// replayGroup is one group of WAL records prepared for the store.
type replayGroup struct {
	sb      storeBatch
	last    wal.LSN // LSN of the group's last record
	records int64
	bytes   int64
	err     error // a read or decode error: the last group sent
	// ingested receives the outcome of the group's lsm.Ingest (nil at
	// once without recovery.ingest_event_log); read by ingestErr.
	ingested chan error
}

func (g *replayGroup) ingestErr() error { return <-g.ingested }

// replay applies the WAL from the store's covered LSN to its end, printing
// progress (bytes, rate, ETA) while it runs. First it finishes an event-log
// backfill the previous process left (backfill.go); with
// recovery.backfill_event_log it then writes the marker and applies only
// the records' state, quarantine and catalog keys, leaving n.bf for Open to
// start: the range's event log is rebuilt after Open returns.
//
// It is a pipeline: a reader goroutine reads records and builds the next
// group's LSM batch (decoding, keys, state coalescing) while the groups
// before it are written to the store. With recovery.ingest_event_log each
// group's event-log keys (one sorted run per topic) are written straight
// into SSTables by lsm.Ingest, several groups at once (one's table sync
// overlaps another's table building); an applier goroutine then applies
// each group's remaining keys (state, quarantine, catalog) with ApplyAt in
// LSN order, each only after its group's ingest returned, since a flush of
// that state may cover the group's LSNs (with the backfill, the marker
// answers for those LSNs instead). Groups of
// recovery.replay_batch_records records go in LSN order, each applied at the
// LSN of its last record, exactly as the applier applies its batches, so
// the state after a replay equals the state after live apply.
func (n *Node) replay() error {
	covered := n.db.CoveredLSN()
	rep := n.wal.Recovery()
	n.recovery.WALVerdict = rep.Decision.Verdict.String()
	n.recovery.CoveredLSN = covered
	last := uint64(rep.LastLSN)
	if rep.LastLSN < rep.FirstLSN {
		last = uint64(rep.FirstLSN) - 1
	}
	if covered > last {
		return fmt.Errorf("recovery: the store covers WAL LSN %d but the WAL in %s ends at LSN %d: the WAL was replaced or truncated; restore it or start from an empty data directory", covered, n.cfg.walDir(), last)
	}
	if covered+1 < uint64(rep.FirstLSN) {
		return fmt.Errorf("recovery: the WAL in %s starts at LSN %d but the store covers only up to %d: records %d..%d are missing", n.cfg.walDir(), rep.FirstLSN, covered, covered+1, rep.FirstLSN-1)
	}
	// A backfill the previous process did not finish (backfill.go): this
	// start's backfill takes [from, covered] over (or, with
	// backfill_event_log off, Open rebuilds it now).
	markerPath := n.backfillMarkerPath()
	pendFrom, pending, err := readBackfillMarker(n.storeFS, markerPath)
	if err != nil {
		return fmt.Errorf("recovery: %w", err)
	}
	var seen topicSeqs // newest sequence number per topic of the frames left to the backfill
	backfillFrom := covered + 1
	if pending && pendFrom <= covered {
		if pendFrom < uint64(rep.FirstLSN) {
			return fmt.Errorf("recovery: %s says the event log from WAL LSN %d is still to be rebuilt, but the WAL in %s starts at LSN %d", markerPath, pendFrom, n.cfg.walDir(), rep.FirstLSN)
		}
		start := time.Now()
		n.recovery.ResumedBackfill = covered - pendFrom + 1
		if n.cfg.Recovery.BackfillEventLog {
			// This start's backfill takes the range over: Open only
			// reads it for its topics' newest sequence numbers.
			n.logf("recovery: the previous process did not finish rebuilding the event log of WAL LSN %d..%d; this start's backfill rebuilds it", pendFrom, covered)
			if err := n.scanFrameSeqs(wal.LSN(pendFrom), wal.LSN(covered), &seen); err != nil {
				return fmt.Errorf("recovery: %w", err)
			}
			backfillFrom = pendFrom
		} else {
			n.logf("recovery: the previous process did not finish rebuilding the event log of WAL LSN %d..%d; rebuilding it now", pendFrom, covered)
			if err := n.rebuildEventLog(wal.LSN(pendFrom), wal.LSN(covered), nil, nil); err != nil {
				return fmt.Errorf("recovery: %w", err)
			}
			n.logf("recovery: event log of WAL LSN %d..%d rebuilt in %v", pendFrom, covered, time.Since(start).Round(time.Millisecond))
		}
	}
	total := int64(last - covered)
	backfillMode := n.cfg.Recovery.BackfillEventLog && backfillFrom <= last
	switch {
	case backfillMode:
		// Durable before anything is applied, so before any flush can
		// cover a replayed LSN whose e/ key is not in a table.
		if err := writeBackfillMarker(n.storeFS, markerPath, backfillFrom); err != nil {
			return fmt.Errorf("recovery: %w", err)
		}
	case pending:
		if err := removeBackfillMarker(n.storeFS, markerPath); err != nil {
			return fmt.Errorf("recovery: %w", err)
		}
	}
	if total == 0 {
		if backfillMode {
			n.bf = newBackfill(wal.LSN(backfillFrom), wal.LSN(last), seen)
		}
		return nil
	}
	r, err := n.wal.NewReader(wal.LSN(covered + 1))
	if err != nil {
		return fmt.Errorf("recovery: read WAL from LSN %d: %w", covered+1, err)
	}
	defer r.Close()
	start := time.Now()
	interval := time.Duration(n.cfg.Recovery.ProgressIntervalMs) * time.Millisecond
	nextReport := start.Add(interval)
	if backfillMode {
		n.logf("recovery: replaying WAL LSN %d..%d (%d records) into the store's state; their event log is rebuilt after Open returns", covered+1, last, total)
	} else {
		n.logf("recovery: replaying WAL LSN %d..%d (%d records) into the store", covered+1, last, total)
	}
	ingest := n.cfg.Recovery.IngestEventLog && !backfillMode
	buffers := replayBuffers
	ingestBytes := uint64(n.cfg.LSM.MemTableSizeBytes)
	if ingest {
		// Two groups ingest at once (one's table sync overlaps the other's
		// table building) while the reader fills a third and a fourth.
		buffers = replayBuffers + replayIngestWorkers - 1
		ingestBytes /= 2
	}
	free := make(chan *replayGroup, buffers)
	full := make(chan *replayGroup, buffers)
	for range buffers {
		g := &replayGroup{ingested: make(chan error, 1)}
		if ingest {
			g.sb.events = &eventRuns{budgetBytes: int(ingestBytes)}
		}
		g.sb.skipEvents = backfillMode
		free <- g
	}
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		readReplayGroups(r, wal.LSN(covered), n.cfg.Recovery.ReplayBatchRecords, uint64(n.cfg.LSM.MemTableSizeBytes)/4,
			ingestBytes, free, full, stop)
	}()
	// On any return the reader stops before the deferred r.Close.
	defer func() { close(stop); <-readerDone }()

	// The applier stage applies groups in LSN order, each once its event-log
	// keys are in tables: a flush of the state it applies may cover their
	// LSNs (lsm.Ingest). Groups are handed to it before their ingest ends.
	ordered := make(chan *replayGroup, buffers) // never blocks: at most buffers groups exist
	var failed atomic.Bool
	var done, bytes int64
	applierDone := make(chan error, 1)
	go func() {
		var first error
		for g := range ordered {
			err := g.ingestErr()
			if err == nil && first == nil {
				err = n.db.ApplyAt(g.sb.batch(), uint64(g.last))
				if err != nil {
					err = fmt.Errorf("recovery: apply WAL records up to LSN %d: %w", g.last, err)
				}
			}
			if err != nil && first == nil {
				first = err
				failed.Store(true)
			}
			if first == nil {
				done += g.records
				bytes += g.bytes
				seen.merge(g.sb.seqs)
			}
			free <- g // even after a failure: the reader must not wait for it
			if first != nil {
				continue // wait for every ingest still running, apply nothing more
			}
			if now := time.Now(); now.After(nextReport) {
				nextReport = now.Add(interval)
				n.logf("recovery: %s", replayProgress(done, total, bytes, now.Sub(start)))
			}
		}
		applierDone <- first
	}()
	ingesting := make(chan struct{}, replayIngestWorkers) // bounds the ingests running at once
	var readErr error
	for g := range full {
		if g.err != nil {
			readErr = g.err
			break
		}
		if failed.Load() {
			break
		}
		if ingest {
			ingesting <- struct{}{}
			go func() {
				defer func() { <-ingesting }()
				err := ingestEvents(n.db, g.sb.events)
				if err != nil {
					err = fmt.Errorf("recovery: WAL records up to LSN %d: %w", g.last, err)
				}
				g.ingested <- err
			}()
		} else {
			g.ingested <- nil
		}
		ordered <- g
	}
	close(ordered)
	if err := <-applierDone; err != nil {
		return err
	}
	if readErr != nil {
		return readErr
	}
	n.recovery.ReplayedRecords, n.recovery.ReplayedBytes = done, bytes
	n.recovery.ReplayDuration = time.Since(start)
	if backfillMode {
		n.bf = newBackfill(wal.LSN(backfillFrom), wal.LSN(last), seen)
	}
	m := n.db.Metrics()
	n.logf("recovery: replayed %s; store: %d event-log tables ingested (%v), %d flushes (%v), writes stalled %v waiting for them",
		replayProgress(done, done, bytes, time.Since(start)), m.Ingests, m.IngestDuration.Round(time.Millisecond),
		m.Flushes, m.FlushDuration.Round(time.Millisecond), m.StallDuration.Round(time.Millisecond))
	return nil
}

// readReplayGroups is the replay's reader stage: it fills free groups with
// up to groupRecords records each, cut earlier where the batch would take
// groupMemBytes of memtable or hold groupIngestBytes of event-log keys for
// lsm.Ingest (one table per topic and group: larger groups make fewer,
// larger tables), and sends them, in LSN order, on full, which it closes at
// the end of the log or after a group carrying an error. It returns early
// once stop is closed.
func readReplayGroups(r *wal.Reader, covered wal.LSN, groupRecords int, groupMemBytes, groupIngestBytes uint64, free <-chan *replayGroup, full chan<- *replayGroup, stop <-chan struct{}) {
	defer close(full)
	prev := covered
	for {
		var g *replayGroup
		select {
		case g = <-free:
		case <-stop:
			return
		}
		g.sb.reset()
		g.records, g.bytes, g.err = 0, 0, nil
		end := false
		for g.records < int64(groupRecords) && g.sb.memBytes() < groupMemBytes && g.sb.ingestBytes() < groupIngestBytes {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				end = true
				break
			}
			if err == nil {
				err = g.sb.add(rec.Type, rec.LSN, rec.Payload)
			} else {
				err = fmt.Errorf("WAL record after LSN %d: %w", prev, err)
			}
			if err != nil {
				g.err, end = fmt.Errorf("recovery: %w", err), true
				break
			}
			prev, g.last = rec.LSN, rec.LSN
			g.records++
			g.bytes += int64(len(rec.Payload))
		}
		if g.records > 0 || g.err != nil {
			select {
			case full <- g:
			case <-stop:
				return
			}
		}
		if end {
			return
		}
	}
}
