package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

func TestLastValuePutGet(t *testing.T) {
	o := testOptions(t)
	w, err := CreateLastValue(o, "q", LastValueConfig{Slots: 8, MaxValueBytes: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := OpenLastValue(o, "q")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 256)
	if _, _, err := r.Get("BTC-USD", buf); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	for i := 0; i < 8; i++ {
		if _, err := w.Put(fmt.Sprintf("k%d", i), []byte(fmt.Sprintf("value-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Put("k8", []byte("x")); !errors.Is(err, ErrTableFull) {
		t.Fatalf("ninth key in 8 slots: %v", err)
	}
	v, err := w.Put("k3", []byte("newer"))
	if err != nil || v != 2 {
		t.Fatalf("second put of k3: version %d, %v", v, err)
	}
	n, ver, err := r.Get("k3", buf)
	if err != nil || string(buf[:n]) != "newer" || ver != 2 {
		t.Fatalf("get k3: %q v%d %v", buf[:n], ver, err)
	}
	if r.TableVersion() != 9 || r.KeyCount() != 8 || len(r.Entries()) != 8 {
		t.Fatalf("table version %d keys %d entries %d", r.TableVersion(), r.KeyCount(), len(r.Entries()))
	}
	if _, _, err := r.Get("k3", buf[:2]); !errors.Is(err, ErrBufferTooSmall) {
		t.Fatalf("short buffer: %v", err)
	}
	if _, err := w.Put("k1", make([]byte, 257)); !errors.Is(err, ErrFrameSize) {
		t.Fatalf("oversized value: %v", err)
	}
	if _, err := OpenLastValueWriter(o, "q"); !errors.Is(err, ErrPublisherExists) {
		t.Fatalf("second writer: %v", err)
	}
	// A new writer after the first closes rebuilds its index from the table.
	w.Close()
	w2, err := OpenLastValueWriter(o, "q")
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if v, err := w2.Put("k3", []byte("third")); err != nil || v != 3 {
		t.Fatalf("put after writer restart: v%d %v", v, err)
	}
}

// Readers racing a writer must only ever see whole values: each value is a
// 256-byte quote whose 32 words all hold the same counter, and whose
// version matches the counter.
func TestLastValueReadersNeverSeeTornValues(t *testing.T) {
	o := testOptions(t)
	w, err := CreateLastValue(o, "quotes", LastValueConfig{Slots: 4, MaxValueBytes: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := OpenLastValue(o, "quotes")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	value := make([]byte, 256)
	put := func(i uint64) {
		for off := 0; off < len(value); off += 8 {
			binary.LittleEndian.PutUint64(value[off:], i)
		}
		if _, err := w.Put("BTC-USD", value); err != nil {
			t.Error(err)
		}
	}
	put(1)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var reads atomic.Int64
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256)
			slot, err := r.Lookup("BTC-USD")
			if err != nil {
				t.Error(err)
				return
			}
			for !stop.Load() {
				n, ver, err := r.GetSlot(slot, buf)
				if errors.Is(err, ErrContended) {
					continue
				}
				if err != nil || n != 256 {
					t.Errorf("get: n=%d %v", n, err)
					return
				}
				first := binary.LittleEndian.Uint64(buf)
				for off := 8; off < n; off += 8 {
					if binary.LittleEndian.Uint64(buf[off:]) != first {
						t.Errorf("torn value: word %d is %d, word 0 is %d", off/8, binary.LittleEndian.Uint64(buf[off:]), first)
						return
					}
				}
				if ver != first {
					t.Errorf("version %d for value %d", ver, first)
					return
				}
				reads.Add(1)
			}
		}()
	}
	for i := uint64(2); i < 200000; i++ {
		put(i)
	}
	stop.Store(true)
	wg.Wait()
	if reads.Load() == 0 {
		t.Fatal("no successful reads")
	}
}

// A writer that dies inside an update leaves the slot's seqlock odd: readers
// cannot finish a read (ErrContended, never a torn value); the next writer
// to attach marks the value lost (ErrNotFound, still never the torn bytes)
// until it rewrites the key.
func TestLastValueWriterDeathMidUpdate(t *testing.T) {
	o := testOptions(t)
	w, err := CreateLastValue(o, "d", LastValueConfig{Slots: 4, MaxValueBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	w.Put("k", []byte("before"))
	slot := w.index["k"]
	atomic.AddUint64(w.lv.slotSeq(slot), 1) // the dying writer's WriteBegin
	copy(w.lv.slotValue(slot), "torn!!")
	w.Close()
	r, err := OpenLastValue(o, "d")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 64)
	if _, _, err := r.Get("k", buf); !errors.Is(err, ErrContended) {
		t.Fatalf("read of a slot left mid-update: %v, want ErrContended", err)
	}
	w2, err := OpenLastValueWriter(o, "d")
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if _, _, err := r.Get("k", buf); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after a new writer attached, the torn value must read as lost: %v", err)
	}
	if v, err := w2.Put("k", []byte("after")); err != nil || v != 3 {
		t.Fatalf("put after repair: version %d, %v", v, err)
	}
	n, _, err := r.Get("k", buf)
	if err != nil || string(buf[:n]) != "after" {
		t.Fatalf("read after repair: %q %v", buf[:n], err)
	}
}
