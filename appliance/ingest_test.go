package appliance

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestReplayEqualsLiveApply: mixed events on two topics are applied live;
// after a crash (no checkpoint) the WAL is replayed, with the event log
// ingested as tables (recovery.ingest_event_log) and through the memtable,
// and the store then holds exactly the keys and values the live applier
// wrote — with the event log rebuilt in the background after Open
// (recovery.backfill_event_log), once that is done. A second crash right after the ingesting replay (its tables are in
// the store, its LSNs not covered) replays the same records again over
// them, with the same result.
func TestReplayEqualsLiveApply(t *testing.T) {
	cfg := testConfig(t)
	cfg.LastValue.Enabled = false
	cfg.LSM.MemTableSizeBytes = 64 << 20  // no flush covers the WAL before the crash
	cfg.Recovery.ReplayBatchRecords = 700 // many groups, each with runs of both topics
	n, _ := startNode(t, cfg)
	var last uint64
	for ti, topic := range []string{"trades", "ticks"} {
		p := openProducer(t, cfg, topic)
		frames, err := LoadGenFrames(uint64(ti+1), 150+150*ti, 512)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 6000 {
			if _, err := p.pub.Offer(frames[i%len(frames)]); err != nil {
				t.Fatal(err)
			}
		}
		last = p.pub.Position()
		p.waitDurable(last)
	}
	waitApplied(t, n)
	live := dumpStore(t, n)
	crashNode(n)

	for _, mode := range []struct {
		name             string
		backfill, ingest bool
	}{{"backfill", true, true}, {"ingest", false, true}, {"memtable", false, false}} {
		t.Run(mode.name, func(t *testing.T) {
			c := cfg
			c.Node.DataDir = copyDataDir(t, cfg.Node.DataDir)
			c.Recovery.BackfillEventLog = mode.backfill
			c.Recovery.IngestEventLog = mode.ingest
			n2 := openNode(t, c)
			if n2.recovery.ReplayedRecords < 12_000 {
				t.Fatalf("replayed %d records, want at least 12000", n2.recovery.ReplayedRecords)
			}
			if err := n2.WaitBackfill(context.Background()); err != nil {
				t.Fatal(err)
			}
			if (n2.BackfillStatus() != nil) != mode.backfill {
				t.Fatalf("backfill %+v with recovery.backfill_event_log = %v", n2.BackfillStatus(), mode.backfill)
			}
			if ingested := n2.db.Metrics().Ingests; (ingested > 0) != mode.ingest {
				t.Fatalf("%d event-log tables ingested with recovery.ingest_event_log = %v", ingested, mode.ingest)
			}
			compareStores(t, "replay", live, dumpStore(t, n2))
			n2.closeStores() // crash again before any checkpoint
			n3 := openNode(t, c)
			defer n3.closeStores()
			if err := n3.WaitBackfill(context.Background()); err != nil {
				t.Fatal(err)
			}
			compareStores(t, "second replay", live, dumpStore(t, n3))
		})
	}
}

func openNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	logs := &logBuffer{tb: t}
	n, err := Open(cfg, Options{Log: logs})
	if err != nil {
		t.Fatalf("open node: %v\nlog:\n%s", err, logs)
	}
	return n
}

// waitApplied waits until the store holds everything the WAL made durable.
func waitApplied(t *testing.T, n *Node) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for n.storage.appliedLSN.Load() < uint64(n.wal.DurableLSN()) {
		if time.Now().After(deadline) {
			t.Fatalf("applier at LSN %d, WAL durable at %d after 20 s", n.storage.appliedLSN.Load(), n.wal.DurableLSN())
		}
		time.Sleep(time.Millisecond)
	}
}

// crashNode stops a started node's tenants without a checkpoint and closes
// its stores, as a kill would leave them (the WAL is closed, not truncated).
func crashNode(n *Node) {
	n.storage.stop()
	<-n.storage.done
	<-n.storage.applied
	if n.lvc != nil {
		n.lvc.stop()
	}
	if n.admin != nil {
		n.admin.shutdown()
	}
	close(n.ckptStop)
	n.wg.Wait()
	n.closeStores()
}

// dumpStore returns every key and value of the store.
func dumpStore(t *testing.T, n *Node) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	it := n.db.NewIter(nil)
	for ok := it.First(); ok; ok = it.Next() {
		out[string(it.Key())] = bytes.Clone(it.Value())
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

func compareStores(t *testing.T, stage string, want, got map[string][]byte) {
	t.Helper()
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			t.Fatalf("%s: key %q missing (store has %d keys, live apply %d)", stage, k, len(got), len(want))
		}
		if !bytes.Equal(g, v) {
			t.Fatalf("%s: key %q differs from live apply", stage, k)
		}
	}
	if len(got) != len(want) {
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Fatalf("%s: key %q not written by live apply", stage, k)
			}
		}
	}
}

// copyDataDir copies a node's data directory (not its lock files) to a new
// temporary directory.
func copyDataDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "data")
	err := filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
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
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
