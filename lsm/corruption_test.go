package lsm

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapewire/tapewire/lsm/internal/base"
	"github.com/tapewire/tapewire/vfs"
)

// TestCorruptTableNeverReturnsWrongData flips bits at random offsets of a
// table on disk. Every Get and scan afterwards must return the right data or
// a corruption error naming the table and an offset — never wrong data, and
// Open must either succeed or name the damage.
func TestCorruptTableNeverReturnsWrongData(t *testing.T) {
	const n = 2000
	dir := t.TempDir()
	o := testOptions(vfs.Default)
	o.BlockSizeBytes = 1024
	d := mustOpen(t, dir, o)
	for i := 0; i < n; i++ {
		if err := d.Set([]byte(fmt.Sprintf("key%05d", i)), []byte(fmt.Sprintf("value%05d", i)), NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, d)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// The log is truncated up to the flushed LSN, so only the table holds
	// the keys.
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(tables) != 1 {
		t.Fatalf("want one table, have %v", tables)
	}
	table := tables[0]
	clean, err := os.ReadFile(table)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	trials := 25
	if os.Getenv("TAPEWIRE_LONG") == "1" {
		trials = 400
	}
	detected := 0
	for trial := 0; trial < trials; trial++ {
		off := rng.IntN(len(clean))
		data := append([]byte(nil), clean...)
		data[off] ^= byte(1 << rng.IntN(8))
		if err := os.WriteFile(table, data, 0o644); err != nil {
			t.Fatal(err)
		}
		label := fmt.Sprintf("flip at %d of %d", off, len(clean))
		d, err := Open(dir, o)
		if err != nil {
			assertNamesTable(t, err, table, label+": open")
			detected++
			continue
		}
		sawError := false
		for i := 0; i < n; i++ {
			k := fmt.Sprintf("key%05d", i)
			v, c, err := d.Get([]byte(k))
			if err != nil {
				assertNamesTable(t, err, table, label+": get "+k)
				sawError = true
				continue
			}
			if string(v) != fmt.Sprintf("value%05d", i) {
				t.Fatalf("%s: Get(%s) returned wrong data %q", label, k, v)
			}
			c.Close()
		}
		it := d.NewIter(nil)
		i := 0
		for ok := it.First(); ok; ok = it.Next() {
			if string(it.Key()) != fmt.Sprintf("key%05d", i) || string(it.Value()) != fmt.Sprintf("value%05d", i) {
				t.Fatalf("%s: scan returned wrong entry %q at %d", label, it.Key(), i)
			}
			i++
		}
		if err := it.Error(); err != nil {
			assertNamesTable(t, err, table, label+": scan")
			sawError = true
		} else if i != n {
			t.Fatalf("%s: scan ended early at %d without an error", label, i)
		}
		it.Close()
		if sawError {
			detected++
			if d.Metrics().ChecksumFailures == 0 {
				t.Fatalf("%s: corruption seen but no checksum failure counted", label)
			}
		} else {
			t.Fatalf("%s: a flipped bit went unnoticed", label)
		}
		d.Close()
	}
	if err := os.WriteFile(table, clean, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d flips detected", detected, trials)
}

func assertNamesTable(t *testing.T, err error, table, label string) {
	t.Helper()
	var ce *base.CorruptionError
	if !errors.Is(err, ErrCorruption) || !errors.As(err, &ce) || ce.File != table || ce.Offset < 0 {
		t.Fatalf("%s: error %v should be a corruption error naming %s and an offset", label, err, table)
	}
}

// TestCorruptManifestIsRefused: damage in the middle of the manifest (not a
// torn tail) stops Open with an error naming the manifest and the offset.
func TestCorruptManifestIsRefused(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(vfs.Default)
	o.DisableAutomaticCompactions = true
	d := mustOpen(t, dir, o)
	for round := 0; round < 3; round++ {
		for i := 0; i < 50; i++ {
			d.Set([]byte(fmt.Sprintf("r%d-%03d", round, i)), []byte("v"), NoSync)
		}
		if err := d.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	manifests, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
	if len(manifests) != 1 {
		t.Fatalf("manifests: %v", manifests)
	}
	data, _ := os.ReadFile(manifests[0])
	// The first record (the snapshot written at open) is followed by three
	// flush edits: damage inside it.
	data[10] ^= 0x40
	os.WriteFile(manifests[0], data, 0o644)
	_, err := Open(dir, o)
	var ce *base.CorruptionError
	if !errors.As(err, &ce) || !strings.HasSuffix(ce.File, filepath.Base(manifests[0])) {
		t.Fatalf("open with a damaged manifest: %v", err)
	}
}
