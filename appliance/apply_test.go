package appliance

import (
	"bytes"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/tapewire/tapewire/lsm"
	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/wal"
)

func openTestStore(t *testing.T) *lsm.DB {
	t.Helper()
	db, err := lsm.Open(t.TempDir(), lsm.Options{Durability: lsm.ExternalLog, MemTableSizeBytes: 16 << 20, Partition: storePartition})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// stateFrames returns n frames whose state keys repeat often: mixed events
// with state (orders, ticks, accounts, positions) and without.
func stateFrames(t *testing.T, n int) [][]byte {
	t.Helper()
	var frames [][]byte
	for _, size := range []int{150, 300} { // 150: orders among trades, requests...; 300: ticks, accounts, positions
		fs, err := LoadGenFrames(uint64(size), size, n/2)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, fs...)
	}
	return frames
}

// TestCoalescedStateEqualsReplay: the applier's batches write only the last
// update of each state key per batch; after every batch the store's state
// keys equal a replay of all events so far, one at a time, and the event
// log holds every event.
func TestCoalescedStateEqualsReplay(t *testing.T) {
	db := openTestStore(t)
	rng := rand.New(rand.NewPCG(7, 8))
	variants := stateFrames(t, 400)
	model := map[string][]byte{} // state key → newest frame
	var sb storeBatch
	var lsn wal.LSN
	seq := uint64(0)
	coalesced := 0
	for round := 0; round < 60; round++ {
		sb.reset()
		n := 1 + rng.IntN(3000)
		if round == 0 {
			n = 3 * coalesceMaxKeys // more distinct keys than one coalescing round holds
		}
		distinct := map[string]bool{}
		events, updates := 0, 0
		for range n {
			f := append([]byte(nil), variants[rng.IntN(len(variants))]...)
			if round == 0 {
				// Distinct orders, so the coalescer overflows.
				var err error
				f, err = schema.AppendEvent(nil, schema.Header{}, testOrder(int(seq)))
				if err != nil {
					t.Fatal(err)
				}
			}
			setFrameSeq(t, f, seq)
			rec := FrameRecord(7, f)
			lsn++
			if err := sb.add(rec.Type, lsn, rec.Payload); err != nil {
				t.Fatal(err)
			}
			// The record's memory is reused by the caller: clobber it.
			clear(rec.Payload)
			key, err := StateKeyOf(f)
			if err != nil {
				t.Fatal(err)
			}
			if key != "" {
				model[key] = f
				distinct[key] = true
				updates++
			}
			events++
			seq++
		}
		b := sb.batch()
		if round > 0 {
			if want := events + len(distinct); int(b.Count()) != want {
				t.Fatalf("round %d: batch of %d entries, want %d events + %d distinct state keys", round, b.Count(), events, len(distinct))
			}
			coalesced += updates - len(distinct)
		}
		if err := db.ApplyAt(b, uint64(lsn)); err != nil {
			t.Fatal(err)
		}
		checkStateEquals(t, db, model, round)
	}
	// The event log holds every event.
	lower, upper := topicPrefix('e', 7)
	it := db.NewIter(&lsm.IterOptions{LowerBound: lower, UpperBound: upper})
	defer it.Close()
	next := uint64(0)
	for ok := it.First(); ok; ok = it.Next() {
		if _, s, _ := parseTopicSeqKey(it.Key()); s != next {
			t.Fatalf("event log: seq %d, want %d", s, next)
		}
		next++
	}
	if next != seq {
		t.Fatalf("event log holds %d events, %d were applied", next, seq)
	}
	if coalesced == 0 {
		t.Fatal("no state update was coalesced: the test shows nothing")
	}
	t.Logf("%d events, %d state keys, %d state updates coalesced away", seq, len(model), coalesced)
}

// setFrameSeq sets a frame's sequence number.
func setFrameSeq(t *testing.T, f []byte, seq uint64) {
	h, err := schema.DecodeHeader(f)
	if err != nil {
		t.Fatal(err)
	}
	h.Seq = seq
	schema.EncodeHeader(f, h)
}

