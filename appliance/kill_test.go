package appliance

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func longTests() bool { return os.Getenv("TAPEWIRE_LONG") == "1" }

// TestKillLoop runs a load generator with durability waits while the
// appliance process is killed with SIGKILL at random times and restarted.
// After every restart every acknowledged sequence number is readable through
// /v1/events and the store's newest sequence number never goes backwards;
// every third restart also finds the shm segments deleted (a host reboot),
// so the topic is recreated with sequence numbers continuing from the
// store. 10 kills normally, 200 with TAPEWIRE_LONG=1.
func TestKillLoop(t *testing.T) {
	kills := 10
	if longTests() {
		kills = 200
	}
	cfg := testConfig(t)
	cfg.LastValue.Enabled = false
	cfgPath := writeConfig(t, cfg)
	dir := t.TempDir()
	ackedPath := filepath.Join(dir, "acked.log")
	addrFile := filepath.Join(dir, "addr")
	o, _ := cfg.shmOptions(nil)

	node := startChild(t, "node", cfgPath, addrFile)
	base := node.waitReady(30 * time.Second)

	lg := LoadGenConfig{Shm: o, Topic: "load", SizeBytes: 150, RatePerSec: 5000, WaitDurable: true, Window: 128, Seed: 7, AttachTimeout: time.Minute}
	lgJSON, _ := json.Marshal(lg)
	gen := startChild(t, "loadgen", string(lgJSON), filepath.Join(dir, "loadgen.json"), childAckedEnv+"="+ackedPath)

	rng := rand.New(rand.NewPCG(1, 2))
	var verified uint64 // acked sequence numbers below this are checked
	var storeMax uint64
	check := func(base string, round int) {
		t.Helper()
		acked := readAcked(t, ackedPath)
		for i := 1; i < len(acked); i++ {
			if acked[i] <= acked[i-1] {
				t.Fatalf("round %d: acked log goes backwards: %d after %d", round, acked[i], acked[i-1])
			}
		}
		var todo []uint64
		for _, s := range acked {
			if s >= verified {
				todo = append(todo, s)
			}
		}
		if len(todo) > 0 {
			present := fetchSeqs(t, base, "load", todo[0], todo[len(todo)-1])
			for _, s := range todo {
				if !present[s] {
					t.Fatalf("round %d: acknowledged sequence %d is not in the store (acked %d..%d)", round, s, todo[0], todo[len(todo)-1])
				}
			}
			verified = todo[len(todo)-1] + 1
		}
		last := storeLastSeq(t, base, "load")
		if last < storeMax {
			t.Fatalf("round %d: the store's newest sequence went backwards: %d after %d", round, last, storeMax)
		}
		storeMax = last
	}
	deleted := 0
	for round := 0; round < kills; round++ {
		time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		node.kill9()
		if round%3 == 2 {
			entries, _ := os.ReadDir(o.Dir())
			for _, e := range entries {
				os.Remove(filepath.Join(o.Dir(), e.Name()))
			}
			deleted++
		}
		node = startChild(t, "node", cfgPath, addrFile)
		base = node.waitReady(30 * time.Second)
		check(base, round)
	}
	// Let the generator get going again after the last restart, then stop
	// it and check everything once more.
	before := len(readAcked(t, ackedPath))
	deadline := time.Now().Add(20 * time.Second)
	for len(readAcked(t, ackedPath)) < before+100 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	gen.stop(30 * time.Second)
	check(base, kills)
	var st LoadGenStats
	if b, err := os.ReadFile(filepath.Join(dir, "loadgen.json")); err != nil || json.Unmarshal(b, &st) != nil {
		t.Fatalf("loadgen stats: %v", err)
	}
	acked := readAcked(t, ackedPath)
	if len(acked) < kills*10 {
		t.Fatalf("only %d events acknowledged over %d kills", len(acked), kills)
	}
	if st.Reattached < int64(deleted) {
		t.Errorf("loadgen reattached %d times, segments were deleted %d times", st.Reattached, deleted)
	}
	node.stop(30 * time.Second)
	t.Logf("%d kills (%d with shm deleted): %d events acknowledged, %d published, %d abandoned with their deleted segments, store newest seq %d",
		kills, deleted, len(acked), st.Published, st.Abandoned, storeMax)
}

// fetchSeqs reads a topic's sequence numbers in [lo, hi] through
// /v1/events.
func fetchSeqs(t testing.TB, base, topic string, lo, hi uint64) map[uint64]bool {
	t.Helper()
	out := map[uint64]bool{}
	from := lo
	for from <= hi {
		code, body := httpGet(t, fmt.Sprintf("%s/v1/events?topic=%s&from=%d&limit=10000", base, topic, from))
		if code != 200 {
			t.Fatalf("events: %d %s", code, body)
		}
		lines := parseEventLines(t, body)
		if len(lines) == 0 {
			break
		}
		for _, l := range lines {
			out[l.Header.Seq] = true
		}
		from = lines[len(lines)-1].Header.Seq + 1
	}
	return out
}

// storeLastSeq reads a topic's newest stored sequence number from
// /v1/status.
func storeLastSeq(t testing.TB, base, topic string) uint64 {
	t.Helper()
	code, body := httpGet(t, base+"/v1/status")
	if code != 200 {
		t.Fatalf("status: %d %s", code, body)
	}
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	for _, tp := range st.Topics {
		if tp.Name == topic && tp.LastStoredSeq != nil {
			return *tp.LastStoredSeq
		}
	}
	return 0
}
