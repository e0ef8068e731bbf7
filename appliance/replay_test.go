package appliance

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/wal"
)

// TestReplayStopsAtABadRecord: a record the replay cannot decode, deep in
// the WAL behind groups already read ahead, fails Open with an error naming
// it; the reader goroutine of the replay pipeline does not outlive it.
func TestReplayStopsAtABadRecord(t *testing.T) {
	cfg := testConfig(t)
	cfg.Recovery.ReplayBatchRecords = 100
	// A node first, so the store and the catalog exist; then records.
	n, err := Open(cfg, Options{Log: &logBuffer{tb: t}})
	if err != nil {
		t.Fatal(err)
	}
	n.closeStores()
	l, err := wal.Open(cfg.walDir(), wal.Options{SegmentSizeBytes: cfg.WAL.SegmentSizeBytes})
	if err != nil {
		t.Fatal(err)
	}
	var recs []wal.Record
	for i := range 5000 {
		f, err := schema.AppendEvent(nil, schema.Header{Seq: uint64(i)}, testOrder(i))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, FrameRecord(2, f))
	}
	recs[3777] = wal.Record{Type: 99, Payload: make([]byte, 16)}
	for i := 0; i < len(recs); i += 1000 {
		if _, err := l.Append(context.Background(), recs[i:i+1000]); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	_, err = Open(cfg, Options{Log: &logBuffer{tb: t}})
	if err == nil || !strings.Contains(err.Error(), "unknown record type 99") {
		t.Fatalf("Open over a bad record: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Fatalf("%d goroutines after the failed Open, %d before", g, before)
	}
}

// TestApplierMergesWaitingBatches: durable batches waiting together are
// applied as one LSM batch at the LSN of the last, every event and the
// newest state of every key land, and every batch goes back to the
// committer with its waiters answered.
func TestApplierMergesWaitingBatches(t *testing.T) {
	n, s, p := openStorageByHand(t)
	defer n.closeStores()
	var batches []*batch
	seq := 0
	for range 3 {
		for range 50 {
			o := testOrder(seq % 20) // 20 order ids, updated again and again
			o.VolumeLeft = int64(seq)
			p.publish(o)
			seq++
		}
		for s.fill() {
		}
		for len(s.pending) > 0 {
			s.completeDurable()
		}
		for len(s.applyCh) > 0 {
			batches = append(batches, <-s.applyCh)
		}
	}
	if len(batches) < 3 {
		t.Fatalf("%d batches, want at least 3", len(batches))
	}
	free := len(s.free)
	s.applyGroup(batches)
	if s.applyErr != nil {
		t.Fatal(s.applyErr)
	}
	if got := len(s.free) - free; got != len(batches) {
		t.Fatalf("%d of %d batches returned", got, len(batches))
	}
	if s.appliedLSN.Load() != uint64(s.lastAppended) {
		t.Fatalf("applied LSN %d, last appended %d", s.appliedLSN.Load(), s.lastAppended)
	}
	for i := seq - 20; i < seq; i++ {
		k := appendStateKey(nil, StateOrder, []byte(testOrder(i%20).UserID), []byte(testOrder(i%20).OrderID))
		v, c, err := n.db.Get(k)
		if err != nil {
			t.Fatalf("state %s: %v", k, err)
		}
		var ord schema.Order
		if _, err := schema.DecodeEvent(v, &ord); err != nil || ord.VolumeLeft != int64(i) {
			c.Close()
			t.Fatalf("state %s: volume_left %d (err %v), want the newest update %d", k, ord.VolumeLeft, err, i)
		}
		c.Close()
	}
	id := n.catalog["trades"]
	for i := range seq {
		_, c, err := n.db.Get(appendEventKey(nil, id, uint64(i)))
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		c.Close()
	}
}
