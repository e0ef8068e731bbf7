package appliance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/vfs"
)

// testShmBase is this test process's shm base: a test-specific directory
// under /dev/shm, removed at the end.
var testShmBase = fmt.Sprintf("/dev/shm/tapewire-test-appliance-%d", os.Getpid())

var nsClean = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// testConfig is a small node: data under t.TempDir() (ext4 here), topics in
// a namespace of their own, admin API on an ephemeral loopback port, cheap
// password hashing.
func testConfig(t testing.TB) Config {
	t.Helper()
	dir := t.TempDir()
	if _, inMemory, err := vfs.FileSystemType(dir); err != nil || inMemory {
		t.Fatalf("durability tests need a disk file system: %s is tmpfs (set TMPDIR to a directory on ext4/xfs)", dir)
	}
	cfg := DefaultConfig()
	cfg.Node.DataDir = filepath.Join(dir, "data")
	cfg.Shm.Base = testShmBase
	ns := nsClean.ReplaceAllString(t.Name(), "-")
	if len(ns) > 60 {
		ns = ns[len(ns)-60:]
	}
	cfg.Shm.Namespace = strings.Trim(ns, "-")
	cfg.Shm.Populate = false
	cfg.WAL.SegmentSizeBytes = 8 << 20
	cfg.LSM.MemTableSizeBytes = 8 << 20
	cfg.LSM.BaseLevelBytes = 8 << 20
	cfg.LSM.TargetFileSizeBytes = 8 << 20
	cfg.Checkpoint.IntervalMs = 0
	cfg.Checkpoint.WALBytes = 0
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Users.Argon2MemoryKiB = 8 << 10
	cfg.Users.Argon2Threads = 1
	cfg.Shutdown.DrainTimeoutMs = 5000
	for i := range cfg.Topics {
		if cfg.Topics[i].Kind == KindLog {
			cfg.Topics[i].CapacityBytes = 1 << 20
			cfg.Topics[i].MaxFrameBytes = 16 << 10
		}
	}
	o, _ := cfg.shmOptions(nil)
	t.Cleanup(func() { os.RemoveAll(o.Dir()) })
	return cfg
}

// logBuffer collects a node's log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	tb  testing.TB
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if testing.Verbose() {
		l.tb.Logf("node: %s", strings.TrimRight(string(p), "\n"))
	}
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func startNode(t testing.TB, cfg Config) (*Node, *logBuffer) {
	t.Helper()
	logs := &logBuffer{tb: t}
	n, err := Open(cfg, Options{Log: logs})
	if err != nil {
		t.Fatalf("open node: %v\nlog:\n%s", err, logs)
	}
	if err := n.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	return n, logs
}

// producer publishes events to a topic of cfg.
type producer struct {
	t   testing.TB
	pub *ring.Publisher
	buf []byte
}

func openProducer(t testing.TB, cfg Config, topic string) *producer {
	t.Helper()
	tc, ok := cfg.Topic(topic)
	if !ok {
		t.Fatalf("no topic %s", topic)
	}
	o, _ := cfg.shmOptions(tc)
	p, err := ring.OpenPublisher(o, topic, ring.PublisherOptions{BackPressureTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return &producer{t: t, pub: p, buf: make([]byte, 0, 4096)}
}

// publish commits ev and returns its sequence number and end position.
func (p *producer) publish(ev schema.Event) (uint64, uint64) {
	p.t.Helper()
	var err error
	p.buf, err = schema.AppendEvent(p.buf[:0], schema.Header{PublishNs: time.Now().UnixNano()}, ev)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.pub.Offer(p.buf); err != nil {
		p.t.Fatal(err)
	}
	return p.pub.NextSeq() - 1, p.pub.Position()
}

func (p *producer) waitDurable(pos uint64) {
	p.t.Helper()
	if err := p.pub.Log().WaitDurable(pos, 20*time.Second); err != nil {
		p.t.Fatal(err)
	}
}

func httpGet(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func httpPost(t testing.TB, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// eventLine is the part of a /v1/events line the tests read.
type eventLine struct {
	Header struct {
		Type string `json:"type"`
		Seq  uint64 `json:"seq"`
	} `json:"header"`
	Event json.RawMessage `json:"event"`
}

func parseEventLines(t testing.TB, body string) []eventLine {
	t.Helper()
	var out []eventLine
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		if line == "" {
			continue
		}
		var e eventLine
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("event line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

func testOrder(i int) *schema.Order {
	return &schema.Order{
		UserID: fmt.Sprintf("user%d", i%7), OrderID: fmt.Sprintf("o-%d", i), ExchangeID: "SHFE",
		InstrumentID: "SHFE.cu2501", VolumeOrign: int64(i%10 + 1), LimitPrice: 70000 + float64(i%50),
		Status: schema.OrderStatus(i % 2), VolumeLeft: int64(i % 3), LastMsg: "ok",
	}
}

// openStorageByHand opens a node without starting its tenants (no last-value
// tenant), so a test drives the storage pipeline itself, and a producer on
// its "trades" topic. The caller closes the stores (n.closeStores).
func openStorageByHand(t *testing.T) (*Node, *storage, *producer) {
	t.Helper()
	cfg := testConfig(t)
	cfg.LastValue.Enabled = false
	n, err := Open(cfg, Options{Log: &logBuffer{tb: t}})
	if err != nil {
		t.Fatal(err)
	}
	n.storage.parker = newParker(n.storage)
	return n, n.storage, openProducer(t, cfg, "trades")
}
