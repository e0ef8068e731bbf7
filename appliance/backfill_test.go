package appliance

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapewire/tapewire/wal"
)

// backfillFixture is a crashed node (no checkpoint) whose WAL holds mixed
// events on two topics over several segments, and the store the live
// applier left.
func backfillFixture(t *testing.T) (Config, map[string][]byte, map[string]uint64) {
	t.Helper()
	cfg := testConfig(t)
	cfg.LastValue.Enabled = false
	cfg.WAL.SegmentSizeBytes = 2 << 20
	cfg.LSM.MemTableSizeBytes = 64 << 20 // no flush covers the WAL before the crash
	n, _ := startNode(t, cfg)
	last := map[string]uint64{}
	for ti, topic := range []string{"trades", "ticks"} {
		p := openProducer(t, cfg, topic)
		frames, err := LoadGenFrames(uint64(ti+1), 200+200*ti, 1024)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 8000 {
			if _, err := p.pub.Offer(frames[i%len(frames)]); err != nil {
				t.Fatal(err)
			}
		}
		p.waitDurable(p.pub.Position())
		last[topic] = 7999
	}
	waitApplied(t, n)
	live := dumpStore(t, n)
	crashNode(n)
	return cfg, live, last
}

// holdBackfill makes the background backfill stop after its first group
// until release is called (or the node stops it).
func holdBackfill(t *testing.T) (held <-chan struct{}, release func()) {
	t.Helper()
	h := make(chan struct{})
	r := make(chan struct{})
	var once, hold sync.Once
	backfillGroupHook = func(groups int, stop <-chan struct{}) error {
		hold.Do(func() {
			close(h)
			select {
			case <-r:
			case <-stop:
			}
		})
		return nil
	}
	t.Cleanup(func() { backfillGroupHook = nil })
	return h, func() { once.Do(func() { close(r) }) }
}

// TestBackfillCrashResumes: the node is stopped in the middle of its
// event-log backfill after a checkpoint flushed the replayed state (so the
// store's covered LSN claims records whose event-log keys are not in any
// table); the checkpoint kept the WAL segments the backfill needs; the next
// start's backfill takes the range over, and the store then equals the
// live applier's: every event exactly once, the state as a replay leaves
// it. Without the marker the restart would lose events (checked by
// removing it from a copy: the store then lacks event keys).
func TestBackfillCrashResumes(t *testing.T) {
	cfg, live, _ := backfillFixture(t)
	cfg.LSM.MemTableSizeBytes = 2 << 20 // backfill groups of 1 MiB: several
	held, _ := holdBackfill(t)
	n2 := openNode(t, cfg)
	if n2.bf == nil || n2.bf.from != 1 {
		t.Fatalf("no backfill from LSN 1 after the replay: %+v", n2.bf)
	}
	<-held
	segsBefore := walSegments(t, cfg)
	res, err := n2.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if res.CoveredLSN < uint64(n2.bf.through) {
		t.Fatalf("checkpoint covers LSN %d, the replay went to %d", res.CoveredLSN, n2.bf.through)
	}
	if segs := walSegments(t, cfg); segs != segsBefore || segs < 3 {
		t.Fatalf("checkpoint during a pending backfill from LSN 1 left %d WAL segments (before: %d)", segs, segsBefore)
	}
	if r, err := n2.wal.NewReader(n2.bf.from); err != nil {
		t.Fatalf("WAL no longer holds LSN %d after the checkpoint: %v", n2.bf.from, err)
	} else {
		r.Close()
	}
	if st := n2.BackfillStatus(); st.State != "running" || st.Records == 0 || st.Records >= st.TotalRecords {
		t.Fatalf("backfill status while held: %+v", st)
	}
	n2.closeStores() // a crash in the middle of the backfill (the marker stays)
	if _, ok, err := readBackfillMarker(n2.storeFS, n2.backfillMarkerPath()); err != nil || !ok {
		t.Fatalf("marker after the interrupted backfill: %v %v", ok, err)
	}

	lost := cfg
	lost.Node.DataDir = copyDataDir(t, cfg.Node.DataDir)
	if err := os.Remove(n2.backfillMarkerPathFor(lost)); err != nil {
		t.Fatal(err)
	}

	// With recovery.backfill_event_log off, Open rebuilds the unfinished
	// range itself before it returns.
	off := cfg
	off.Node.DataDir = copyDataDir(t, cfg.Node.DataDir)
	off.Recovery.BackfillEventLog = false

	backfillGroupHook = nil
	n3 := openNode(t, cfg)
	if n3.recovery.ResumedBackfill == 0 || n3.bf == nil || n3.bf.from != 1 {
		t.Fatalf("the restart did not take the unfinished backfill over: %+v, backfill %+v", n3.recovery, n3.BackfillStatus())
	}
	if err := n3.WaitBackfill(context.Background()); err != nil {
		t.Fatal(err)
	}
	compareStores(t, "after the resumed backfill", live, dumpStore(t, n3))
	if _, ok, _ := readBackfillMarker(n3.storeFS, n3.backfillMarkerPath()); ok {
		t.Fatal("marker left after the resumed backfill")
	}
	n3.closeStores()

	n5 := openNode(t, off)
	if n5.recovery.ResumedBackfill == 0 || n5.bf != nil {
		t.Fatalf("backfill_event_log off: resumed %d records, backfill %+v", n5.recovery.ResumedBackfill, n5.BackfillStatus())
	}
	compareStores(t, "after the rebuild in Open", live, dumpStore(t, n5))
	if _, ok, _ := readBackfillMarker(n5.storeFS, n5.backfillMarkerPath()); ok {
		t.Fatal("marker left after the rebuild in Open")
	}
	n5.closeStores()

	// The control: the same data without the marker misses events.
	n4 := openNode(t, lost)
	defer n4.closeStores()
	got := dumpStore(t, n4)
	if len(got) >= len(live) {
		t.Fatalf("without the marker the store still has %d of %d keys: the test does not exercise the marker", len(got), len(live))
	}
}

