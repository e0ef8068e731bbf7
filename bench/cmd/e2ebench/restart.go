package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tapewire/tapewire/appliance"
	"github.com/tapewire/tapewire/bench/internal/harness"
	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/vfs"
	"github.com/tapewire/tapewire/wal"
)

var restartLog = flag.Bool("restart-log", false, "print each timed restart's recovery log (phases with timestamps) to stderr")

// restartData is a node directory whose WAL holds logBytes of frame records
// that no checkpoint covers, kept pristine and copied for every run.
type restartData struct {
	e        *env
	pristine string // data directory
	walBytes int64
	records  int64
}

// loadTopicID is the catalog id the first durable topic gets in a fresh
// node (the internal users topic takes 1).
const loadTopicID = 2

func (e *env) newRestartData(logBytes int64) (*restartData, error) {
	cfg, err := e.config()
	if err != nil {
		return nil, err
	}
	rd := &restartData{e: e, pristine: cfg.Node.DataDir}
	l, err := wal.Open(filepath.Join(cfg.Node.DataDir, "wal"), wal.Options{SegmentSizeBytes: cfg.WAL.SegmentSizeBytes})
	if err != nil {
		return nil, err
	}
	frames, err := appliance.LoadGenFrames(5, 150, 1024)
	if err != nil {
		return nil, err
	}
	const batch = 2000
	recs := make([]wal.Record, batch)
	seq := uint64(0)
	for l.Metrics().WrittenBytes < logBytes {
		for i := range recs {
			f := append([]byte(nil), frames[int(seq)%len(frames)]...)
			schema.EncodeHeader(f, schema.Header{Length: uint32(len(f)), Type: schema.Type(uint16(f[4]) | uint16(f[5])<<8), Seq: seq})
			recs[i] = appliance.FrameRecord(loadTopicID, f)
			seq++
		}
		if _, err := l.Append(context.Background(), recs); err != nil {
			l.Close()
			return nil, err
		}
	}
	rd.walBytes = l.Metrics().WrittenBytes
	rd.records = int64(seq)
	return rd, l.Close()
}

// copyTree copies the pristine data directory to a new one.
func (rd *restartData) copyTree() (string, error) {
	dir, err := freshDir(rd.e.root, "restart")
	if err != nil {
		return "", err
	}
	dst := filepath.Join(dir, "data")
	err = filepath.Walk(rd.pristine, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(rd.pristine, path)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if info.Name() == "LOCK" {
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		// On disk before the timed Open, as a restarting node finds its
		// WAL: otherwise the copy's writeback (a GiB) would run during the
		// replay and be charged to it.
		if err := out.Sync(); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	return dst, err
}

// open measures appliance.Open (store open, WAL tail scan, replay into the
// store, catalog, topics) on a copy of the data, then waits for the
// event-log backfill Open started and reports when it finished in the
// notes (not in the restart time: the node serves meanwhile).
func (rd *restartData) open() (harness.Result, error) {
	dataDir, err := rd.copyTree()
	if err != nil {
		return harness.Result{}, err
	}
	defer os.RemoveAll(filepath.Dir(dataDir))
	cfg, err := rd.e.config()
	if err != nil {
		return harness.Result{}, err
	}
	cfg.Node.DataDir = dataDir
	var log strings.Builder
	cpu0 := processCPU()
	start := time.Now()
	n, err := appliance.Open(cfg, appliance.Options{Log: &log})
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	if err != nil {
		return harness.Result{}, err
	}
	// The event log of the replayed range is rebuilt in the background
	// after Open returns (recovery.backfill_event_log): not restart time,
	// but reported beside it.
	bfErr := n.WaitBackfill(context.Background())
	backfilled := time.Since(start)
	cpuAll := processCPU() - cpu0
	st := n.Status()
	n.Close()
	if bfErr != nil {
		return harness.Result{}, fmt.Errorf("event-log backfill: %w", bfErr)
	}
	backfill := "no background backfill (recovery.backfill_event_log = false)"
	if b := st.Recovery.EventLogBackfill; b != nil {
		backfill = fmt.Sprintf("event-log backfill of %d records done %.2f s after Open began (%.2f s after it returned; process CPU to then %.2f s)",
			b.Records, backfilled.Seconds(), (backfilled - elapsed).Seconds(), cpuAll.Seconds())
	}
	if *restartLog {
		fmt.Fprintf(os.Stderr, "open began %s\n%s", start.Format("15:04:05.000"), log.String())
	}
	if st.Recovery.ReplayedRecords != rd.records {
		return harness.Result{}, fmt.Errorf("replayed %d records, the log holds %d", st.Recovery.ReplayedRecords, rd.records)
	}
	return rd.result(elapsed, fmt.Sprintf("appliance.Open replaying %d records (%.0f MiB of WAL) into the store: %.2f s per GiB; replay %.2f s of it; process CPU %.2f s (user+sys, all threads); %s",
		rd.records, float64(rd.walBytes)/(1<<20), elapsed.Seconds()/(float64(rd.walBytes)/(1<<30)), st.Recovery.ReplayDuration.Seconds(), cpu.Seconds(), backfill)), nil
}

// processCPU is the CPU time this process has used (user + system, every
// thread): on a shared machine it varies less than the wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// floorRead reads the same WAL files once with O_DIRECT, 1 MiB at a time.
func (rd *restartData) floorRead() (harness.Result, error) {
	dir := filepath.Join(rd.pristine, "wal")
	names, err := vfs.Default.List(dir)
	if err != nil {
		return harness.Result{}, err
	}
	buf := vfs.AlignedBuffer(1 << 20)
	start := time.Now()
	var read int64
	for _, name := range names {
		if !strings.HasSuffix(name, ".wal") {
			continue
		}
		f, err := vfs.Default.Open(filepath.Join(dir, name), vfs.FlagDirect)
		if err != nil {
			return harness.Result{}, err
		}
		for off := int64(0); ; off += int64(len(buf)) {
			k, err := f.ReadAt(buf, off)
			read += int64(k)
			if err != nil || k < len(buf) {
				break
			}
		}
		f.Close()
	}
	return rd.result(time.Since(start), fmt.Sprintf("O_DIRECT read of the %.0f MiB of segment files", float64(read)/(1<<20))), nil
}

// result reports a restart as one operation: ops/s = restarts per second,
// bytes/s = WAL bytes per second, the latency fields = the restart time.
func (rd *restartData) result(d time.Duration, notes string) harness.Result {
	ns := int64(d)
	return harness.Result{OpsPerSec: 1 / d.Seconds(), BytesPerSec: float64(rd.walBytes) / d.Seconds(),
		P50Ns: ns, P90Ns: ns, P99Ns: ns, P999Ns: ns, MaxNs: ns, Notes: notes}
}
