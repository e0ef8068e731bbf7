package appliance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapewire/tapewire/ring"
)

// TestLoadGenFrameSizes: the small mix stays within 60..210 bytes and
// averages 100-200; the large mix covers every state kind.
func TestLoadGenFrameSizes(t *testing.T) {
	frames, err := LoadGenFrames(1, 150, 600)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, f := range frames {
		if len(f) < 60 || len(f) > 210 {
			t.Fatalf("small-mix frame of %d bytes", len(f))
		}
		total += len(f)
	}
	if avg := total / len(frames); avg < 100 || avg > 200 {
		t.Fatalf("small mix averages %d bytes", avg)
	}
	frames, err = LoadGenFrames(1, 300, 100)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, f := range frames {
		k, err := StateKeyOf(f)
		if err != nil {
			t.Fatal(err)
		}
		if k != "" {
			kind, _ := stateIDFromKey([]byte(k))
			kinds[kind] = true
		}
	}
	for _, k := range []string{StateQuote, StateOrder, StateAccount, StatePosition} {
		if !kinds[k] {
			t.Errorf("large mix has no %s state", k)
		}
	}
}

// TestLoadGenReattachesToRecreatedTopic: the appliance dies and its topic's
// segment vanishes (a host reboot); the next start recreates the topic
// with sequence numbers continuing from the store, and a running load
// generator finds its mapping replaced (ring.Log.Replaced), reattaches and
// goes on: its acknowledged sequence numbers keep increasing, and every one
// is stored.
func TestLoadGenReattachesToRecreatedTopic(t *testing.T) {
	cfg := testConfig(t)
	cfg.LastValue.Enabled = false
	n, _ := startNode(t, cfg)
	tc, _ := cfg.Topic("trades")
	o, _ := cfg.shmOptions(tc)
	var acked lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		st  LoadGenStats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := RunLoadGen(ctx, LoadGenConfig{Shm: o, Topic: "trades", SizeBytes: 150, RatePerSec: 2000,
			WaitDurable: true, Window: 64, AckedLog: &acked, Seed: 5, AttachTimeout: 20 * time.Second})
		done <- result{st, err}
	}()
	waitAcked := func(min int) []uint64 {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			seqs := acked.seqs(t)
			if len(seqs) >= min {
				return seqs
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d events acknowledged after 20 s, want %d", len(seqs), min)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	before := len(waitAcked(200))
	crashNode(n)
	if err := os.Remove(filepath.Join(o.Dir(), "trades"+ring.LogSuffix)); err != nil {
		t.Fatal(err)
	}
	n2, _ := startNode(t, cfg)
	defer n2.Close()
	seqs := waitAcked(before + 200)
	cancel()
	r := <-done
	if r.err != nil && !errors.Is(r.err, context.Canceled) {
		t.Fatalf("load generator: %v", r.err)
	}
	if r.st.Reattached < 1 {
		t.Fatalf("load generator reattached %d times, want at least 1 (stats %+v)", r.st.Reattached, r.st)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("acknowledged sequence numbers go backwards: %d after %d", seqs[i], seqs[i-1])
		}
	}
	code, body := httpGet(t, fmt.Sprintf("http://%s/v1/events?topic=trades&from=%d&limit=1", n2.AdminAddr(), seqs[len(seqs)-1]))
	if lines := parseEventLines(t, body); code != 200 || len(lines) != 1 || lines[0].Header.Seq != seqs[len(seqs)-1] {
		t.Fatalf("newest acknowledged event %d not stored: %d %s", seqs[len(seqs)-1], code, body)
	}
}

// lockedBuffer is an io.Writer the test reads while the load generator
// writes to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) seqs(t *testing.T) []uint64 {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []uint64
	for _, f := range strings.Fields(b.buf.String()) {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			t.Fatalf("acked log line %q: %v", f, err)
		}
		out = append(out, v)
	}
	return out
}
