package appliance

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/vfs"
)

// TestQuarantine: frames that fail schema.Verify are kept under q/ with the
// reason, counted, logged once per burst, acknowledged like every other
// frame (the durable position passes them), and the good frames around
// them are persisted.
func TestQuarantine(t *testing.T) {
	cfg := testConfig(t)
	n, logs := startNode(t, cfg)
	defer n.Close()
	p := openProducer(t, cfg, "trades")
	good := func(i int) uint64 { _, pos := p.publish(testOrder(i)); return pos }
	bad := func() uint64 {
		// An Order frame whose payload is garbage: its root offset points
		// outside the payload.
		c, err := p.pub.Claim(schema.HeaderSize+40, schema.TypeOrder, 0)
		if err != nil {
			t.Fatal(err)
		}
		pl := c.Payload()
		for i := range pl {
			pl[i] = 0xEE
		}
		p.pub.Commit(c)
		return p.pub.Position()
	}
	good(0)
	const burst = 100
	for range burst {
		bad()
	}
	last := good(1)
	p.waitDurable(last) // the durable position passed the malformed frames too
	base := "http://" + n.AdminAddr()
	code, body := httpGet(t, base+"/v1/quarantine?topic=trades&limit=1000")
	if code != 200 {
		t.Fatalf("quarantine: %d %s", code, body)
	}
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if len(lines) != burst {
		t.Fatalf("%d quarantined frames, want %d:\n%s", len(lines), burst, body)
	}
	var q struct {
		Seq    uint64
		Reason string
		Frame  []byte
	}
	if err := json.Unmarshal([]byte(lines[0]), &q); err != nil {
		t.Fatal(err)
	}
	if q.Seq != 1 || !strings.Contains(q.Reason, "Order") || len(q.Frame) != schema.HeaderSize+40 || q.Frame[30] != 0xEE {
		t.Fatalf("quarantined frame: seq %d reason %q, %d bytes", q.Seq, q.Reason, len(q.Frame))
	}
	// Good frames on both sides are in the event log.
	_, body = httpGet(t, base+"/v1/events?topic=trades&limit=10")
	ev := parseEventLines(t, body)
	if len(ev) != 2 || ev[0].Header.Seq != 0 || ev[1].Header.Seq != burst+1 {
		t.Fatalf("events around the quarantine: %s", body)
	}
	_, metrics := httpGet(t, base+"/metrics")
	if !strings.Contains(metrics, fmt.Sprintf(`tapewire_storage_quarantined_frames_total{topic="trades"} %d`, burst)) {
		t.Errorf("metrics lack the quarantine count:\n%s", grepLines(metrics, "quarantined"))
	}
	if c := strings.Count(logs.String(), "malformed frame quarantined"); c != 1 {
		t.Errorf("a burst of %d malformed frames logged %d times, want once:\n%s", burst, c, logs)
	}
	// The quarantine survives a restart.
	n.Close()
	n2, _ := startNode(t, cfg)
	defer n2.Close()
	_, body = httpGet(t, "http://"+n2.AdminAddr()+"/v1/quarantine?topic=trades&limit=1000")
	if c := strings.Count(strings.TrimSpace(body), "\n") + 1; c != burst {
		t.Fatalf("after restart: %d quarantined frames", c)
	}
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// fullDiskFS makes WAL segment writes fail with ENOSPC once armed, like a
// disk that filled up.
type fullDiskFS struct {
	vfs.FS
	armed atomic.Bool
}

func (fs *fullDiskFS) Open(name string, flags vfs.Flag) (vfs.File, error) {
	f, err := fs.FS.Open(name, flags)
	if err != nil {
		return nil, err
	}
	return &fullDiskFile{File: f, fs: fs}, nil
}

type fullDiskFile struct {
	vfs.File
	fs *fullDiskFS
}

func (f *fullDiskFile) WriteAt(p []byte, off int64) (int, error) {
	if f.fs.armed.Load() && strings.HasSuffix(f.Name(), ".wal") {
		return 0, fmt.Errorf("write %s: %w", f.Name(), syscall.ENOSPC)
	}
	return f.File.WriteAt(p, off)
}

// TestFullDisk: when the WAL device fills up, the storage tenant stops with
// an error naming the cause, /healthz says so, producers get no more
// acknowledgements, and after a restart on a healthy disk every event that
// was acknowledged is there.
func TestFullDisk(t *testing.T) {
	cfg := testConfig(t)
	cfg.LastValue.Enabled = false
	fs := &fullDiskFS{FS: vfs.Default}
	logs := &logBuffer{tb: t}
	n, err := Open(cfg, Options{FS: fs, Log: logs})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	p := openProducer(t, cfg, "trades")
	var ackedSeqs []uint64
	for i := range 200 {
		seq, pos := p.publish(testOrder(i))
		p.waitDurable(pos)
		ackedSeqs = append(ackedSeqs, seq)
	}
	fs.armed.Store(true)
	_, pos := p.publish(testOrder(1000))
	if err := p.pub.Log().WaitDurable(pos, 2*time.Second); !errors.Is(err, ring.ErrTimeout) {
		t.Fatalf("an event written to a full disk was acknowledged: %v", err)
	}
	code, body := httpGet(t, "http://"+n.AdminAddr()+"/healthz")
	if code != 503 || !strings.Contains(body, "no space left on device") {
		t.Fatalf("healthz on a full disk: %d %s", code, body)
	}
	if err := n.Close(); err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("Close after the disk filled: %v", err)
	}
	// The disk has room again: everything acknowledged is there.
	n2, _ := startNode(t, cfg)
	defer n2.Close()
	present := fetchSeqs(t, "http://"+n2.AdminAddr(), "trades", 0, ackedSeqs[len(ackedSeqs)-1])
	for _, s := range ackedSeqs {
		if !present[s] {
			t.Fatalf("acknowledged seq %d lost after the disk filled", s)
		}
	}
	// The unacknowledged event is persisted now (it was still in the ring).
	p.waitDurable(pos)
}

