package lsm

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/tapewire/tapewire/lsm/internal/manifest"
	"github.com/tapewire/tapewire/lsm/sstable"
	"github.com/tapewire/tapewire/vfs"
)

// table is an open SSTable: its bytes (mapped, or read into memory on file
// systems that cannot map) and the reader over them.
type table struct {
	r      *sstable.Reader
	data   []byte
	mapped bool
}

func tableOf(m *manifest.FileMetadata) *table { return m.TableHandle.(*table) }

func (t *table) close() error {
	if t.mapped {
		data := t.data
		t.data = nil
		return unix.Munmap(data)
	}
	return nil
}

// fdFile is implemented by vfs files that expose their descriptor.
type fdFile interface{ Fd() uintptr }

// mapFile returns the bytes of a table file. A file with a descriptor is
// mapped read-only; the real OS file system without one (vfs.OS) is mapped
// through a second read-only descriptor of the same, already synced and
// immutable file; any other file system (the crash and error test file
// systems) is read into memory through vfs.File.ReadAt.
func mapFile(fs vfs.FS, path string, size int64) (data []byte, mapped bool, err error) {
	if size == 0 {
		return nil, false, fmt.Errorf("lsm: table %s is empty", path)
	}
	f, err := fs.Open(path, 0)
	if err != nil {
		return nil, false, fmt.Errorf("lsm: open table %s: %w", path, err)
	}
	defer f.Close()
	var fd int = -1
	if ff, ok := f.(fdFile); ok {
		fd = int(ff.Fd())
	} else if _, ok := fs.(*vfs.OS); ok {
		osf, err := os.Open(path)
		if err != nil {
			return nil, false, fmt.Errorf("lsm: open table %s for mapping: %w", path, err)
		}
		defer osf.Close()
		fd = int(osf.Fd())
	}
	if fd >= 0 {
		data, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return nil, false, fmt.Errorf("lsm: mmap table %s (%d bytes): %w", path, size, err)
		}
		return data, true, nil
	}
	data = make([]byte, size)
	if n, err := f.ReadAt(data, 0); n != len(data) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, false, fmt.Errorf("lsm: read table %s: %d of %d bytes: %w", path, n, size, err)
	}
	return data, false, nil
}

// openTable maps meta's file and opens its reader, storing it in
// meta.TableHandle. The file's size must match the manifest's.
func (d *DB) openTable(meta *manifest.FileMetadata) error {
	path := d.tablePath(meta.FileNum)
	st, err := d.fs.Stat(path)
	if err != nil {
		return fmt.Errorf("lsm: table %06d listed in the manifest: %w", meta.FileNum, err)
	}
	if uint64(st.Size) != meta.Size {
		return fmt.Errorf("lsm: table %s is %d bytes, the manifest says %d", path, st.Size, meta.Size)
	}
	data, mapped, err := mapFile(d.fs, path, st.Size)
	if err != nil {
		return err
	}
	r, err := sstable.Open(data, meta.FileNum, path, &d.tableStats)
	if err != nil {
		if mapped {
			_ = unix.Munmap(data)
		}
		return err
	}
	meta.TableHandle = &table{r: r, data: data, mapped: mapped}
	return nil
}

// fileWriter adapts a vfs.File to the io.Writer the table writer wants.
type fileWriter struct {
	f   vfs.File
	off int64
}

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.WriteAt(p, w.off)
	w.off += int64(n)
	return n, err
}
