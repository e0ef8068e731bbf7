package lsm

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/tapewire/tapewire/vfs"
)

func crashOptions(fs vfs.FS, durability Durability) Options {
	return Options{
		FS: fs, Durability: durability, WAL: walTestOptions(),
		MemTableSizeBytes: 64 << 10, BlockSizeBytes: 256, TargetFileSizeBytes: 16 << 10,
		BaseLevelBytes: 32 << 10, LevelMultiplier: 2, L0CompactionTrigger: 2, L0StopWritesThreshold: 8,
		DeletionRateBytesPerSec: -1,
	}
}

func crashKey(i int) []byte { return []byte(fmt.Sprintf("key%05d", i)) }
func crashValue(i int) []byte {
	return []byte(fmt.Sprintf("value-%05d-%s", i, strings.Repeat("v", 60+i%50)))
}

// crashWorkload writes unique keys in order until an error (the crash) and
// returns how many writes were attempted and which were acknowledged as
// synced. Every fourth write is synced; batches of 1–3 keys.
func crashWorkload(d *DB, writes int, rng *rand.Rand) (attempted int, syncedAck []int) {
	i := 0
	for i < writes {
		var b Batch
		n := 1 + rng.IntN(3)
		first := i
		for j := 0; j < n && i < writes; j++ {
			b.Set(crashKey(i), crashValue(i))
			i++
		}
		sync := first%4 == 0
		opts := NoSync
		if sync {
			opts = Sync
		}
		if err := d.Apply(&b, opts); err != nil {
			return i, syncedAck
		}
		if sync {
			for k := first; k < i; k++ {
				syncedAck = append(syncedAck, k)
			}
		}
		if rng.IntN(200) == 0 {
			if err := d.Compact(nil, nil); err != nil {
				return i, syncedAck
			}
		}
	}
	return i, syncedAck
}

// checkRecovered verifies the crash contract on a reopened database: every
// synced acknowledged write is there, and what is there is a prefix of the
// attempted writes (no write survives while an earlier one is lost).
func checkRecovered(t *testing.T, d *DB, attempted int, synced []int, label string) {
	t.Helper()
	present := make([]bool, attempted)
	it := d.NewIter(nil)
	for ok := it.First(); ok; ok = it.Next() {
		var i int
		if _, err := fmt.Sscanf(string(it.Key()), "key%05d", &i); err != nil || i >= attempted {
			t.Fatalf("%s: unexpected key %q", label, it.Key())
		}
		if string(it.Value()) != string(crashValue(i)) {
			t.Fatalf("%s: key %d has a wrong value", label, i)
		}
		present[i] = true
	}
	if err := it.Close(); err != nil {
		t.Fatalf("%s: scan: %v", label, err)
	}
	for _, i := range synced {
		if !present[i] {
			t.Fatalf("%s: synced, acknowledged write %d lost", label, i)
		}
	}
	prefix := 0
	for prefix < attempted && present[prefix] {
		prefix++
	}
	for i := prefix; i < attempted; i++ {
		if present[i] {
			t.Fatalf("%s: write %d survived but write %d was lost", label, i, prefix)
		}
	}
}

// checkNoOrphans: every table file in the directory is in the version.
func checkNoOrphans(t *testing.T, fs vfs.FS, d *DB, dir, label string) {
	t.Helper()
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	tables := 0
	for _, n := range names {
		if strings.HasSuffix(n, tableSuffix) {
			tables++
		}
	}
	live := 0
	for _, l := range d.Metrics().Levels {
		live += l.Files
	}
	if tables != live {
		t.Fatalf("%s: %d table files in %s, %d live (%v)", label, tables, dir, live, names)
	}
}

