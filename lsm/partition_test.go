package lsm

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/tapewire/tapewire/lsm/internal/arenabt"
	"github.com/tapewire/tapewire/lsm/internal/compact"
	"github.com/tapewire/tapewire/lsm/internal/manifest"
	"github.com/tapewire/tapewire/vfs"
)

// eventPartition partitions like the appliance: e/<topic>/<seq> keys by
// topic (two digits here), every other key by its first byte. Monotonic.
func eventPartition(k []byte) uint64 {
	if len(k) >= 4 && k[0] == 'e' && k[1] == '/' {
		return 'e'<<16 | uint64(k[2])<<8 | uint64(k[3])
	}
	if len(k) == 0 {
		return 0
	}
	return uint64(k[0]) << 16
}

func eventKey(topic, seq int) []byte { return []byte(fmt.Sprintf("e/%02d/%010d", topic, seq)) }

// eventWorkload applies batches in the appliance's shape: each event
// appends to its topic's log, and one in three also updates a state key.
// It returns the final contents.
func eventWorkload(t *testing.T, d *DB, topics, events int, rng *rand.Rand) map[string]string {
	t.Helper()
	model := map[string]string{}
	seqs := make([]int, topics+1)
	var b Batch
	lsn := d.CoveredLSN()
	for i := 0; i < events; {
		b.Reset()
		for n := 1 + rng.IntN(16); n > 0 && i < events; n-- {
			topic := 1 + rng.IntN(topics)
			k := eventKey(topic, seqs[topic])
			seqs[topic]++
			v := fmt.Sprintf("event-%d-%s", i, bytes.Repeat([]byte{'x'}, 40+rng.IntN(60)))
			b.Set(k, []byte(v))
			model[string(k)] = v
			if i%3 == 0 {
				sk := fmt.Sprintf("s/order/%03d", rng.IntN(150))
				b.Set([]byte(sk), []byte(v))
				model[sk] = v
			}
			i++
		}
		lsn++
		if err := d.ApplyAt(&b, lsn); err != nil {
			t.Fatal(err)
		}
	}
	return model
}

func checkContents(t *testing.T, d *DB, model map[string]string) {
	t.Helper()
	keys := make([]string, 0, len(model))
	for k := range model {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	it := d.NewIter(nil)
	defer it.Close()
	i := 0
	for ok := it.First(); ok; ok = it.Next() {
		if i >= len(keys) || string(it.Key()) != keys[i] || string(it.Value()) != model[keys[i]] {
			t.Fatalf("entry %d: got %q, want %q", i, it.Key(), keys[min(i, len(keys)-1)])
		}
		i++
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	if i != len(keys) {
		t.Fatalf("scan found %d of %d keys", i, len(keys))
	}
}

// checkTablesWithinPartitions fails if any table's first and last keys lie
// in different partitions (with a monotonic Partition, then it holds keys
// of one partition only), and returns the number of tables.
func checkTablesWithinPartitions(t *testing.T, d *DB, stage string) int {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for level, files := range d.current.Levels {
		for _, f := range files {
			n++
			if a, b := eventPartition(f.SmallestUser()), eventPartition(f.LargestUser()); a != b {
				t.Fatalf("%s: L%d table %s spans partitions %x and %x", stage, level, f, a, b)
			}
		}
	}
	return n
}

// TestPartitionedTablesNeverSpanPartitions: flushes and compactions (the
// automatic ones and a manual full compaction) cut their outputs at every
// partition boundary, and the contents stay right.
func TestPartitionedTablesNeverSpanPartitions(t *testing.T) {
	o := crashOptions(vfs.NewCrashFS(11), ExternalLog)
	o.Partition = eventPartition
	d := mustOpen(t, "/db", o)
	defer d.Close()
	model := eventWorkload(t, d, 3, 6000, rand.New(rand.NewPCG(1, 2)))
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, d)
	if n := checkTablesWithinPartitions(t, d, "after flushes"); n < 4 {
		t.Fatalf("%d tables for 4 partitions", n)
	}
	checkContents(t, d, model)
	if err := d.Compact(nil, nil); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, d)
	checkTablesWithinPartitions(t, d, "after a full manual compaction")
	checkContents(t, d, model)
	// Reopened and replayed from the covered LSN, the same holds.
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = mustOpen(t, "/db", o)
	checkTablesWithinPartitions(t, d, "after reopen")
	checkContents(t, d, model)
}