func (n *Node) backfillMarkerPathFor(cfg Config) string {
	return (&Node{cfg: cfg}).backfillMarkerPath()
}

// TestEventsDuringBackfill: while the backfill has written only its first
// group, GET /v1/events for the replayed range waits and then returns
// every event, in order, with no gap; with the wait bounded it answers 503
// with Retry-After; a request past the replayed range does not wait.
func TestEventsDuringBackfill(t *testing.T) {
	cfg, _, last := backfillFixture(t)
	cfg.LSM.MemTableSizeBytes = 2 << 20 // backfill groups of 1 MiB: several
	held, release := holdBackfill(t)
	defer release()
	n, logs := startNode(t, cfg)
	defer n.Close()
	<-held
	base := "http://" + n.AdminAddr()

	wait := backfillReadWait.Load()
	backfillReadWait.Store(int64(200 * time.Millisecond))
	resp, err := http.Get(base + "/v1/events?topic=trades&from=0&limit=10")
	backfillReadWait.Store(wait)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("events during a held backfill with a short wait: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	code, body := httpGet(t, fmt.Sprintf("%s/v1/events?topic=trades&from=%d&limit=10", base, last["trades"]+1))
	if code != 200 || strings.TrimSpace(body) != "" {
		t.Fatalf("events past the replayed range: %d %q", code, body)
	}

	type answer struct {
		code int
		body string
		err  error
		at   time.Time
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := http.Get(base + "/v1/events?topic=trades&from=0&limit=10000")
		a := answer{err: err}
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			a.code, a.body, a.err = resp.StatusCode, string(b), rerr
		}
		a.at = time.Now()
		got <- a
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case a := <-got:
		t.Fatalf("events answered while the backfill was held: %d %.200s", a.code, a.body)
	default:
	}
	released := time.Now()
	release()
	a := <-got
	if a.err != nil || a.code != 200 {
		t.Fatalf("events after the backfill went on: %v %d %.200s", a.err, a.code, a.body)
	}
	if a.at.Before(released) {
		t.Fatal("events answered before the backfill went on")
	}
	lines := parseEventLines(t, a.body)
	if uint64(len(lines)) != last["trades"]+1 {
		t.Fatalf("%d events, want %d", len(lines), last["trades"]+1)
	}
	for i, l := range lines {
		if l.Header.Seq != uint64(i) {
			t.Fatalf("event %d has sequence %d: a gap", i, l.Header.Seq)
		}
	}
	if err := n.WaitBackfill(context.Background()); err != nil {
		t.Fatal(err)
	}
	code, body = httpGet(t, base+"/v1/status")
	if code != 200 || !strings.Contains(body, `"state": "done"`) {
		t.Fatalf("status after the backfill: %d %s", code, body)
	}
	code, body = httpGet(t, base+"/metrics")
	if code != 200 || !strings.Contains(body, "tapewire_recovery_backfill_pending_records 0") {
		t.Fatalf("metrics after the backfill lack the backfill gauges")
	}
	for _, want := range []string{"recovery: Open returned after", "recovery: event-log backfill finished"} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("recovery log lacks %q:\n%s", want, logs)
		}
	}
}

