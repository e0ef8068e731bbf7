package appliance

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/schema"
)

// TestCheckpointTruncatesWAL: a checkpoint flushes the memtables, the
// store's covered LSN reaches the WAL's durable LSN, and whole WAL segments
// below it are removed; a restart then replays nothing.
func TestCheckpointTruncatesWAL(t *testing.T) {
	cfg := testConfig(t)
	cfg.WAL.SegmentSizeBytes = 2 << 20
	n, _ := startNode(t, cfg)
	p := openProducer(t, cfg, "trades")
	var pos uint64
	for i := range 20_000 {
		_, pos = p.publish(testOrder(i))
		if i%500 == 0 {
			p.waitDurable(pos)
		}
	}
	p.waitDurable(pos)
	before := walSegments(t, cfg)
	code, body := httpPost(t, "http://"+n.AdminAddr()+"/v1/checkpoint", "")
	if code != 200 {
		t.Fatalf("checkpoint: %d %s", code, body)
	}
	var res CheckpointResult
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatal(err)
	}
	if res.CoveredLSN == 0 || res.CoveredLSN != res.DurableLSN {
		t.Fatalf("checkpoint covered %d, durable %d", res.CoveredLSN, res.DurableLSN)
	}
	after := walSegments(t, cfg)
	if before < 3 || after >= before {
		t.Fatalf("WAL segments: %d before the checkpoint, %d after", before, after)
	}
	n.Close()
	n2, logs := startNode(t, cfg)
	defer n2.Close()
	if n2.recovery.ReplayedRecords != 0 || strings.Contains(logs.String(), "replaying") {
		t.Fatalf("restart after a checkpoint replayed %d records", n2.recovery.ReplayedRecords)
	}
	present := fetchSeqs(t, "http://"+n2.AdminAddr(), "trades", 19_990, 19_999)
	if len(present) != 10 {
		t.Fatalf("after checkpoint and restart: %d of the last 10 events", len(present))
	}
}

func walSegments(t *testing.T, cfg Config) int {
	entries, err := os.ReadDir(cfg.walDir())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".wal") {
			n++
		}
	}
	return n
}

// TestReplayProgress: a restart without a checkpoint replays the WAL and
// reports progress with bytes, rate and ETA.
func TestReplayProgress(t *testing.T) {
	cfg := testConfig(t)
	cfg.Recovery.ProgressIntervalMs = 10
	cfg.Recovery.ReplayBatchRecords = 64
	cfg.LSM.MemTableSizeBytes = 64 << 20 // no flush covers the WAL before the crash
	n, _ := startNode(t, cfg)
	p := openProducer(t, cfg, "ticks")
	var pos uint64
	for i := range 30_000 {
		_, pos = p.publish(&schema.Tick{InstrumentID: fmt.Sprintf("X.i%d", i%40), LastPrice: float64(i)})
	}
	p.waitDurable(pos)
	// A crash: nothing is checkpointed or closed cleanly.
	n.storage.stop()
	<-n.storage.done
	<-n.storage.applied
	if n.lvc != nil {
		n.lvc.stop()
	}
	n.admin.shutdown()
	close(n.ckptStop)
	n.wg.Wait()
	n.closeStores()
	n2, logs := startNode(t, cfg)
	defer n2.Close()
	if n2.recovery.ReplayedRecords < 30_000 {
		t.Fatalf("replayed %d records", n2.recovery.ReplayedRecords)
	}
	out := logs.String()
	for _, want := range []string{"recovery: replaying WAL LSN", "MiB/s", "ETA", "recovery: replayed"} {
		if !strings.Contains(out, want) {
			t.Errorf("recovery output lacks %q:\n%s", want, out)
		}
	}
	code, body := httpGet(t, "http://"+n2.AdminAddr()+"/v1/state/quote/X.i39")
	if code != 200 || !strings.Contains(body, `"last_price":29999`) {
		t.Fatalf("state after replay: %d %s", code, body)
	}
}

// TestLastValueTenant: ticks become the quotes table, keyed by instrument;
// when the table's segment vanishes, the next start seeds it from the store.
func TestLastValueTenant(t *testing.T) {
	cfg := testConfig(t)
	n, _ := startNode(t, cfg)
	p := openProducer(t, cfg, "ticks")
	var pos uint64
	for i := range 300 {
		_, pos = p.publish(&schema.Tick{InstrumentID: fmt.Sprintf("SHFE.cu25%02d", i%3), LastPrice: float64(1000 + i)})
	}
	p.waitDurable(pos)
	o, _ := cfg.shmOptions(nil)
	r, err := ring.OpenLastValue(o, "quotes")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	deadline := time.Now().Add(10 * time.Second)
	for {
		k, _, err := r.Get("SHFE.cu2502", buf)
		if err == nil {
			var tick schema.Tick
			if _, err := schema.DecodeEvent(buf[:k], &tick); err != nil {
				t.Fatal(err)
			}
			if tick.LastPrice == 1299 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("quotes table never got the last tick of SHFE.cu2502: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.Close()
	n.Close()
	os.Remove(filepath.Join(o.Dir(), "quotes"+ring.LastValueSuffix))
	n2, _ := startNode(t, cfg)
	defer n2.Close()
	r, err = ring.OpenLastValue(o, "quotes")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.KeyCount() != 3 {
		t.Fatalf("reseeded table has %d keys, want 3", r.KeyCount())
	}
	k, _, err := r.Get("SHFE.cu2500", buf)
	if err != nil {
		t.Fatal(err)
	}
	var tick schema.Tick
	if _, err := schema.DecodeEvent(buf[:k], &tick); err != nil || tick.LastPrice != 1297 {
		t.Fatalf("reseeded quote: %+v, %v", tick, err)
	}
}

// TestGracefulStopDrains: frames published without waiting, right before a
// graceful stop (SIGTERM), are all durable after it: the stop drains each
// ring up to its published position.
func TestGracefulStopDrains(t *testing.T) {
	cfg := testConfig(t)
	cfg.LastValue.Enabled = false
	cfgPath := writeConfig(t, cfg)
	dir := t.TempDir()
	node := startChild(t, "node", cfgPath, filepath.Join(dir, "addr"))
	node.waitReady(30 * time.Second)
	p := openProducer(t, cfg, "trades")
	var seq uint64
	for i := range 5000 {
		seq, _ = p.publish(testOrder(i))
	}
	published := p.pub.Position()
	node.stop(30 * time.Second)
	if d := p.pub.Log().Durable(); d != published {
		t.Fatalf("after a graceful stop the durable position is %d, published %d", d, published)
	}
	node = startChild(t, "node", cfgPath, filepath.Join(dir, "addr"))
	base := node.waitReady(30 * time.Second)
	if last := storeLastSeq(t, base, "trades"); last != seq {
		t.Fatalf("store's newest seq %d, published up to %d", last, seq)
	}
	node.stop(30 * time.Second)
}