// TestCrashStandalone crashes the file system at operation points spread over
// a workload that flushes, compacts and rolls manifests, reopens the image a
// power cut would leave and checks nothing acknowledged is lost, the state
// is a prefix of history and no orphan is left.
func TestCrashStandalone(t *testing.T) {
	const writes = 1200
	// A clean run tells how many FS operations the workload takes.
	clean := vfs.NewCrashFS(1)
	d := mustOpen(t, "/db", crashOptions(clean, Standalone))
	crashWorkload(d, writes, rand.New(rand.NewPCG(1, 1)))
	total := clean.Ops()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	points := 30
	if os.Getenv("TAPEWIRE_LONG") == "1" {
		points = 300
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for p := 0; p < points; p++ {
		seed := uint64(p + 100)
		crashAt := 20 + rng.Int64N(total)
		label := fmt.Sprintf("crash at op %d of %d (seed %d)", crashAt, total, seed)
		fs := vfs.NewCrashFS(seed)
		fs.CrashAtOp(crashAt)
		d, err := Open("/db", crashOptions(fs, Standalone))
		if err != nil {
			if !fs.Crashed() {
				t.Fatalf("%s: open: %v", label, err)
			}
		} else {
			attempted, synced := crashWorkload(d, writes, rand.New(rand.NewPCG(seed, 1)))
			if !fs.Crashed() {
				fs.Crash()
			}
			_ = d.Close()
			img := fs.Image()
			d2, err := Open("/db", crashOptions(img, Standalone))
			if err != nil {
				t.Fatalf("%s: reopen after crash: %v", label, err)
			}
			checkRecovered(t, d2, attempted, synced, label)
			waitIdle(t, d2)
			checkNoOrphans(t, img, d2, "/db", label)
			// The recovered database keeps working and survives a clean
			// reopen.
			if err := d2.Set([]byte("after"), []byte("crash"), Sync); err != nil {
				t.Fatalf("%s: write after recovery: %v", label, err)
			}
			if err := d2.Close(); err != nil {
				t.Fatalf("%s: close after recovery: %v", label, err)
			}
			d3, err := Open("/db", crashOptions(img, Standalone))
			if err != nil {
				t.Fatalf("%s: second reopen: %v", label, err)
			}
			checkRecovered(t, withoutKey(t, d3, "after"), attempted, synced, label+" (second reopen)")
			d3.Close()
			continue
		}
	}
}

// withoutKey checks key is present and deletes it so the prefix check of
// the crash workload's keys can run.
func withoutKey(t *testing.T, d *DB, key string) *DB {
	t.Helper()
	if _, ok := get(t, d, key); !ok {
		t.Fatalf("synced write %q lost across a clean reopen", key)
	}
	if err := d.Delete([]byte(key), NoSync); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestCrashExternalLog: the caller's log (here: the test's memory, durable by
// construction) is replayed from CoveredLSN()+1 after a crash; everything the
// caller logged must then be present, and the covered LSN must never run
// ahead of what the tables hold.
func TestCrashExternalLog(t *testing.T) {
	const writes = 1500
	points := 20
	if os.Getenv("TAPEWIRE_LONG") == "1" {
		points = 200
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for p := 0; p < points; p++ {
		seed := uint64(p + 1)
		fs := vfs.NewCrashFS(seed)
		crashAt := 20 + rng.Int64N(2500)
		fs.CrashAtOp(crashAt)
		label := fmt.Sprintf("crash at op %d (seed %d)", crashAt, seed)
		d, err := Open("/db", crashOptions(fs, ExternalLog))
		applied := 0
		if err == nil {
			for applied < writes {
				var b Batch
				b.Set(crashKey(applied), crashValue(applied))
				if err := d.ApplyAt(&b, uint64(applied+1)); err != nil {
					break
				}
				applied++
			}
			if !fs.Crashed() {
				fs.Crash()
			}
			_ = d.Close()
		}
		img := fs.Image()
		d2, err := Open("/db", crashOptions(img, ExternalLog))
		if err != nil {
			t.Fatalf("%s: reopen: %v", label, err)
		}
		covered := d2.CoveredLSN()
		if covered > uint64(applied) {
			t.Fatalf("%s: covered LSN %d beyond the %d batches applied", label, covered, applied)
		}
		// Replay the caller's log from an earlier point than needed: batches
		// at or below the covered LSN are skipped.
		for lsn := uint64(1); lsn <= uint64(applied); lsn++ {
			var b Batch
			i := int(lsn - 1)
			b.Set(crashKey(i), crashValue(i))
			if err := d2.ApplyAt(&b, lsn); err != nil {
				t.Fatalf("%s: replay LSN %d: %v", label, lsn, err)
			}
		}
		all := make([]int, applied)
		for i := range all {
			all[i] = i
		}
		checkRecovered(t, d2, applied, all, label)
		waitIdle(t, d2)
		checkNoOrphans(t, img, d2, "/db", label)
		if err := d2.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestApplyAtRejectsOutOfOrderLSN(t *testing.T) {
	d := mustOpen(t, "/db", crashOptions(vfs.NewCrashFS(1), ExternalLog))
	defer d.Close()
	var b Batch
	b.Set([]byte("a"), []byte("1"))
	if err := d.ApplyAt(&b, 10); err != nil {
		t.Fatal(err)
	}
	if err := d.ApplyAt(&b, 9); err == nil {
		t.Fatal("an LSN below the last applied one (and above the covered one) was accepted")
	}
	if err := d.Apply(&b, NoSync); err == nil {
		t.Fatal("Apply accepted in ExternalLog mode")
	}
	if errors.Is(d.ApplyAt(&b, 0), nil) {
		t.Fatal("LSN 0 accepted")
	}
}

// TestManifestRollover: past the size limit the manifest is replaced by a
// snapshot (new MANIFEST, CURRENT swapped, old one removed). Crashing at
// points through a run of rollovers must leave a database that opens with
// every synced write, a prefix of the rest, and exactly one manifest.
func TestManifestRollover(t *testing.T) {
	const writes = 480
	for p := 0; p < 16; p++ {
		fs := vfs.NewCrashFS(uint64(p))
		o := crashOptions(fs, Standalone)
		o.DisableAutomaticCompactions = true
		d := mustOpen(t, "/db", o)
		d.mu.Lock()
		d.manifestRolloverBytes = 600
		first := d.manifestNum
		d.mu.Unlock()
		if p > 0 {
			fs.CrashAtOp(fs.Ops() + int64(p*23))
		}
		attempted, synced := 0, []int(nil)
		for i := 0; i < writes; i++ {
			opts := NoSync
			if i%4 == 0 {
				opts = Sync
			}
			attempted = i + 1
			if err := d.Set(crashKey(i), crashValue(i), opts); err != nil {
				break
			}
			if opts == Sync {
				synced = append(synced, i)
			}
			if i%40 == 39 {
				if err := d.Flush(); err != nil {
					break
				}
			}
		}
		d.mu.Lock()
		rolled := d.manifestNum != first
		d.mu.Unlock()
		if p == 0 && !rolled {
			t.Fatal("twelve flushes past a 600-byte limit did not roll the manifest")
		}
		if !fs.Crashed() {
			fs.Crash()
		}
		_ = d.Close()
		img := fs.Image()
		label := fmt.Sprintf("crash point %d", p)
		d2, err := Open("/db", crashOptions(img, Standalone))
		if err != nil {
			t.Fatalf("%s: reopen after manifest rollovers: %v", label, err)
		}
		checkRecovered(t, d2, attempted, synced, label)
		names, _ := img.List("/db")
		manifests := 0
		for _, n := range names {
			if strings.HasPrefix(n, manifestPrefix) {
				manifests++
			}
		}
		if manifests != 1 {
			t.Fatalf("%s: %d manifests after reopen: %v", label, manifests, names)
		}
		d2.Close()
	}
}