// TestOpenRefusesDamagedSealedSegment: damage in a sealed WAL segment,
// which Open's tail scan does not read (wal.Options.DeferSealedVerification),
// is found by the replay's reader and fails Open with the WAL's corruption
// error naming the segment and the offset; nothing is appended to the WAL.
func TestOpenRefusesDamagedSealedSegment(t *testing.T) {
	cfg, _, _ := backfillFixture(t)
	segs := walSegments(t, cfg)
	if segs < 3 {
		t.Fatalf("%d WAL segments, want at least 3", segs)
	}
	path := filepath.Join(cfg.walDir(), wal.SegmentName(2))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[wal.SegmentHeaderSize+200] ^= 0x10 // in the first frame after the header
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	before := walDigest(t, cfg, nil)
	logs := &logBuffer{tb: t}
	_, err = Open(cfg, Options{Log: logs})
	var ce *wal.CorruptionError
	if !errors.As(err, &ce) || ce.Segment != 2 || ce.Offset != wal.SegmentHeaderSize {
		t.Fatalf("Open over a damaged sealed segment: %v", err)
	}
	if !strings.Contains(logs.String(), "sealed segments to be verified as they are read") {
		t.Fatalf("the WAL scanned every segment at Open: the test does not exercise the deferred verification\n%s", logs)
	}
	if after := walDigest(t, cfg, func(name string) bool { return strings.Contains(before, name) }); after != before {
		t.Fatal("the failed Open changed the WAL's segments")
	}
}

// walDigest names the WAL's segment files (those keep accepts, if set: a
// spare the WAL prepares in the background is not log data) with their
// sizes, and hashes their bytes.
func walDigest(t *testing.T, cfg Config, keep func(name string) bool) string {
	t.Helper()
	entries, err := os.ReadDir(cfg.walDir())
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	var names []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".wal") || (keep != nil && !keep(e.Name())) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(cfg.walDir(), e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s %d\n", e.Name(), len(b))
		h.Write(b)
		names = append(names, e.Name())
	}
	return fmt.Sprintf("%s %x", strings.Join(names, ","), h.Sum(nil))
}

