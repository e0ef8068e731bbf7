package bloom

import (
	"encoding/binary"
	"testing"
)

func key(i int) []byte {
	var k [16]byte
	binary.BigEndian.PutUint64(k[:], uint64(i))
	return k[:]
}

func TestNoFalseNegativesAndFalsePositiveRate(t *testing.T) {
	for _, n := range []int{1, 10, 1000, 50000} {
		w, err := NewWriter(10)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			w.Add(key(i))
		}
		f := w.Finish(nil)
		if !Valid(f) {
			t.Fatalf("n=%d: filter not valid", n)
		}
		for i := 0; i < n; i++ {
			if !MayContain(f, Hash(key(i))) {
				t.Fatalf("n=%d: false negative for key %d", n, i)
			}
		}
		const probes = 100000
		fp := 0
		for i := n; i < n+probes; i++ {
			if MayContain(f, Hash(key(i))) {
				fp++
			}
		}
		rate := float64(fp) / probes
		if n >= 1000 && rate > 0.02 {
			t.Errorf("n=%d: false-positive rate %.4f above 2%%", n, rate)
		}
		t.Logf("n=%d size=%d B fp=%.4f", n, len(f), rate)
	}
}

func TestEmptyAndMalformed(t *testing.T) {
	w, _ := NewWriter(10)
	f := w.Finish(nil)
	if !Valid(f) || MayContain(f, Hash([]byte("x"))) {
		t.Fatal("empty filter must be valid and match nothing")
	}
	for _, bad := range [][]byte{nil, {}, {1, 2, 3}, make([]byte, 65)} {
		if Valid(bad) {
			t.Errorf("%d-byte filter with probes %v reported valid", len(bad), bad)
		}
		if !MayContain(bad, 42) {
			t.Errorf("malformed filter must not give a negative")
		}
	}
	if _, err := NewWriter(0); err == nil {
		t.Fatal("0 bits per key accepted")
	}
}

func TestDuplicateKeysCountedOnce(t *testing.T) {
	w, _ := NewWriter(10)
	for i := 0; i < 5; i++ {
		w.Add([]byte("same"))
	}
	if w.Len() != 1 {
		t.Fatalf("Len = %d after five adds of one key", w.Len())
	}
}

func TestMayContainDoesNotAllocate(t *testing.T) {
	w, _ := NewWriter(10)
	for i := 0; i < 1000; i++ {
		w.Add(key(i))
	}
	f := w.Finish(nil)
	k := key(5)
	if a := testing.AllocsPerRun(100, func() { MayContain(f, Hash(k)) }); a != 0 {
		t.Fatalf("MayContain allocates %.1f", a)
	}
}

func FuzzMayContain(f *testing.F) {
	w, _ := NewWriter(10)
	w.Add([]byte("a"))
	f.Add(w.Finish(nil), []byte("a"))
	f.Add([]byte{0}, []byte("b"))
	f.Fuzz(func(t *testing.T, filter, k []byte) {
		_ = MayContain(filter, Hash(k))
		_ = Valid(filter)
	})
}
