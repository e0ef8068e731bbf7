package lsm

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tapewire/tapewire/vfs"
)

func ingestOptions() Options {
	o := testOptions(vfs.Default)
	o.Durability = ExternalLog
	o.WAL = walTestOptions()
	o.Partition = func(k []byte) uint64 {
		if len(k) > 0 {
			return uint64(k[0])
		}
		return 0
	}
	return o
}

func sortedBatch(prefix string, from, to int) *SortedRun {
	r := &SortedRun{}
	for i := from; i < to; i++ {
		if !r.Add([]byte(fmt.Sprintf("%s%06d", prefix, i)), []byte(fmt.Sprintf("v%s%06d", prefix, i))) {
			panic("keys out of order")
		}
	}
	return r
}

// TestIngest: ingested keys read back (Get, iterators, snapshots), are newer
// than every write before the call and older than every write after it,
// survive a reopen without a log replay, and move down like flushed tables.
func TestIngest(t *testing.T) {
	dir := t.TempDir()
	d := mustOpen(t, dir, ingestOptions())
	// A state key in the memtable, outside the ingested range.
	sb := &Batch{}
	sb.Set([]byte("s/1"), []byte("old"))
	if err := d.ApplyAt(sb, 1); err != nil {
		t.Fatal(err)
	}
	before := d.NewSnapshot()
	const n = 3000
	if err := d.Ingest(sortedBatch("e/", 0, n)); err != nil {
		t.Fatal(err)
	}
	if _, ok := snapshotGet(t, before, "e/000010"); ok {
		t.Fatal("a snapshot taken before the ingest sees an ingested key")
	}
	before.Close()
	// Written after: newer than the ingested copy.
	sb.Reset()
	sb.Set([]byte("e/000007"), []byte("rewritten"))
	if err := d.ApplyAt(sb, 2); err != nil {
		t.Fatal(err)
	}
	check := func(stage string) {
		t.Helper()
		for i := 0; i < n; i++ {
			k := fmt.Sprintf("e/%06d", i)
			want := "ve/" + k[2:]
			if i == 7 {
				want = "rewritten"
			}
			if v, ok := get(t, d, k); !ok || v != want {
				t.Fatalf("%s: %s = %q %v, want %q", stage, k, v, ok, want)
			}
		}
		it := d.NewIter(&IterOptions{LowerBound: []byte("e/"), UpperBound: []byte("e0")})
		count := 0
		for ok := it.First(); ok; ok = it.Next() {
			count++
		}
		it.Close()
		if count != n {
			t.Fatalf("%s: iterated %d ingested keys, want %d", stage, count, n)
		}
		if v, ok := get(t, d, "s/1"); !ok || v != "old" {
			t.Fatalf("%s: s/1 = %q %v", stage, v, ok)
		}
	}
	check("ingested")
	if m := d.Metrics(); m.Ingests != 1 || m.IngestBytes == 0 {
		t.Fatalf("metrics: %d ingests of %d bytes", m.Ingests, m.IngestBytes)
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := d.Compact(nil, nil); err != nil {
		t.Fatal(err)
	}
	check("compacted")
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = mustOpen(t, dir, ingestOptions())
	defer d.Close()
	check("reopened")
	// Sequence numbers continue above the ingested ones after a reopen: a
	// new write of an ingested key wins.
	sb.Reset()
	sb.Set([]byte("e/000100"), []byte("after reopen"))
	if err := d.ApplyAt(sb, 3); err != nil {
		t.Fatal(err)
	}
	if v, _ := get(t, d, "e/000100"); v != "after reopen" {
		t.Fatalf("e/000100 = %q after a write following the reopen", v)
	}
}

// TestIngestWithoutFlushSurvivesReopen: the ingested tables are in the
// manifest when Ingest returns, with no flush and no covered log position.
func TestIngestWithoutFlushSurvivesReopen(t *testing.T) {
	fs := vfs.NewCrashFS(3)
	o := crashOptions(fs, ExternalLog)
	d := mustOpen(t, "/db", o)
	if err := d.Ingest(sortedBatch("e/", 0, 500)); err != nil {
		t.Fatal(err)
	}
	covered := d.CoveredLSN()
	fs.Crash() // power cut: only synced data survives
	d.Close()
	img := fs.Image()
	d2 := mustOpen(t, "/db", crashOptions(img, ExternalLog))
	defer d2.Close()
	if d2.CoveredLSN() != covered {
		t.Fatalf("covered LSN %d after the crash, %d before", d2.CoveredLSN(), covered)
	}
	for i := 0; i < 500; i++ {
		k := fmt.Sprintf("e/%06d", i)
		if v, ok := get(t, d2, k); !ok || v != "v"+k {
			t.Fatalf("%s = %q %v after the crash", k, v, ok)
		}
	}
}

// TestIngestRefusals: a run refuses keys out of order; memtable overlap and
// Standalone mode are refused without writing anything.
func TestIngestRefusals(t *testing.T) {
	dir := t.TempDir()
	d := mustOpen(t, dir, ingestOptions())
	defer d.Close()
	var run SortedRun
	if !run.Add([]byte("b"), []byte("1")) || run.Add([]byte("a"), nil) || run.Add([]byte("b"), nil) {
		t.Fatal("SortedRun.Add accepted a key that does not follow the last one")
	}
	if k, v := run.At(0); run.Len() != 1 || string(k) != "b" || string(v) != "1" {
		t.Fatalf("run after refusals: %d pairs, first %q → %q", run.Len(), k, v)
	}
	run.Reset()
	if err := d.Ingest(&run); err != nil || run.Len() != 0 {
		t.Fatalf("empty run: %v", err)
	}
	mb := &Batch{}
	mb.Set([]byte("e/000050"), []byte("in memtable"))
	if err := d.ApplyAt(mb, 1); err != nil {
		t.Fatal(err)
	}
	tablesBefore := countTables(t, dir)
	if err := d.Ingest(sortedBatch("e/", 0, 100)); !errors.Is(err, ErrIngestOverlap) {
		t.Fatalf("overlapping ingest: %v", err)
	}
	if n := countTables(t, dir); n != tablesBefore {
		t.Fatalf("a refused ingest left %d table files behind", n-tablesBefore)
	}
	if _, ok := get(t, d, "e/000001"); ok {
		t.Fatal("a refused ingest left keys behind")
	}
	// Beside the memtable's key, not around it: accepted.
	if err := d.Ingest(sortedBatch("e/", 51, 100)); err != nil {
		t.Fatal(err)
	}
	// Writes go on after a refusal.
	mb.Reset()
	mb.Set([]byte("s/x"), []byte("1"))
	if err := d.ApplyAt(mb, 2); err != nil {
		t.Fatal(err)
	}
	sd := mustOpen(t, t.TempDir(), testOptions(vfs.Default))
	defer sd.Close()
	if err := sd.Ingest(sortedBatch("e/", 0, 10)); err == nil {
		t.Fatal("Ingest accepted in Standalone mode")
	}
}

func snapshotGet(t *testing.T, s *Snapshot, key string) (string, bool) {
	t.Helper()
	v, c, err := s.Get([]byte(key))
	if errors.Is(err, ErrNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return string(v), true
}

func countTables(t *testing.T, dir string) int {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	if err != nil {
		t.Fatal(err)
	}
	return len(names)
}

// TestIngestConcurrent: two goroutines ingest disjoint runs while a third
// applies batches; every key reads back, before and after a reopen.
func TestIngestConcurrent(t *testing.T) {
	dir := t.TempDir()
	d := mustOpen(t, dir, ingestOptions())
	const runs, per = 12, 400
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range runs {
				if err := d.Ingest(sortedBatch(fmt.Sprintf("e%d/%02d/", w, r), 0, per)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 300 {
			b := &Batch{}
			b.Set([]byte(fmt.Sprintf("s/%04d", i)), []byte("x"))
			if err := d.ApplyAt(b, uint64(i+1)); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	check := func(stage string) {
		t.Helper()
		for w := range 2 {
			for r := range runs {
				for i := 0; i < per; i += 37 {
					k := fmt.Sprintf("e%d/%02d/%06d", w, r, i)
					if v, ok := get(t, d, k); !ok || v != "v"+k {
						t.Fatalf("%s: %s = %q %v", stage, k, v, ok)
					}
				}
			}
		}
		if _, ok := get(t, d, "s/0299"); !ok {
			t.Fatalf("%s: applied key missing", stage)
		}
	}
	check("ingested")
	if m := d.Metrics(); m.Ingests != 2*runs {
		t.Fatalf("%d ingests counted, want %d", m.Ingests, 2*runs)
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = mustOpen(t, dir, ingestOptions())
	defer d.Close()
	check("reopened")
}