// TestKill9DuringBackfill: a node process is killed with SIGKILL while its
// event-log backfill is half done and after a checkpoint flushed the
// replayed state (its covered LSN is past the backfill's range); the next
// process's backfill takes the range over, and /v1/events returns every
// sequence number of both topics exactly once, in order, and the store
// equals the live applier's (events and state).
func TestKill9DuringBackfill(t *testing.T) {
	cfg, live, last := backfillFixture(t)
	cfg.LSM.MemTableSizeBytes = 2 << 20 // backfill groups of 1 MiB: several
	cfgPath := writeConfig(t, cfg)
	dir := t.TempDir()
	segs := walSegments(t, cfg)
	node := startChild(t, "node", cfgPath, filepath.Join(dir, "addr1"), childHoldBackfillEnv+"=1")
	base := node.waitReady(30 * time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec := statusRecovery(t, base)
		if b := rec.EventLogBackfill; b != nil && b.Records > 0 {
			if b.State != "running" || b.Records >= b.TotalRecords {
				t.Fatalf("held backfill: %+v", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no backfill progress within 30 s: %+v", rec)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, body := httpPost(t, base+"/v1/checkpoint", ""); code != 200 {
		t.Fatalf("checkpoint: %d %s", code, body)
	}
	if got := walSegments(t, cfg); got != segs {
		t.Fatalf("a checkpoint during the backfill left %d WAL segments of %d", got, segs)
	}
	node.kill9()

	node2 := startChild(t, "node", cfgPath, filepath.Join(dir, "addr2"))
	base2 := node2.waitReady(30 * time.Second)
	if rec := statusRecovery(t, base2); rec.ResumedBackfill == 0 {
		t.Fatalf("the restart did not take the interrupted backfill over: %+v", rec)
	}
	for topic, newest := range last {
		next := uint64(0)
		for next <= newest {
			code, body := httpGet(t, fmt.Sprintf("%s/v1/events?topic=%s&from=%d&limit=5000", base2, topic, next))
			if code != 200 {
				t.Fatalf("events: %d %s", code, body)
			}
			lines := parseEventLines(t, body)
			if len(lines) == 0 {
				t.Fatalf("%s: events end before sequence %d (newest %d)", topic, next, newest)
			}
			for _, l := range lines {
				if l.Header.Seq != next {
					t.Fatalf("%s: sequence %d where %d was expected: a gap or a duplicate", topic, l.Header.Seq, next)
				}
				next++
			}
		}
	}
	node2.stop(30 * time.Second)
	n := openNode(t, cfg)
	defer n.closeStores()
	compareStores(t, "after a kill during the backfill", live, dumpStore(t, n))
}

func statusRecovery(t *testing.T, base string) RecoveryReport {
	t.Helper()
	code, body := httpGet(t, base+"/v1/status")
	if code != 200 {
		t.Fatalf("status: %d %s", code, body)
	}
	var st struct {
		Recovery RecoveryReport `json:"recovery"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("status: %v", err)
	}
	return st.Recovery
}

// TestBackfillFailureIsUnhealthyUntilRestart: a backfill that fails (an
// injected error after its first group) turns /healthz to 503 naming it,
// /v1/events refuses the replayed range instead of showing a gap, and the
// next start takes the backfill over: every event is back, /healthz is 200.
func TestBackfillFailureIsUnhealthyUntilRestart(t *testing.T) {
	cfg, live, last := backfillFixture(t)
	cfg.LSM.MemTableSizeBytes = 2 << 20 // backfill groups of 1 MiB: several
	injected := errors.New("injected device error")
	backfillGroupHook = func(int, <-chan struct{}) error { return injected }
	t.Cleanup(func() { backfillGroupHook = nil })
	n, _ := startNode(t, cfg)
	if err := n.WaitBackfill(context.Background()); !errors.Is(err, injected) {
		t.Fatalf("backfill ended with %v, want the injected error", err)
	}
	base := "http://" + n.AdminAddr()
	code, body := httpGet(t, base+"/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "event-log backfill failed") || !strings.Contains(body, injected.Error()) {
		t.Fatalf("healthz after a failed backfill: %d %s", code, body)
	}
	code, body = httpGet(t, base+"/v1/events?topic=trades&from=0&limit=10")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("events of the range a failed backfill left: %d %.300s", code, body)
	}
	n.Close()

	backfillGroupHook = nil
	n2, _ := startNode(t, cfg)
	defer n2.Close()
	if err := n2.WaitBackfill(context.Background()); err != nil {
		t.Fatal(err)
	}
	base = "http://" + n2.AdminAddr()
	if code, body := httpGet(t, base+"/healthz"); code != 200 {
		t.Fatalf("healthz after the restart's backfill: %d %s", code, body)
	}
	_, body = httpGet(t, fmt.Sprintf("%s/v1/events?topic=trades&from=0&limit=%d", base, last["trades"]+1))
	if lines := parseEventLines(t, body); uint64(len(lines)) != last["trades"]+1 || lines[len(lines)-1].Header.Seq != last["trades"] {
		t.Fatalf("after the restart: %d events of trades, want %d", len(lines), last["trades"]+1)
	}
	compareStores(t, "after the restart's backfill", live, dumpStore(t, n2))
}
