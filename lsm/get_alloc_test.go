package lsm

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tapewire/tapewire/vfs"
)

// TestGetDoesNotAllocate guards the read path: a Get that hits the memtable,
// one that hits a table (through bloom, index and a verified block of an
// mmapped file) and one that misses everywhere allocate nothing.
func TestGetDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops sync.Pool items at random; run without -race")
	}
	d := mustOpen(t, t.TempDir(), testOptions(vfs.Default))
	defer d.Close()
	for i := 0; i < 3000; i++ {
		if err := d.Set([]byte(fmt.Sprintf("table%06d", i)), []byte("value"), NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := d.Set([]byte("mem"), []byte("value"), NoSync); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key   string
		found bool
	}{{"mem", true}, {"table001234", true}, {"table999999", false}, {"absent", false}} {
		key := []byte(c.key)
		allocs := testing.AllocsPerRun(500, func() {
			v, closer, err := d.Get(key)
			if c.found {
				if err != nil || string(v) != "value" {
					t.Fatalf("Get(%s) = %q, %v", key, v, err)
				}
				closer.Close()
			} else if !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get(%s): %v, want ErrNotFound", key, err)
			}
		})
		if allocs != 0 {
			t.Errorf("Get(%s) allocates %.2f times per call", key, allocs)
		}
	}
}

// TestSetDoesNotAllocate guards the write path of an unsynced Set.
func TestSetDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops sync.Pool items at random; run without -race")
	}
	d := mustOpen(t, t.TempDir(), Options{WAL: walTestOptions()})
	defer d.Close()
	key := make([]byte, 16)
	val := make([]byte, 100)
	i := 0
	allocs := testing.AllocsPerRun(2000, func() {
		i++
		key[0], key[1] = byte(i>>8), byte(i)
		if err := d.Set(key, val, NoSync); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0.01 {
		t.Errorf("Set allocates %.3f times per call", allocs)
	}
}

// TestScanDoesNotAllocate: opening a bounded iterator, seeking and reading
// 100 entries allocates nothing once the iterator pool is warm.
func TestScanDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops sync.Pool items at random; run without -race")
	}
	d := mustOpen(t, t.TempDir(), testOptions(vfs.Default))
	defer d.Close()
	for i := 0; i < 3000; i++ {
		if err := d.Set([]byte(fmt.Sprintf("k%06d", i)), []byte("value"), NoSync); err != nil {
			t.Fatal(err)
		}
		if i == 1500 {
			if err := d.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	opts := &IterOptions{LowerBound: []byte("k000100"), UpperBound: []byte("k002900")}
	start := []byte("k001450")
	allocs := testing.AllocsPerRun(200, func() {
		it := d.NewIter(opts)
		n := 0
		for ok := it.SeekGE(start); ok && n < 100; ok = it.Next() {
			n++
		}
		if n != 100 {
			t.Fatalf("scan read %d entries", n)
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("a 100-entry scan allocates %.2f times", allocs)
	}
}