func checkStateEquals(t *testing.T, db *lsm.DB, model map[string][]byte, round int) {
	t.Helper()
	keys := make([]string, 0, len(model))
	for k := range model {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	it := db.NewIter(&lsm.IterOptions{LowerBound: []byte("s/"), UpperBound: []byte("s0")})
	defer it.Close()
	i := 0
	for ok := it.First(); ok; ok = it.Next() {
		if i >= len(keys) || string(it.Key()) != keys[i] {
			t.Fatalf("round %d: state key %d is %q, the replay has %q", round, i, it.Key(), keys[min(i, len(keys)-1)])
		}
		if !bytes.Equal(it.Value(), model[keys[i]]) {
			t.Fatalf("round %d: state %s is not the newest event of its key", round, keys[i])
		}
		i++
	}
	if i != len(keys) {
		t.Fatalf("round %d: store has %d state keys, the replay %d", round, i, len(keys))
	}
}

// TestCoalescerGenerationWrap: when the generation counter wraps, every
// slot is cleared, so no slot of an old generation claims a key.
func TestCoalescerGenerationWrap(t *testing.T) {
	var c stateCoalescer
	var b lsm.Batch
	c.put(&b, []byte("s/quote/a"), []byte("1"))
	// 2^32-2 batches later: the slot of "a" still says generation 1,
	// which the wrap is about to reuse.
	c.gen = ^uint32(0)
	c.reset()
	if c.gen != 1 {
		t.Fatalf("generation %d after the wrap, want 1", c.gen)
	}
	c.put(&b, []byte("s/quote/a"), []byte("2"))
	if len(c.updates) != 1 {
		t.Fatalf("%d updates after one put into a fresh generation", len(c.updates))
	}
	c.emit(&b)
	if b.Count() != 1 {
		t.Fatalf("batch holds %d entries, want 1", b.Count())
	}
}

// TestStorePartition: partition ids never decrease in key order over the
// key spaces the appliance writes, each topic's log and quarantine is a
// partition of its own, and the state is one partition.
func TestStorePartition(t *testing.T) {
	var keys [][]byte
	for _, topic := range []uint32{1, 2, 3, 255, 256, 1 << 24, ^uint32(0)} {
		for _, seq := range []uint64{0, 1, 1 << 40, ^uint64(0)} {
			keys = append(keys, appendEventKey(nil, topic, seq), appendQuarantineKey(nil, topic, seq))
		}
	}
	for _, kind := range StateKinds {
		keys = append(keys, appendStateKey(nil, kind, []byte("u1"), []byte("x/y")), appendStateKey(nil, kind, []byte("zz"), nil))
	}
	keys = append(keys, catalogKey("load"), catalogKey("users"), []byte{}, []byte("e"), []byte("s"))
	sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i], keys[j]) < 0 })
	for i := 1; i < len(keys); i++ {
		if storePartition(keys[i-1]) > storePartition(keys[i]) {
			t.Fatalf("partition of %q (%x) above that of the next key %q (%x)", keys[i-1], storePartition(keys[i-1]), keys[i], storePartition(keys[i]))
		}
	}
	distinct := map[uint64]string{}
	for _, k := range [][]byte{appendEventKey(nil, 1, 5), appendEventKey(nil, 2, 5), appendQuarantineKey(nil, 1, 5), []byte("s/order/a"), catalogKey("x")} {
		p := storePartition(k)
		if other, ok := distinct[p]; ok {
			t.Fatalf("%q and %q share partition %x", k, other, p)
		}
		distinct[p] = string(k)
	}
	if storePartition([]byte("s/order/a/b")) != storePartition([]byte("s/quote/x")) {
		t.Fatal("state kinds in different partitions")
	}
	if storePartition(appendEventKey(nil, 9, 1)) != storePartition(appendEventKey(nil, 9, 1<<50)) {
		t.Fatal("one topic's events in different partitions")
	}
}
