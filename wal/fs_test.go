package wal

import (
	"os"
	"strconv"
	"testing"

	"github.com/tapewire/tapewire/vfs"
)

// ext4Dir returns a fresh directory on a file system that enforces O_DIRECT
// alignment and makes sync cost something. It fails the test loudly when
// TMPDIR is on tmpfs, rather than silently testing nothing.
func ext4Dir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	_, inMemory, err := vfs.FileSystemType(dir)
	if err != nil {
		t.Fatal(err)
	}
	if inMemory {
		alt, err := os.MkdirTemp("/work", "waltest-")
		if err != nil {
			t.Fatalf("TMPDIR %s is tmpfs and no disk-backed fallback: %v", dir, err)
		}
		t.Cleanup(func() { os.RemoveAll(alt) })
		if _, inMemory, _ := vfs.FileSystemType(alt); inMemory {
			t.Fatalf("durability and alignment tests need a disk file system; %s and %s are both tmpfs", dir, alt)
		}
		return alt
	}
	return dir
}

func strconvItoa(n int64) string { return strconv.FormatInt(n, 10) }
