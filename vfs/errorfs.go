package vfs

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// ErrInjected is the error an ErrorFS returns from the operation it fails.
var ErrInjected = errors.New("vfs: injected I/O error")

// ErrorFS wraps an FS and fails exactly one operation: the n-th (counting
// from 0 every FS and File call made through it). Every other operation goes
// to the wrapped FS unchanged. A sweep over n = 0, 1, 2, … until a run no
// longer reaches n exercises every error path of a workload once.
type ErrorFS struct {
	inner  FS
	failAt int64
	ops    atomic.Int64
	failed atomic.Bool
}

// NewErrorFS returns an ErrorFS over inner that fails operation number n.
// A negative n never fails.
func NewErrorFS(inner FS, n int64) *ErrorFS { return &ErrorFS{inner: inner, failAt: n} }

// Injected reports whether the error has been returned.
func (fs *ErrorFS) Injected() bool { return fs.failed.Load() }

// Ops returns the number of operations seen so far.
func (fs *ErrorFS) Ops() int64 { return fs.ops.Load() }

func (fs *ErrorFS) op(what, name string) error {
	if fs.ops.Add(1)-1 == fs.failAt {
		fs.failed.Store(true)
		return fmt.Errorf("%s %s: %w", what, name, ErrInjected)
	}
	return nil
}

// Open implements FS.
func (fs *ErrorFS) Open(name string, flags Flag) (File, error) {
	if err := fs.op("open", name); err != nil {
		return nil, err
	}
	f, err := fs.inner.Open(name, flags)
	if err != nil {
		return nil, err
	}
	return &errorFile{File: f, fs: fs}, nil
}

// Rename implements FS.
func (fs *ErrorFS) Rename(oldname, newname string) error {
	if err := fs.op("rename", oldname); err != nil {
		return err
	}
	return fs.inner.Rename(oldname, newname)
}

// Remove implements FS.
func (fs *ErrorFS) Remove(name string) error {
	if err := fs.op("remove", name); err != nil {
		return err
	}
	return fs.inner.Remove(name)
}

// List implements FS.
func (fs *ErrorFS) List(dir string) ([]string, error) {
	if err := fs.op("list", dir); err != nil {
		return nil, err
	}
	return fs.inner.List(dir)
}

// MkdirAll implements FS.
func (fs *ErrorFS) MkdirAll(dir string) error {
	if err := fs.op("mkdir", dir); err != nil {
		return err
	}
	return fs.inner.MkdirAll(dir)
}

// SyncDir implements FS.
func (fs *ErrorFS) SyncDir(dir string) error {
	if err := fs.op("syncdir", dir); err != nil {
		return err
	}
	return fs.inner.SyncDir(dir)
}

// Stat implements FS.
func (fs *ErrorFS) Stat(name string) (FileInfo, error) {
	if err := fs.op("stat", name); err != nil {
		return FileInfo{}, err
	}
	return fs.inner.Stat(name)
}

// Lock implements FS.
func (fs *ErrorFS) Lock(name string) (io.Closer, error) {
	if err := fs.op("lock", name); err != nil {
		return nil, err
	}
	return fs.inner.Lock(name)
}

type errorFile struct {
	File
	fs *ErrorFS
}

func (f *errorFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.fs.op("read", f.Name()); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

func (f *errorFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.op("write", f.Name()); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *errorFile) Sync() error {
	if err := f.fs.op("sync", f.Name()); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *errorFile) Preallocate(offset, length int64) error {
	if err := f.fs.op("preallocate", f.Name()); err != nil {
		return err
	}
	return f.File.Preallocate(offset, length)
}

func (f *errorFile) Truncate(size int64) error {
	if err := f.fs.op("truncate", f.Name()); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (f *errorFile) Stat() (FileInfo, error) {
	if err := f.fs.op("stat", f.Name()); err != nil {
		return FileInfo{}, err
	}
	return f.File.Stat()
}
