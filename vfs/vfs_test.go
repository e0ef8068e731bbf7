package vfs

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// diskDir returns a directory on a disk file system; alignment tests must
// not run on tmpfs, which accepts unaligned O_DIRECT and would hide bugs.
func diskDir(t *testing.T) string {
	t.Helper()
	for _, dir := range []string{t.TempDir(), "/work", "/var/tmp"} {
		if _, inMemory, err := FileSystemType(dir); err == nil && !inMemory {
			if dir != filepath.Clean(dir) || dir == "/work" || dir == "/var/tmp" {
				d, err := os.MkdirTemp(dir, "vfstest-")
				if err != nil {
					continue
				}
				t.Cleanup(func() { os.RemoveAll(d) })
				return d
			}
			return dir
		}
	}
	t.Fatal("no disk-backed directory found (TMPDIR, /work, /var/tmp are all tmpfs or missing): alignment tests cannot run")
	return ""
}

func TestAlignedBuffer(t *testing.T) {
	for _, n := range []int{0, 1, 4096, 12345, 1 << 20} {
		b := AlignedBuffer(n)
		if len(b) != n || (n > 0 && !IsAligned(AlignedBuffer(n+(BlockSize-n%BlockSize)%BlockSize))) {
			t.Fatalf("AlignedBuffer(%d): len %d", n, len(b))
		}
	}
	b := AlignedBuffer(2 * BlockSize)
	if !IsAligned(b) || IsAligned(b[1:BlockSize+1]) || IsAligned(b[:100]) {
		t.Fatal("IsAligned misjudges")
	}
}

// TestDirectIOAlignmentOnDisk checks on a real disk file system that the OS
// FS opens with O_DIRECT and that the kernel refuses misaligned direct I/O:
// the property every WAL write relies on being checked.
func TestDirectIOAlignmentOnDisk(t *testing.T) {
	dir := diskDir(t)
	fs := &OS{}
	f, err := fs.Open(filepath.Join(dir, "f"), FlagWrite|FlagCreate|FlagDirect|FlagDSync)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !f.Direct() {
		t.Fatalf("O_DIRECT refused on %s", dir)
	}
	buf := AlignedBuffer(2 * BlockSize)
	if _, err := f.WriteAt(buf[:BlockSize], 0); err != nil {
		t.Fatalf("aligned direct write: %v", err)
	}
	if _, err := f.WriteAt(buf[1:BlockSize+1], 0); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("misaligned buffer: got %v, want EINVAL", err)
	}
	if _, err := f.WriteAt(buf[:100], 0); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("misaligned length: got %v, want EINVAL", err)
	}
	// (The device's logical sector is 512 bytes, so 512-aligned offsets are
	// accepted by the kernel; the WAL aligns everything to 4096 anyway.)
	if _, err := f.WriteAt(buf[:BlockSize], 100); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("misaligned offset: got %v, want EINVAL", err)
	}
	if _, err := f.ReadAt(buf[:BlockSize], 0); err != nil {
		t.Fatalf("aligned direct read: %v", err)
	}
	if err := f.Preallocate(0, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.Stat(); st.Size != 1<<20 {
		t.Fatalf("size after preallocate %d", st.Size)
	}
	if err := fs.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
}