// TestPartitionedEventLogMovesToBottom: with the event log of each topic in
// its own partition, every event table reaches the bottom level by moves
// and no compaction ever reads one: compactions rewrite only the state
// keys. L0 stays as deep as the state tables alone make it.
func TestPartitionedEventLogMovesToBottom(t *testing.T) {
	o := crashOptions(vfs.NewCrashFS(12), ExternalLog)
	o.Partition = eventPartition
	o.L0CompactionTrigger, o.L0StopWritesThreshold = 3, 8
	d := mustOpen(t, "/db", o)
	defer d.Close()
	rewroteEvents := 0
	var rewrites int
	d.mu.Lock()
	d.testHookRewrite = func(c *compact.Compaction) {
		rewrites++
		for _, f := range c.Files() {
			if f.SmallestUser()[0] == 'e' {
				rewroteEvents++
			}
		}
	}
	d.mu.Unlock()
	model := eventWorkload(t, d, 3, 20000, rand.New(rand.NewPCG(3, 4)))
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, d)
	d.mu.Lock()
	v := d.current
	bottom := manifest.NumLevels - 1
	for level, files := range v.Levels {
		for _, f := range files {
			if f.SmallestUser()[0] == 'e' && level != bottom {
				d.mu.Unlock()
				t.Fatalf("event table %s left in L%d", f, level)
			}
		}
	}
	depth := v.L0Depth
	d.mu.Unlock()
	m := d.Metrics()
	if rewroteEvents > 0 {
		t.Fatalf("%d event tables were rewritten by compactions: %v", rewroteEvents, m)
	}
	if m.Flushes < 10 || m.TrivialMoves == 0 || rewrites == 0 {
		t.Fatalf("workload too small to show anything (flushes %d, moves %d, rewrites %d)", m.Flushes, m.TrivialMoves, rewrites)
	}
	if depth >= o.L0CompactionTrigger {
		t.Fatalf("L0 depth %d at rest, trigger %d", depth, o.L0CompactionTrigger)
	}
	checkContents(t, d, model)
	t.Logf("%d rewrites (state only), %v", rewrites, m)
}

// TestPartitionLanesSkipSearches: a batch interleaving three topics' event
// logs with random state keys inserts every event key through its
// partition's finger (memtable leaf); without Partition one shared finger
// makes most of them descend the tree.
func TestPartitionLanesSkipSearches(t *testing.T) {
	for _, partitioned := range []bool{true, false} {
		o := crashOptions(vfs.NewCrashFS(13), ExternalLog)
		o.MemTableSizeBytes = 8 << 20
		if partitioned {
			o.Partition = eventPartition
		}
		d := mustOpen(t, "/db", o)
		rng := rand.New(rand.NewPCG(5, 6))
		var b Batch
		seqs := [4]int{}
		events := 0
		for lsn := uint64(1); lsn <= 200; lsn++ {
			b.Reset()
			for range 50 {
				topic := 1 + rng.IntN(3)
				b.Set(eventKey(topic, seqs[topic]), []byte("event"))
				seqs[topic]++
				events++
				b.Set([]byte(fmt.Sprintf("s/%04d", rng.IntN(1000))), []byte("state"))
			}
			if err := d.ApplyAt(&b, lsn); err != nil {
				t.Fatal(err)
			}
		}
		var eventSearches uint64
		if partitioned {
			seen := map[*arenabt.Inserter]bool{}
			for topic := 1; topic <= 3; topic++ {
				ins := b.st.inserterFor(o.Partition, eventKey(topic, 0))
				if seen[ins] {
					t.Fatalf("topics share a lane: pick other test topics")
				}
				seen[ins] = true
				eventSearches += ins.Searches
			}
			if st := b.st.inserterFor(o.Partition, []byte("s/0000")); seen[st] {
				t.Fatalf("state keys share a lane with a topic: pick other test topics")
			}
			// A few searches per lane while the list grows taller.
			if eventSearches > 3*20 {
				t.Fatalf("%d event inserts searched %d times through their lanes", events, eventSearches)
			}
		} else if b.st.ins.Searches < uint64(events/2) {
			t.Fatalf("one shared finger descended only %d times for %d interleaved event inserts: the test shows nothing", b.st.ins.Searches, events)
		}
		d.Close()
	}
}

// TestBloomBitsPerKeyFor: with partitioned tables, the event log's tables
// are written without a filter and the state's with one; reads of both
// stay right.
func TestBloomBitsPerKeyFor(t *testing.T) {
	o := crashOptions(vfs.NewCrashFS(14), ExternalLog)
	o.Partition = eventPartition
	o.BloomBitsPerKeyFor = func(k []byte) int {
		if len(k) > 0 && k[0] == 'e' {
			return -1
		}
		return 0
	}
	d := mustOpen(t, "/db", o)
	defer d.Close()
	model := eventWorkload(t, d, 2, 3000, rand.New(rand.NewPCG(9, 10)))
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, d)
	d.mu.Lock()
	events, state := 0, 0
	for _, files := range d.current.Levels {
		for _, f := range files {
			p := tableOf(f).r.Properties()
			switch event := f.SmallestUser()[0] == 'e'; {
			case event && p.BloomBitsPerKey != 0:
				d.mu.Unlock()
				t.Fatalf("event table %s has a %d-bit filter", f, p.BloomBitsPerKey)
			case !event && p.BloomBitsPerKey == 0:
				d.mu.Unlock()
				t.Fatalf("state table %s has no filter", f)
			case event:
				events++
			default:
				state++
			}
		}
	}
	d.mu.Unlock()
	if events == 0 || state == 0 {
		t.Fatalf("%d event and %d state tables: the test shows nothing", events, state)
	}
	checkContents(t, d, model)
	for k, v := range model {
		if got, ok := get(t, d, k); !ok || got != v {
			t.Fatalf("Get(%q) = %q, %v", k, got, ok)
		}
	}
}
