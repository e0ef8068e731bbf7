package wal

import (
	"os"
	"strconv"
	"sync/atomic"
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

// blockingFS holds every data write while block is set, until release.
type blockingFS struct {
	vfs.FS
	block   atomic.Bool
	release chan struct{}
}

func (fs *blockingFS) Open(name string, flags vfs.Flag) (vfs.File, error) {
	f, err := fs.FS.Open(name, flags)
	if err != nil {
		return nil, err
	}
	return &blockingFile{File: f, fs: fs}, nil
}

type blockingFile struct {
	vfs.File
	fs *blockingFS
}

func (f *blockingFile) WriteAt(p []byte, off int64) (int, error) {
	if f.fs.block.Load() {
		<-f.fs.release
	}
	return f.File.WriteAt(p, off)
}
