package lsm

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapewire/tapewire/vfs"
)

// TestConcurrentReadersSeeAtomicBatches runs writers that update a pair of
// keys in one batch with the same counter, while readers check through Get,
// snapshots and iterators that the two halves always agree — across the
// flushes and compactions the tiny memtable forces.
func TestConcurrentReadersSeeAtomicBatches(t *testing.T) {
	o := crashOptions(vfs.NewCrashFS(3), Standalone)
	d := mustOpen(t, "/db", o)
	defer d.Close()
	const pairs = 20
	stop := make(chan struct{})
	var writes atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var b Batch
			val := make([]byte, 8+64)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := (i*2 + w) % pairs
				binary.BigEndian.PutUint64(val, uint64(i))
				b.Reset()
				b.Set([]byte(fmt.Sprintf("pair%02d/a", p)), val)
				b.Set([]byte(fmt.Sprintf("pair%02d/b", p)), val)
				if i%7 == 0 {
					b.Delete([]byte(fmt.Sprintf("gone%02d", p)))
				}
				if err := d.Apply(&b, NoSync); err != nil {
					t.Error(err)
					return
				}
				writes.Add(1)
			}
		}(w)
	}
	errc := make(chan error, 3)
	reader := func(check func() error) {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := check(); err != nil {
				errc <- err
				return
			}
		}
	}
	wg.Add(3)
	go reader(func() error { // iterators: pairs agree within one view
		it := d.NewIter(&IterOptions{LowerBound: []byte("pair"), UpperBound: []byte("pais")})
		defer it.Close()
		var lastA []byte
		for ok := it.First(); ok; ok = it.Next() {
			k := string(it.Key())
			if strings.HasSuffix(k, "/a") {
				lastA = append(lastA[:0], it.Value()...)
			} else if string(it.Value()) != string(lastA) {
				return fmt.Errorf("iterator: %s disagrees with its /a half", k)
			}
		}
		return it.Error()
	})
	go reader(func() error { // snapshots: two Gets agree
		s := d.NewSnapshot()
		defer s.Close()
		for p := 0; p < pairs; p++ {
			a, ca, erra := s.Get([]byte(fmt.Sprintf("pair%02d/a", p)))
			b, cb, errb := s.Get([]byte(fmt.Sprintf("pair%02d/b", p)))
			if (erra == nil) != (errb == nil) || erra == nil && string(a) != string(b) {
				return fmt.Errorf("snapshot: pair %d halves differ (%v, %v)", p, erra, errb)
			}
			if ca != nil {
				ca.Close()
			}
			if cb != nil {
				cb.Close()
			}
		}
		return nil
	})
	go reader(func() error { // backward iteration
		it := d.NewIter(nil)
		defer it.Close()
		var lastB []byte
		for ok := it.Last(); ok; ok = it.Prev() {
			k := string(it.Key())
			if strings.HasSuffix(k, "/b") {
				lastB = append(lastB[:0], it.Value()...)
			} else if strings.HasSuffix(k, "/a") && string(it.Value()) != string(lastB) {
				return fmt.Errorf("reverse iterator: %s disagrees with its /b half", k)
			}
		}
		return it.Error()
	})
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && d.Metrics().Compactions+d.Metrics().TrivialMoves < 3 {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
	m := d.Metrics()
	if m.Flushes == 0 || m.Compactions+m.TrivialMoves == 0 {
		t.Fatalf("the test ran no flush or compaction (%d writes): %v", writes.Load(), m)
	}
}

// slowFS delays every sync of a table file, so flushes fall behind writers.
type slowFS struct {
	vfs.FS
	delay time.Duration
}

type slowFile struct {
	vfs.File
	delay time.Duration
}

func (s slowFS) Open(name string, flags vfs.Flag) (vfs.File, error) {
	f, err := s.FS.Open(name, flags)
	if err != nil || filepath.Ext(name) != tableSuffix {
		return f, err
	}
	return slowFile{f, s.delay}, nil
}

func (f slowFile) Sync() error {
	time.Sleep(f.delay)
	return f.File.Sync()
}

// TestWriteStallsAreBoundedAndCounted: with flushes slowed down, writers
// stall (bounded by the immutable queue) and the stall shows in metrics;
// every write still lands.
func TestWriteStallsAreBoundedAndCounted(t *testing.T) {
	o := crashOptions(slowFS{vfs.NewCrashFS(5), 30 * time.Millisecond}, Standalone)
	o.MaxImmutableMemTables = 1
	d := mustOpen(t, "/db", o)
	defer d.Close()
	val := make([]byte, 200)
	const n = 3000
	for i := 0; i < n; i++ {
		if err := d.Set([]byte(fmt.Sprintf("k%05d", i)), val, NoSync); err != nil {
			t.Fatal(err)
		}
		if m := d.Metrics(); m.ImmutableMemTables > o.MaxImmutableMemTables {
			t.Fatalf("%d immutable memtables, limit %d", m.ImmutableMemTables, o.MaxImmutableMemTables)
		}
	}
	m := d.Metrics()
	if m.Stalls == 0 || m.StallDuration <= 0 {
		t.Fatalf("no stall recorded: %v", m)
	}
	for i := 0; i < n; i += 97 {
		if _, ok := get(t, d, fmt.Sprintf("k%05d", i)); !ok {
			t.Fatalf("k%05d lost", i)
		}
	}
}

// TestObsoleteTableKeptWhileIteratorOpen: compaction replaces a table an
// open iterator reads; the file stays until the iterator closes, then goes.
func TestObsoleteTableKeptWhileIteratorOpen(t *testing.T) {
	fs := vfs.NewCrashFS(8)
	o := crashOptions(fs, Standalone)
	o.DisableAutomaticCompactions = true
	d := mustOpen(t, "/db", o)
	defer d.Close()
	for i := 0; i < 300; i++ {
		d.Set([]byte(fmt.Sprintf("k%04d", i)), []byte("old"), NoSync)
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	it := d.NewIter(nil)
	for i := 0; i < 300; i += 2 {
		d.Set([]byte(fmt.Sprintf("k%04d", i)), []byte("new"), NoSync)
	}
	if err := d.Compact(nil, nil); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, d)
	countTables := func() int {
		names, _ := fs.List("/db")
		n := 0
		for _, name := range names {
			if strings.HasSuffix(name, tableSuffix) {
				n++
			}
		}
		return n
	}
	live := 0
	for _, l := range d.Metrics().Levels {
		live += l.Files
	}
	if got := countTables(); got <= live {
		t.Fatalf("the table the iterator reads was deleted: %d files, %d live", got, live)
	}
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if string(it.Value()) != "old" {
			t.Fatalf("iterator created before the overwrite sees %q at %s", it.Value(), it.Key())
		}
		n++
	}
	if n != 300 || it.Error() != nil {
		t.Fatalf("iterator read %d entries, err %v", n, it.Error())
	}
	it.Close()
	waitIdle(t, d)
	if got := countTables(); got != live {
		t.Fatalf("after the iterator closed: %d table files, %d live", got, live)
	}
	if v, _ := get(t, d, "k0002"); v != "new" {
		t.Fatalf("k0002 = %q after compaction", v)
	}
}
