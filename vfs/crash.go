package vfs

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
)

// SectorSize is the unit a simulated crash tears: a block that was being
// written when power failed may come back with any mix of old and new
// 512-byte sectors.
const SectorSize = 512

// ErrCrashed is returned by every operation on a CrashFS (and its open files)
// after its simulated crash.
var ErrCrashed = errors.New("vfs: simulated crash: file system is gone")

// CrashFS is an in-memory FS that knows what a power cut would keep. It tracks
// for every file the content that is durable (written with FlagDSync, or
// covered by a later Sync) apart from the current content, and for every
// directory the entries made durable by SyncDir apart from the current ones.
//
// Crash (or the k-th operation, see CrashAtOp) freezes the file system: every
// later operation fails with ErrCrashed, and Image returns what a reboot
// would find: the durable state, plus for each block written since its last
// sync a random choice of old content, new content, or a torn mix of old and
// new 512-byte sectors; each directory comes back either as of its last
// SyncDir or as it was at the crash. Files opened with FlagDirect enforce
// 4 KiB alignment of buffers, offsets and lengths like ext4 does.
//
// A FlagDSync write applies its data, yields the processor, and only then
// makes it durable and returns: a crash in between models a write in flight.
// Directories themselves (MkdirAll) are durable at once.
type CrashFS struct {
	mu      sync.Mutex
	dirs    map[string]*memDir
	locks   map[string]bool
	ops     int64
	crashAt int64
	rng     *rand.Rand
	crashed bool
	image   *CrashFS
}

type memDir struct {
	current map[string]*memNode
	synced  map[string]*memNode
}

type memNode struct {
	data    []byte         // current content; len is the current size
	durable []byte         // durable content; len is the durable size
	dirty   map[int64]bool // blocks written since they were last durable
}

// NewCrashFS returns an empty CrashFS whose crash choices come from seed.
func NewCrashFS(seed uint64) *CrashFS {
	return &CrashFS{
		dirs:    map[string]*memDir{"/": newMemDir()},
		locks:   map[string]bool{},
		crashAt: -1,
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
}

func newMemDir() *memDir {
	return &memDir{current: map[string]*memNode{}, synced: map[string]*memNode{}}
}

// CrashAtOp arranges for the crash to happen at the start of operation
// number n (counting every FS and File call from 0 since NewCrashFS). The
// operation itself fails with ErrCrashed.
func (fs *CrashFS) CrashAtOp(n int64) {
	fs.mu.Lock()
	fs.crashAt = n
	fs.mu.Unlock()
}

// Ops returns the number of operations performed so far.
func (fs *CrashFS) Ops() int64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.ops
}

// Crash simulates a power cut now. Calling it again has no effect.
func (fs *CrashFS) Crash() {
	fs.mu.Lock()
	fs.crashLocked()
	fs.mu.Unlock()
}

// Crashed reports whether the crash has happened.
func (fs *CrashFS) Crashed() bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.crashed
}

// Image returns the file system a reboot after the crash would find, as a
// fresh CrashFS (with the same random source), or nil before the crash.
func (fs *CrashFS) Image() *CrashFS {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.image
}

func (fs *CrashFS) crashLocked() {
	if fs.crashed {
		return
	}
	fs.crashed = true
	img := &CrashFS{dirs: map[string]*memDir{}, locks: map[string]bool{}, crashAt: -1, rng: fs.rng}
	copied := map[*memNode]*memNode{}
	dirNames := make([]string, 0, len(fs.dirs))
	for name := range fs.dirs {
		dirNames = append(dirNames, name)
	}
	sort.Strings(dirNames) // deterministic use of the random source
	for _, dname := range dirNames {
		d := fs.dirs[dname]
		src := d.synced
		if fs.rng.IntN(2) == 0 {
			src = d.current
		}
		nd := newMemDir()
		names := make([]string, 0, len(src))
		for name := range src {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			n := src[name]
			c, ok := copied[n]
			if !ok {
				c = fs.survivor(n)
				copied[n] = c
			}
			nd.current[name] = c
			nd.synced[name] = c
		}
		img.dirs[dname] = nd
	}
	fs.image = img
}

// survivor returns what a power cut leaves of n.
func (fs *CrashFS) survivor(n *memNode) *memNode {
	out := append([]byte(nil), n.durable...)
	blocks := make([]int64, 0, len(n.dirty))
	for b := range n.dirty {
		blocks = append(blocks, b)
	}
	sort.Slice(blocks, func(i, j int) bool { return blocks[i] < blocks[j] })
	for _, b := range blocks {
		start := b * BlockSize
		end := min(start+BlockSize, int64(len(n.data)))
		if start >= end {
			continue
		}
		choice := fs.rng.IntN(3)
		if choice == 0 {
			continue // the write never reached the medium
		}
		if int64(len(out)) < end {
			out = append(out, make([]byte, end-int64(len(out)))...)
		}
		for s := start; s < end; s += SectorSize {
			se := min(s+SectorSize, end)
			if choice == 1 || fs.rng.IntN(2) == 0 {
				copy(out[s:se], n.data[s:se])
			}
		}
	}
	return &memNode{data: out, durable: append([]byte(nil), out...), dirty: map[int64]bool{}}
}

