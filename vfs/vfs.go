package vfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"unsafe"
)

// BlockSize is the alignment unit of direct I/O: buffer addresses, file
// offsets and lengths of every read or write on a File opened with FlagDirect
// must be multiples of it. 4 KiB covers every physical sector size in use.
const BlockSize = 4096

// Flag selects how Open opens a file. Flags combine with |.
type Flag uint32

const (
	// FlagWrite opens the file for reading and writing (reading only without it).
	FlagWrite Flag = 1 << iota
	// FlagCreate creates the file if it does not exist (requires FlagWrite).
	FlagCreate
	// FlagTruncate truncates an existing file to zero length (requires FlagWrite).
	FlagTruncate
	// FlagDirect asks for O_DIRECT: no page cache, aligned buffers, offsets and
	// lengths. Where the file system refuses it the OS implementation falls
	// back to buffered I/O; File.Direct reports which mode the file got.
	FlagDirect
	// FlagDSync asks for O_DSYNC: a write returns only once its data (and the
	// metadata needed to read it back) is durable, as if followed by fdatasync.
	FlagDSync
)

// String renders the flags for error messages.
func (f Flag) String() string {
	s := "read"
	if f&FlagWrite != 0 {
		s = "read|write"
	}
	for _, x := range []struct {
		f    Flag
		name string
	}{{FlagCreate, "create"}, {FlagTruncate, "truncate"}, {FlagDirect, "direct"}, {FlagDSync, "dsync"}} {
		if f&x.f != 0 {
			s += "|" + x.name
		}
	}
	return s
}

// FS is the file-system seam. Every file operation of the WAL (and the LSM)
// goes through it so tests can crash the disk or fail any operation.
// Implementations are safe for concurrent use.
type FS interface {
	// Open opens name with flags. A missing file without FlagCreate is an
	// error satisfying errors.Is(err, os.ErrNotExist).
	Open(name string, flags Flag) (File, error)
	// Rename atomically replaces newname with oldname. Durable only after
	// SyncDir of the directory.
	Rename(oldname, newname string) error
	// Remove deletes a file. Durable only after SyncDir.
	Remove(name string) error
	// List returns the names (not paths) of the entries of dir, sorted.
	List(dir string) ([]string, error)
	// MkdirAll creates dir and its parents.
	MkdirAll(dir string) error
	// SyncDir makes the directory's entries (creations, renames, removals) durable.
	SyncDir(dir string) error
	// Stat describes the file at name.
	Stat(name string) (FileInfo, error)
	// Lock takes an exclusive advisory lock on the file at name (created if
	// missing), held until the returned Closer is closed. A lock held by
	// someone else is an error, not a wait.
	Lock(name string) (io.Closer, error)
}

// File is an open file. ReadAt and WriteAt may be called concurrently at
// different offsets; the other methods are safe for concurrent use too.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Sync makes the file's data and size durable (fdatasync).
	Sync() error
	// Preallocate reserves [offset, offset+length) on disk and extends the
	// size to cover it (fallocate). Reserved space reads as zeros.
	Preallocate(offset, length int64) error
	// Truncate sets the file's size.
	Truncate(size int64) error
	// Stat describes the open file.
	Stat() (FileInfo, error)
	// Direct reports whether the file was opened with O_DIRECT in effect.
	Direct() bool
	// Name returns the path the file was opened with.
	Name() string
}

// FileInfo is the part of a file's metadata the storage code uses.
type FileInfo struct {
	Name  string
	Size  int64
	IsDir bool
}

// ErrUnaligned is returned (wrapped, with EINVAL semantics) by test file
// systems for a direct I/O whose buffer, offset or length is not
// BlockSize-aligned, so that alignment bugs surface even in memory.
var ErrUnaligned = errors.New("direct I/O not aligned to 4096 bytes (EINVAL)")

// AlignedBuffer returns a zeroed slice of n bytes whose first byte is
// BlockSize-aligned, usable as a direct I/O buffer. n need not be a multiple
// of BlockSize, but only aligned lengths may be written with FlagDirect.
func AlignedBuffer(n int) []byte {
	if n < 0 {
		panic(fmt.Sprintf("vfs.AlignedBuffer: negative size %d", n))
	}
	raw := make([]byte, n+BlockSize)
	shift := 0
	if rem := int(uintptr(unsafe.Pointer(unsafe.SliceData(raw))) & (BlockSize - 1)); rem != 0 {
		shift = BlockSize - rem
	}
	return raw[shift : shift+n : shift+n]
}

// IsAligned reports whether b's address and length are BlockSize multiples
// (an empty slice is aligned).
func IsAligned(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	return uintptr(unsafe.Pointer(unsafe.SliceData(b)))&(BlockSize-1) == 0 && len(b)%BlockSize == 0
}

// checkDirect returns ErrUnaligned when a direct I/O of b at off is not aligned.
func checkDirect(op, name string, b []byte, off int64) error {
	if !IsAligned(b) || off%BlockSize != 0 {
		return &os.PathError{Op: op, Path: name, Err: fmt.Errorf("%w: buffer %p len %d offset %d", ErrUnaligned, unsafe.SliceData(b), len(b), off)}
	}
	return nil
}