func TestOSLockIsExclusive(t *testing.T) {
	dir := diskDir(t)
	fs := &OS{}
	l, err := fs.Lock(filepath.Join(dir, "LOCK"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Lock(filepath.Join(dir, "LOCK")); err == nil {
		t.Fatal("second lock succeeded")
	}
	l.Close()
	l2, err := fs.Lock(filepath.Join(dir, "LOCK"))
	if err != nil {
		t.Fatal(err)
	}
	l2.Close()
}

func TestCrashFSAlignmentEnforced(t *testing.T) {
	fs := NewCrashFS(1)
	f, _ := fs.Open("/f", FlagWrite|FlagCreate|FlagDirect)
	buf := AlignedBuffer(2 * BlockSize)
	if _, err := f.WriteAt(buf[1:BlockSize+1], 0); !errors.Is(err, ErrUnaligned) {
		t.Fatalf("got %v", err)
	}
	if _, err := f.WriteAt(buf[:BlockSize], 100); !errors.Is(err, ErrUnaligned) {
		t.Fatalf("got %v", err)
	}
}

// TestCrashFSKeepsSyncedLosesSomeUnsynced: synced data and directory
// entries always survive; across seeds unsynced blocks are sometimes kept,
// sometimes lost, sometimes torn at sector granularity.
func TestCrashFSKeepsSyncedLosesSomeUnsynced(t *testing.T) {
	kept, lost, torn := 0, 0, 0
	for seed := range uint64(64) {
		fs := NewCrashFS(seed)
		fs.MkdirAll("/d")
		f, _ := fs.Open("/d/a", FlagWrite|FlagCreate)
		old := make([]byte, BlockSize)
		for i := range old {
			old[i] = 1
		}
		f.WriteAt(old, 0)
		f.Sync()
		fs.SyncDir("/d")
		g, _ := fs.Open("/d/unsynced-name", FlagWrite|FlagCreate|FlagDSync)
		g.WriteAt([]byte("durable"), 0) // data durable, name not
		neu := make([]byte, BlockSize)
		for i := range neu {
			neu[i] = 2
		}
		f.WriteAt(neu, 0) // not synced
		fs.Crash()
		if _, err := f.WriteAt(neu, 0); !errors.Is(err, ErrCrashed) {
			t.Fatalf("write after crash: %v", err)
		}
		img := fs.Image()
		a, err := img.Open("/d/a", 0)
		if err != nil {
			t.Fatalf("seed %d: synced file lost: %v", seed, err)
		}
		got := make([]byte, BlockSize)
		a.ReadAt(got, 0)
		ones, twos := 0, 0
		for _, c := range got {
			switch c {
			case 1:
				ones++
			case 2:
				twos++
			default:
				t.Fatalf("seed %d: byte %d is neither old nor new", seed, c)
			}
		}
		switch {
		case twos == 0:
			lost++
		case ones == 0:
			kept++
		default:
			torn++
			if ones%SectorSize != 0 {
				t.Fatalf("seed %d: tear not at a sector boundary", seed)
			}
		}
	}
	if kept == 0 || lost == 0 || torn == 0 {
		t.Fatalf("crash outcomes kept=%d lost=%d torn=%d: each must occur", kept, lost, torn)
	}
}

func TestCrashFSDirectoryEntries(t *testing.T) {
	sawSynced, sawCurrent := false, false
	for seed := range uint64(32) {
		fs := NewCrashFS(seed)
		fs.MkdirAll("/d")
		f, _ := fs.Open("/d/tmp", FlagWrite|FlagCreate)
		f.WriteAt([]byte("x"), 0)
		f.Sync()
		fs.SyncDir("/d")
		fs.Rename("/d/tmp", "/d/final") // not synced
		fs.Crash()
		names, _ := fs.Image().List("/d")
		switch {
		case len(names) == 1 && names[0] == "tmp":
			sawSynced = true
		case len(names) == 1 && names[0] == "final":
			sawCurrent = true
		default:
			t.Fatalf("seed %d: after crash the directory holds %v", seed, names)
		}
	}
	if !sawSynced || !sawCurrent {
		t.Fatal("a crash must sometimes keep and sometimes drop an unsynced rename")
	}
}

func TestCrashAtOp(t *testing.T) {
	fs := NewCrashFS(1)
	fs.CrashAtOp(2)
	if err := fs.MkdirAll("/d"); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Open("/d/a", FlagWrite|FlagCreate); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.List("/d"); !errors.Is(err, ErrCrashed) {
		t.Fatalf("op 2: %v", err)
	}
	if fs.Image() == nil {
		t.Fatal("no image after crash")
	}
}

func TestErrorFSFailsExactlyTheNthOp(t *testing.T) {
	for n := int64(0); n < 4; n++ {
		inner := NewCrashFS(1)
		inner.MkdirAll("/d")
		fs := NewErrorFS(inner, n)
		errs := []error{fs.SyncDir("/d")}
		f, err := fs.Open("/d/f", FlagWrite|FlagCreate)
		errs = append(errs, err)
		if f != nil {
			_, err = f.WriteAt([]byte("a"), 0)
			errs = append(errs, err, f.Sync())
		}
		failed := 0
		for i, e := range errs {
			if e != nil {
				failed++
				if int64(i) != n || !errors.Is(e, ErrInjected) {
					t.Fatalf("n=%d: op %d failed with %v", n, i, e)
				}
			}
		}
		if failed != 1 || !fs.Injected() {
			t.Fatalf("n=%d: %d failures", n, failed)
		}
	}
}