// op counts an operation and fails it if the file system has crashed.
func (fs *CrashFS) opLocked() error {
	if fs.crashed {
		return ErrCrashed
	}
	if fs.ops == fs.crashAt {
		fs.crashLocked()
		return ErrCrashed
	}
	fs.ops++
	return nil
}

func cleanPath(name string) (dir, base string) {
	p := filepath.Clean("/" + name)
	return filepath.Dir(p), filepath.Base(p)
}

func (fs *CrashFS) lookupLocked(name string) (*memDir, string, error) {
	dir, base := cleanPath(name)
	d, ok := fs.dirs[dir]
	if !ok {
		return nil, "", &os.PathError{Op: "lookup", Path: name, Err: os.ErrNotExist}
	}
	return d, base, nil
}

// Open implements FS.
func (fs *CrashFS) Open(name string, flags Flag) (File, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.opLocked(); err != nil {
		return nil, err
	}
	d, base, err := fs.lookupLocked(name)
	if err != nil {
		return nil, err
	}
	n, ok := d.current[base]
	if !ok {
		if _, isDir := fs.dirs[filepath.Clean("/"+name)]; isDir {
			return nil, &os.PathError{Op: "open", Path: name, Err: errors.New("is a directory")}
		}
		if flags&FlagCreate == 0 || flags&FlagWrite == 0 {
			return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrNotExist}
		}
		n = &memNode{dirty: map[int64]bool{}}
		d.current[base] = n
	}
	if flags&FlagTruncate != 0 && flags&FlagWrite != 0 {
		n.data = n.data[:0]
	}
	return &memFile{fs: fs, n: n, name: name, flags: flags}, nil
}

// Rename implements FS.
func (fs *CrashFS) Rename(oldname, newname string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.opLocked(); err != nil {
		return err
	}
	od, ob, err := fs.lookupLocked(oldname)
	if err != nil {
		return err
	}
	n, ok := od.current[ob]
	if !ok {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: os.ErrNotExist}
	}
	nd, nb, err := fs.lookupLocked(newname)
	if err != nil {
		return err
	}
	delete(od.current, ob)
	nd.current[nb] = n
	return nil
}

// Remove implements FS.
func (fs *CrashFS) Remove(name string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.opLocked(); err != nil {
		return err
	}
	d, base, err := fs.lookupLocked(name)
	if err != nil {
		return err
	}
	if _, ok := d.current[base]; !ok {
		return &os.PathError{Op: "remove", Path: name, Err: os.ErrNotExist}
	}
	delete(d.current, base)
	return nil
}

// List implements FS.
func (fs *CrashFS) List(dir string) ([]string, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.opLocked(); err != nil {
		return nil, err
	}
	p := filepath.Clean("/" + dir)
	d, ok := fs.dirs[p]
	if !ok {
		return nil, &os.PathError{Op: "list", Path: dir, Err: os.ErrNotExist}
	}
	var names []string
	for name := range d.current {
		names = append(names, name)
	}
	for sub := range fs.dirs {
		if sub != p && filepath.Dir(sub) == p {
			names = append(names, filepath.Base(sub))
		}
	}
	sort.Strings(names)
	return names, nil
}

// MkdirAll implements FS.
func (fs *CrashFS) MkdirAll(dir string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.opLocked(); err != nil {
		return err
	}
	for p := filepath.Clean("/" + dir); ; p = filepath.Dir(p) {
		if _, ok := fs.dirs[p]; !ok {
			fs.dirs[p] = newMemDir()
		}
		if p == "/" {
			return nil
		}
	}
}

// SyncDir implements FS.
func (fs *CrashFS) SyncDir(dir string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.opLocked(); err != nil {
		return err
	}
	d, ok := fs.dirs[filepath.Clean("/"+dir)]
	if !ok {
		return &os.PathError{Op: "syncdir", Path: dir, Err: os.ErrNotExist}
	}
	d.synced = make(map[string]*memNode, len(d.current))
	for k, v := range d.current {
		d.synced[k] = v
	}
	return nil
}

// Stat implements FS.
func (fs *CrashFS) Stat(name string) (FileInfo, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.opLocked(); err != nil {
		return FileInfo{}, err
	}
	if _, ok := fs.dirs[filepath.Clean("/"+name)]; ok {
		return FileInfo{Name: filepath.Base(name), IsDir: true}, nil
	}
	d, base, err := fs.lookupLocked(name)
	if err != nil {
		return FileInfo{}, err
	}
	n, ok := d.current[base]
	if !ok {
		return FileInfo{}, &os.PathError{Op: "stat", Path: name, Err: os.ErrNotExist}
	}
	return FileInfo{Name: base, Size: int64(len(n.data))}, nil
}

