package vfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// OS is the real file system. O_DIRECT is used where asked for and accepted;
// where open(2) refuses it with EINVAL the file is opened buffered instead
// (writes with FlagDSync stay durable on return: O_DSYNC on a buffered file
// is write + fdatasync), the fallback is logged once through Logf and
// counted in DirectRefused, and File.Direct reports false.
type OS struct {
	// Logf receives the one-time fallback notice; nil discards it.
	Logf func(format string, args ...any)

	logOnce       sync.Once
	directRefused atomic.Int64
}

// Default is the OS file system with notices discarded.
var Default FS = &OS{}

// DirectRefused returns how many opens fell back from O_DIRECT to buffered I/O.
func (fs *OS) DirectRefused() int64 { return fs.directRefused.Load() }

func (fs *OS) openFlags(flags Flag) int {
	f := unix.O_RDONLY | unix.O_CLOEXEC
	if flags&FlagWrite != 0 {
		f = unix.O_RDWR | unix.O_CLOEXEC
	}
	if flags&FlagCreate != 0 {
		f |= unix.O_CREAT
	}
	if flags&FlagTruncate != 0 {
		f |= unix.O_TRUNC
	}
	if flags&FlagDSync != 0 {
		f |= unix.O_DSYNC
	}
	return f
}

// Open implements FS.
func (fs *OS) Open(name string, flags Flag) (File, error) {
	base := fs.openFlags(flags)
	direct := flags&FlagDirect != 0
	for {
		f := base
		if direct {
			f |= unix.O_DIRECT
		}
		fd, err := unix.Open(name, f, 0o644)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EINVAL && direct {
			// The file system does not support O_DIRECT (some FUSE or
			// overlay set-ups): fall back to buffered I/O.
			fs.directRefused.Add(1)
			fs.logOnce.Do(func() {
				if fs.Logf != nil {
					fs.Logf("vfs: O_DIRECT refused for %s (%v); falling back to buffered I/O with O_DSYNC/fdatasync", name, err)
				}
			})
			direct = false
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open " + flags.String(), Path: name, Err: err}
		}
		return &osFile{f: os.NewFile(uintptr(fd), name), fd: fd, name: name, direct: direct}, nil
	}
}

// Rename implements FS.
func (fs *OS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }

// Remove implements FS.
func (fs *OS) Remove(name string) error { return os.Remove(name) }

// List implements FS.
func (fs *OS) List(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	sort.Strings(names)
	return names, nil
}

// MkdirAll implements FS.
func (fs *OS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o755) }

// SyncDir implements FS.
func (fs *OS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Stat implements FS.
func (fs *OS) Stat(name string) (FileInfo, error) {
	st, err := os.Stat(name)
	if err != nil {
		return FileInfo{}, err
	}
	return FileInfo{Name: filepath.Base(name), Size: st.Size(), IsDir: st.IsDir()}, nil
}

type flockCloser struct{ f *os.File }

func (c flockCloser) Close() error {
	_ = unix.Flock(int(c.f.Fd()), unix.LOCK_UN)
	return c.f.Close()
}

// Lock implements FS with flock(2) on name.
func (fs *OS) Lock(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: held by another process: %w", name, err)
		}
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return flockCloser{f}, nil
}

type osFile struct {
	f      *os.File
	fd     int
	name   string
	direct bool
}

func (f *osFile) ReadAt(p []byte, off int64) (int, error)  { return f.f.ReadAt(p, off) }
func (f *osFile) WriteAt(p []byte, off int64) (int, error) { return f.f.WriteAt(p, off) }
func (f *osFile) Close() error                             { return f.f.Close() }
func (f *osFile) Direct() bool                             { return f.direct }
func (f *osFile) Name() string                             { return f.name }

func (f *osFile) Sync() error {
	for {
		err := unix.Fdatasync(f.fd)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "fdatasync", Path: f.name, Err: err}
		}
		return nil
	}
}

func (f *osFile) Preallocate(offset, length int64) error {
	for {
		err := unix.Fallocate(f.fd, 0, offset, length)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EOPNOTSUPP {
			// No fallocate (e.g. some tmpfs/FUSE): extending the size is
			// enough, since callers write zeros over the range anyway.
			st, serr := f.f.Stat()
			if serr != nil {
				return serr
			}
			if st.Size() < offset+length {
				return f.f.Truncate(offset + length)
			}
			return nil
		}
		if err != nil {
			return &os.PathError{Op: "fallocate", Path: f.name, Err: err}
		}
		return nil
	}
}

func (f *osFile) Truncate(size int64) error { return f.f.Truncate(size) }

func (f *osFile) Stat() (FileInfo, error) {
	st, err := f.f.Stat()
	if err != nil {
		return FileInfo{}, err
	}
	return FileInfo{Name: filepath.Base(f.name), Size: st.Size(), IsDir: st.IsDir()}, nil
}

// FileSystemType returns the statfs magic of the file system holding path
// and whether it is a tmpfs/ramfs (which accept unaligned O_DIRECT and make
// sync free, so alignment and durability tests must not run there).
func FileSystemType(path string) (magic int64, inMemory bool, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, false, fmt.Errorf("statfs %s: %w", path, err)
	}
	magic = int64(st.Type)
	return magic, magic == unix.TMPFS_MAGIC || magic == unix.RAMFS_MAGIC, nil
}
