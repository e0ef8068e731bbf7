package lsm

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tapewire/tapewire/vfs"
)

func testOptions(fs vfs.FS) Options {
	return Options{
		FS:                  fs,
		MemTableSizeBytes:   256 << 10,
		BaseLevelBytes:      512 << 10,
		TargetFileSizeBytes: 128 << 10,
		BlockSizeBytes:      512,
		WAL:                 walTestOptions(),
	}
}

func mustOpen(t testing.TB, dir string, o Options) *DB {
	t.Helper()
	d, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func get(t testing.TB, d *DB, key string) (string, bool) {
	t.Helper()
	v, c, err := d.Get([]byte(key))
	if errors.Is(err, ErrNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	s := string(v)
	c.Close()
	return s, true
}

func TestBasicPutGetFlushCompactReopen(t *testing.T) {
	dir := t.TempDir()
	d := mustOpen(t, dir, testOptions(vfs.Default))
	const n = 5000
	for i := 0; i < n; i++ {
		if err := d.Set([]byte(fmt.Sprintf("key%06d", i)), []byte(fmt.Sprintf("value%06d", i)), NoSync); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i += 3 {
		if err := d.Delete([]byte(fmt.Sprintf("key%06d", i)), NoSync); err != nil {
			t.Fatal(err)
		}
	}
	check := func(stage string) {
		for i := 0; i < n; i++ {
			v, ok := get(t, d, fmt.Sprintf("key%06d", i))
			if i%3 == 0 {
				if ok {
					t.Fatalf("%s: deleted key%06d found", stage, i)
				}
				continue
			}
			if !ok || v != fmt.Sprintf("value%06d", i) {
				t.Fatalf("%s: key%06d = %q %v", stage, i, v, ok)
			}
		}
		it := d.NewIter(&IterOptions{LowerBound: []byte("key"), UpperBound: []byte("kez")})
		count := 0
		for ok := it.First(); ok; ok = it.Next() {
			count++
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		if want := n - (n+2)/3; count != want {
			t.Fatalf("%s: iterated %d keys, want %d", stage, count, want)
		}
	}
	check("memtable")
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	check("flushed")
	if err := d.Compact(nil, nil); err != nil {
		t.Fatal(err)
	}
	check("compacted")
	t.Log(d.Metrics())
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = mustOpen(t, dir, testOptions(vfs.Default))
	check("reopened")
	for i := 0; i < 100; i++ {
		d.Set([]byte(fmt.Sprintf("late%03d", i)), []byte("x"), Sync)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = mustOpen(t, dir, testOptions(vfs.Default))
	defer d.Close()
	check("reopened twice")
	if _, ok := get(t, d, "late099"); !ok {
		t.Fatal("synced write lost across reopen")
	}
}

func TestUseAfterClose(t *testing.T) {
	d := mustOpen(t, "/db", crashOptions(vfs.NewCrashFS(1), Standalone))
	if err := d.Set([]byte("a"), []byte("1"), Sync); err != nil {
		t.Fatal(err)
	}
	it := d.NewIter(nil)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// An iterator opened before Close still reads its view.
	if !it.First() || string(it.Key()) != "a" {
		t.Fatalf("iterator opened before Close: valid=%v err=%v", it.Valid(), it.Error())
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Get([]byte("a")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := d.Set([]byte("b"), nil, NoSync); !errors.Is(err, ErrClosed) {
		t.Fatalf("Set after Close: %v", err)
	}
	it = d.NewIter(nil)
	if it.First() || !errors.Is(it.Error(), ErrClosed) || !errors.Is(it.Close(), ErrClosed) {
		t.Fatalf("iterator after Close: %v", it.Error())
	}
	if err := d.Flush(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush after Close: %v", err)
	}
	if err := d.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

// TestGetValueOutlivesCompaction: a value returned by Get points into the
// table's mapping; while its closer is open, a compaction that obsoletes the
// table must not unmap or delete it.
func TestGetValueOutlivesCompaction(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(vfs.Default)
	o.DisableAutomaticCompactions = true
	d := mustOpen(t, dir, o)
	defer d.Close()
	for i := 0; i < 2000; i++ {
		d.Set([]byte(fmt.Sprintf("k%05d", i)), []byte(fmt.Sprintf("value-%05d", i)), NoSync)
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	v, closer, err := d.Get([]byte("k01000"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2000; i++ {
		d.Set([]byte(fmt.Sprintf("k%05d", i)), []byte("overwritten"), NoSync)
	}
	if err := d.Compact(nil, nil); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, d)
	if string(v) != "value-01000" {
		t.Fatalf("value changed under an open closer: %q", v)
	}
	closer.Close()
	waitIdle(t, d)
	if got, _ := get(t, d, "k01000"); got != "overwritten" {
		t.Fatalf("k01000 = %q", got)
	}
}

// TestMemtableArenaRecycledOnlyWhenUnreferenced: rotations reuse dead
// memtables' buffers, but never one a Get value still points into.
func TestMemtableArenaRecycledOnlyWhenUnreferenced(t *testing.T) {
	o := crashOptions(vfs.NewCrashFS(6), ExternalLog)
	d := mustOpen(t, "/db", o)
	defer d.Close()
	var b Batch
	lsn := uint64(0)
	put := func(k, v string) {
		b.Reset()
		b.Set([]byte(k), []byte(v))
		lsn++
		if err := d.ApplyAt(&b, lsn); err != nil {
			t.Fatal(err)
		}
	}
	put("held", "value-in-the-first-memtable")
	v, closer, err := d.Get([]byte("held"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20000; i++ {
		put(fmt.Sprintf("k%06d", i), "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
	}
	waitIdle(t, d)
	if string(v) != "value-in-the-first-memtable" {
		t.Fatalf("a memtable value changed under its open closer: %q", v)
	}
	closer.Close()
	if m := d.Metrics(); m.ArenasRecycled == 0 {
		t.Fatalf("no memtable arena was recycled over %d flushes", m.Flushes)
	}
	for i := 0; i < 20000; i += 101 {
		if got, ok := get(t, d, fmt.Sprintf("k%06d", i)); !ok || got != "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" {
			t.Fatalf("k%06d = %q %v", i, got, ok)
		}
	}
}

// TestEmptyKeyAndBounds: the empty key is stored like any other; an empty
// (non-nil) upper bound admits nothing, an empty lower bound everything.
func TestEmptyKeyAndBounds(t *testing.T) {
	d := mustOpen(t, "/db", crashOptions(vfs.NewCrashFS(1), Standalone))
	defer d.Close()
	for _, k := range []string{"", "a", "b"} {
		if err := d.Set([]byte(k), []byte("v"+k), NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if v, ok := get(t, d, ""); !ok || v != "v" {
		t.Fatalf("empty key: %q %v", v, ok)
	}
	count := func(it *Iterator) int {
		n := 0
		for ok := it.First(); ok; ok = it.Next() {
			n++
		}
		it.Close()
		return n
	}
	if n := count(d.NewIter(&IterOptions{UpperBound: []byte{}})); n != 0 {
		t.Fatalf("empty upper bound admitted %d keys", n)
	}
	if n := count(d.NewIter(&IterOptions{LowerBound: []byte{}})); n != 3 {
		t.Fatalf("empty lower bound admitted %d keys, want 3", n)
	}
	it := d.NewIter(nil)
	it.SetBounds(nil, []byte{})
	if it.First() {
		t.Fatal("SetBounds with an empty upper bound still yields keys")
	}
	it.SetBounds([]byte{}, []byte("b"))
	if n := count(it); n != 2 {
		t.Fatalf("[\"\", b) holds %d keys, want 2", n)
	}
}
