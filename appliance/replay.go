package appliance

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tapewire/tapewire/wal"
)

// replayBuffers is the number of record groups in the replay pipeline: one
// being read and prepared, one being applied, one ready in between.
const replayBuffers = 3

// replayGroup is one group of WAL records prepared for the store.
type replayGroup struct {
	sb      storeBatch
	last    wal.LSN // LSN of the group's last record
	records int64
	bytes   int64
	err     error // a read or decode error: the last group sent
}

// replay applies the WAL from the store's covered LSN to its end, printing
// progress (bytes, rate, ETA) while it runs.
//
// It is a two-stage pipeline: a reader goroutine reads records and builds
// the next group's LSM batch (decoding, keys, state coalescing) while this
// goroutine applies the previous one with ApplyAt, so reading the WAL and
// preparing batches overlap inserting into the memtable. Groups of
// recovery.replay_batch_records records go in LSN order, each applied at the
// LSN of its last record, exactly as the applier applies its batches.
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
	total := int64(last - covered)
	if total == 0 {
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
	n.logf("recovery: replaying WAL LSN %d..%d (%d records) into the store", covered+1, last, total)

	free := make(chan *replayGroup, replayBuffers)
	full := make(chan *replayGroup, replayBuffers)
	for range replayBuffers {
		free <- &replayGroup{}
	}
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		readReplayGroups(r, wal.LSN(covered), n.cfg.Recovery.ReplayBatchRecords, uint64(n.cfg.LSM.MemTableSizeBytes)/4, free, full, stop)
	}()
	// On any return the reader stops before the deferred r.Close.
	defer func() { close(stop); <-readerDone }()

	var done, bytes int64
	for g := range full {
		if g.err != nil {
			return g.err
		}
		if err := n.db.ApplyAt(g.sb.batch(), uint64(g.last)); err != nil {
			return fmt.Errorf("recovery: apply WAL records up to LSN %d: %w", g.last, err)
		}
		done += g.records
		bytes += g.bytes
		free <- g
		if now := time.Now(); now.After(nextReport) {
			nextReport = now.Add(interval)
			n.logf("recovery: %s", replayProgress(done, total, bytes, now.Sub(start)))
		}
	}
	n.recovery.ReplayedRecords, n.recovery.ReplayedBytes = done, bytes
	n.recovery.ReplayDuration = time.Since(start)
	m := n.db.Metrics()
	n.logf("recovery: replayed %s; store: %d flushes (%v), writes stalled %v waiting for them",
		replayProgress(done, done, bytes, time.Since(start)), m.Flushes, m.FlushDuration.Round(time.Millisecond), m.StallDuration.Round(time.Millisecond))
	return nil
}

// readReplayGroups is the replay's reader stage: it fills free groups with
// up to groupRecords records each, cut earlier where the batch would take
// groupMemBytes of memtable, and sends them, in LSN order, on full, which
// it closes at the end of the log or after a group carrying an error. It
// returns early once stop is closed.
func readReplayGroups(r *wal.Reader, covered wal.LSN, groupRecords int, groupMemBytes uint64, free <-chan *replayGroup, full chan<- *replayGroup, stop <-chan struct{}) {
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
		for g.records < int64(groupRecords) && g.sb.memBytes() < groupMemBytes {
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