// TestBadConfigNode: a node refuses a configuration that breaks a limit,
// and a data directory whose WAL was removed, with errors that say what to
// do.
func TestBadConfigNode(t *testing.T) {
	cfg := testConfig(t)
	cfg.Storage.BatchBuffers = 1
	if _, err := Open(cfg, Options{Log: &logBuffer{tb: t}}); err == nil || !strings.Contains(err.Error(), "storage.batch_buffers = 1: below the minimum 2") {
		t.Fatalf("Open with batch_buffers 1: %v", err)
	}
	cfg = testConfig(t)
	n, _ := startNode(t, cfg)
	p := openProducer(t, cfg, "trades")
	_, pos := p.publish(testOrder(1))
	p.waitDurable(pos)
	if _, err := n.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	n.Close()
	if err := os.RemoveAll(cfg.walDir()); err != nil {
		t.Fatal(err)
	}
	_, err := Open(cfg, Options{Log: &logBuffer{tb: t}})
	if err == nil || !strings.Contains(err.Error(), "the WAL was replaced or truncated") {
		t.Fatalf("Open without the WAL: %v", err)
	}
}

// TestEventsHidePasswords: /v1/events renders a TransferRequest with its
// passwords replaced (schema.AppendJSONRedacted), while the stored frame
// keeps them for the trading engine.
func TestEventsHidePasswords(t *testing.T) {
	cfg := testConfig(t)
	n, _ := startNode(t, cfg)
	defer n.Close()
	p := openProducer(t, cfg, "trades")
	_, pos := p.publish(&schema.TransferRequest{UserID: "alice", FuturePassword: "hunter2", BankPassword: "s3cret", Currency: "CNY", Amount: 10})
	p.waitDurable(pos)
	code, body := httpGet(t, "http://"+n.AdminAddr()+"/v1/events?topic=trades&limit=10")
	if code != 200 {
		t.Fatalf("events: %d %s", code, body)
	}
	if strings.Contains(body, "hunter2") || strings.Contains(body, "s3cret") {
		t.Fatalf("/v1/events shows a password: %s", body)
	}
	if strings.Count(body, schema.RedactedSecret) != 2 || !strings.Contains(body, `"user_id":"alice"`) {
		t.Fatalf("/v1/events: want both passwords redacted and the rest shown: %s", body)
	}
}
