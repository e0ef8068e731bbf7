package appliance

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapewire/tapewire/schema"
)

// TestEndToEnd: a producer process publishes mixed events with durability
// waits; the appliance persists them; every event is readable through
// /v1/events, and the state keys equal a replay of the events. 1 M events
// with TAPEWIRE_LONG=1, fewer in the normal run.
func TestEndToEnd(t *testing.T) {
	count := int64(30_000)
	if longTests() {
		count = 1_000_000
	}
	cfg := testConfig(t)
	cfg.LastValue.Enabled = false
	for i := range cfg.Topics {
		if cfg.Topics[i].Name == "load" {
			cfg.Topics[i].CapacityBytes = 8 << 20
		}
	}
	n, _ := startNode(t, cfg)
	defer n.Close()
	base := "http://" + n.AdminAddr()
	o, _ := cfg.shmOptions(nil)
	dir := t.TempDir()
	lg := LoadGenConfig{Shm: o, Topic: "load", SizeBytes: 300, Count: count, WaitDurable: true, Window: 4096, Seed: 11}
	lgJSON, _ := json.Marshal(lg)
	ackedPath := filepath.Join(dir, "acked.log")
	gen := startChild(t, "loadgen", string(lgJSON), filepath.Join(dir, "stats.json"), childAckedEnv+"="+ackedPath)
	select {
	case err := <-gen.exited:
		gen.exited <- err
		if err != nil {
			t.Fatalf("producer: %v\n%s", err, gen.stderr)
		}
	case <-time.After(5 * time.Minute):
		t.Fatal("producer did not finish")
	}
	acked := readAcked(t, ackedPath)
	if int64(len(acked)) != count {
		t.Fatalf("%d events acknowledged, want %d", len(acked), count)
	}

	// Every event, in order, through /v1/events; replay the state.
	replay := map[string]uint64{} // state key → seq of its newest event
	next := acked[0]
	var frame []byte
	for from := acked[0]; ; {
		resp, err := http.Get(fmt.Sprintf("%s/v1/events?topic=load&from=%d&limit=10000", base, from))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		lines := 0
		for sc.Scan() {
			frame, err = schema.FrameFromJSON(sc.Bytes(), frame[:0])
			if err != nil {
				t.Fatalf("event line %q: %v", sc.Text(), err)
			}
			h, _ := schema.DecodeHeader(frame)
			if h.Seq != next {
				t.Fatalf("event seq %d, want %d", h.Seq, next)
			}
			next++
			key, err := StateKeyOf(frame)
			if err != nil {
				t.Fatal(err)
			}
			if key != "" {
				replay[key] = h.Seq
			}
			lines++
		}
		resp.Body.Close()
		if lines == 0 {
			break
		}
		from = next
	}
	if next != acked[len(acked)-1]+1 {
		t.Fatalf("read events up to %d, acknowledged up to %d", next-1, acked[len(acked)-1])
	}
	// The state keys equal the replay: same keys, each at the newest event.
	got := map[string]uint64{}
	for _, kind := range []string{StateQuote, StateOrder, StateAccount, StatePosition} {
		code, body := httpGet(t, fmt.Sprintf("%s/v1/state/%s/?limit=%d", base, kind, cfg.Admin.MaxEventsLimit))
		if code != 200 {
			t.Fatalf("state list %s: %d %s", kind, code, body)
		}
		for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
			if line == "" {
				continue
			}
			var item struct {
				ID    string `json:"id"`
				Frame struct {
					Header struct {
						Seq uint64 `json:"seq"`
					} `json:"header"`
				} `json:"frame"`
			}
			if err := json.Unmarshal([]byte(line), &item); err != nil {
				t.Fatalf("state line %q: %v", line, err)
			}
			got[string(stateKeyFromID(kind, item.ID))] = item.Frame.Header.Seq
		}
	}
	if len(got) != len(replay) {
		t.Fatalf("store has %d state keys, the replay %d", len(got), len(replay))
	}
	for k, seq := range replay {
		if got[k] != seq {
			t.Fatalf("state %s at seq %d, replay says %d", k, got[k], seq)
		}
	}
	t.Logf("%d events persisted and read back; %d state keys match the replay", count, len(replay))
}