type memLock struct {
	fs   *CrashFS
	name string
}

func (l memLock) Close() error {
	l.fs.mu.Lock()
	delete(l.fs.locks, l.name)
	l.fs.mu.Unlock()
	return nil
}

// Lock implements FS (within this CrashFS only).
func (fs *CrashFS) Lock(name string) (io.Closer, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.opLocked(); err != nil {
		return nil, err
	}
	p := filepath.Clean("/" + name)
	if fs.locks[p] {
		return nil, fmt.Errorf("lock %s: already held", name)
	}
	fs.locks[p] = true
	return memLock{fs, p}, nil
}

type memFile struct {
	fs    *CrashFS
	n     *memNode
	name  string
	flags Flag
}

func (f *memFile) Name() string { return f.name }
func (f *memFile) Direct() bool { return f.flags&FlagDirect != 0 }

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.fs.opLocked(); err != nil {
		return 0, err
	}
	if f.Direct() {
		if err := checkDirect("read", f.name, p, off); err != nil {
			return 0, err
		}
	}
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	fs := f.fs
	fs.mu.Lock()
	if err := fs.opLocked(); err != nil {
		fs.mu.Unlock()
		return 0, err
	}
	if f.flags&FlagWrite == 0 {
		fs.mu.Unlock()
		return 0, &os.PathError{Op: "write", Path: f.name, Err: errors.New("file not open for writing")}
	}
	if f.Direct() {
		if err := checkDirect("write", f.name, p, off); err != nil {
			fs.mu.Unlock()
			return 0, err
		}
	}
	end := off + int64(len(p))
	if int64(len(f.n.data)) < end {
		f.n.data = append(f.n.data, make([]byte, end-int64(len(f.n.data)))...)
	}
	copy(f.n.data[off:], p)
	for b := off / BlockSize; b*BlockSize < end; b++ {
		f.n.dirty[b] = true
	}
	fs.mu.Unlock()
	if f.flags&FlagDSync == 0 {
		return len(p), nil
	}
	// The write is in flight: a crash now keeps any subset of its blocks.
	runtime.Gosched()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.crashed {
		return 0, ErrCrashed
	}
	for b := off / BlockSize; b*BlockSize < end; b++ {
		f.n.syncBlock(b)
	}
	return len(p), nil
}

// syncBlock makes block b of n durable as currently written.
func (n *memNode) syncBlock(b int64) {
	start := b * BlockSize
	end := min(start+BlockSize, int64(len(n.data)))
	if start >= end {
		delete(n.dirty, b)
		return
	}
	if int64(len(n.durable)) < end {
		n.durable = append(n.durable, make([]byte, end-int64(len(n.durable)))...)
	}
	copy(n.durable[start:end], n.data[start:end])
	delete(n.dirty, b)
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.fs.opLocked(); err != nil {
		return err
	}
	n := f.n
	for b := range n.dirty {
		n.syncBlock(b)
	}
	if len(n.durable) > len(n.data) {
		n.durable = n.durable[:len(n.data)]
	} else if len(n.durable) < len(n.data) {
		n.durable = append(n.durable, n.data[len(n.durable):]...)
	}
	return nil
}

func (f *memFile) Preallocate(offset, length int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.fs.opLocked(); err != nil {
		return err
	}
	if end := offset + length; int64(len(f.n.data)) < end {
		f.n.data = append(f.n.data, make([]byte, end-int64(len(f.n.data)))...)
	}
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.fs.opLocked(); err != nil {
		return err
	}
	if size < 0 {
		return &os.PathError{Op: "truncate", Path: f.name, Err: fmt.Errorf("negative size %d", size)}
	}
	if size <= int64(len(f.n.data)) {
		f.n.data = f.n.data[:size]
	} else {
		f.n.data = append(f.n.data, make([]byte, size-int64(len(f.n.data)))...)
	}
	for b := range f.n.dirty {
		if b*BlockSize >= size {
			delete(f.n.dirty, b)
		}
	}
	// The size change is not durable until Sync: mark the last block dirty
	// so a crash may or may not keep it.
	if size > 0 {
		f.n.dirty[(size-1)/BlockSize] = true
	}
	return nil
}

func (f *memFile) Stat() (FileInfo, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.fs.opLocked(); err != nil {
		return FileInfo{}, err
	}
	return FileInfo{Name: filepath.Base(f.name), Size: int64(len(f.n.data))}, nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	// Closing never fails, even after a crash, so cleanup paths stay simple.
	return nil
}
