package shm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DefaultBase is where segments live unless Options.Base says otherwise.
const DefaultBase = "/dev/shm/tapewire"

// DefaultNamespace is the namespace used when Options.Namespace is empty.
const DefaultNamespace = "default"

// MaxSegmentBytes bounds a segment's size (64 GiB).
const MaxSegmentBytes = 1 << 36

// MaxNameBytes bounds a segment's file name.
const MaxNameBytes = 200

// Options say where segments live and how they are created and mapped. The
// zero value is usable: /dev/shm/tapewire/default, mode 0600, owner must be
// the caller.
type Options struct {
	// Base is the directory holding namespaces (default DefaultBase).
	Base string
	// Namespace is the subdirectory of Base (default DefaultNamespace).
	Namespace string
	// Group, when not zero, is the gid that may share the segments: files are
	// created 0660 and chowned to it, the namespace directory 0770.
	Group int
	// AllowUIDs lists owners other than the caller's effective uid whose
	// segments Open accepts (for a reader running as another user).
	AllowUIDs []int
	// Populate pre-faults the whole mapping (MAP_POPULATE) so the first touch
	// of each page does not take a page fault on the hot path.
	Populate bool
	// Lock mlocks the mapping so it is never swapped out.
	Lock bool
	// HugePages asks for transparent huge pages (MADV_HUGEPAGE). On /dev/shm
	// this only has an effect if the tmpfs is mounted with huge=always or
	// huge=advise, or /sys/kernel/mm/transparent_hugepage/shmem_enabled allows
	// it; otherwise the advice is accepted and ignored.
	HugePages bool
}

// Dir returns the directory segments of o live in.
func (o *Options) Dir() string {
	base, ns := o.Base, o.Namespace
	if base == "" {
		base = DefaultBase
	}
	if ns == "" {
		ns = DefaultNamespace
	}
	return filepath.Join(base, ns)
}

func (o *Options) fileMode() uint32 {
	if o.Group != 0 {
		return 0o660
	}
	return 0o600
}

// CheckName reports whether name may name a segment file: 1..MaxNameBytes of
// [A-Za-z0-9._-], not starting with a dot.
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameBytes {
		return fmt.Errorf("segment name %q: length %d, must be 1..%d bytes", name, len(name), MaxNameBytes)
	}
	if name[0] == '.' {
		return fmt.Errorf("segment name %q: must not start with '.'", name)
	}
	for _, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("segment name %q: byte %q not allowed (use A-Z a-z 0-9 . _ -)", name, c)
		}
	}
	return nil
}

// Lock indexes: byte offsets of the open-file-description locks (F_OFD_SETLK)
// that record roles. The kernel drops a process's locks when it dies, so a
// held lock is liveness no pid check can fake.
const (
	// LockMapped is held shared by every process that has the segment open.
	LockMapped = 0
	// LockWriter is held exclusively by the one writer (ring publisher,
	// last-value writer).
	LockWriter = 1
	// LockSlotBase + i is held exclusively by the owner of table slot i.
	LockSlotBase = 2
)

// Segment is a mapped segment. Its methods may be called from any goroutine;
// the mapped bytes follow the concurrency rules of the segment's kind.
type Segment struct {
	path   string
	file   *os.File
	data   []byte
	header Header
}

// CreateParams describe a new segment.
type CreateParams struct {
	Kind       uint32
	SchemaID   uint64
	Bytes      int64 // total size, header page included; a multiple of 4096
	KindParams [KindParamsBytes]byte
}

// Create creates, sizes, maps and initializes the segment name in o.Dir(). It
// fails if the file exists. The file is created with an explicit mode (0600,
// or 0660 with o.Group) whatever the umask, without following symlinks. The
// header's state word is stored last: until then openers get ErrInitializing.
// Create does not return until the segment is ready. init, when not nil, runs
// on the mapped segment before the state word is stored (to lay out the
// kind's own structures).
func Create(o Options, name string, p CreateParams, init func(*Segment) error) (*Segment, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if p.Bytes < HeaderPageBytes || p.Bytes > MaxSegmentBytes || p.Bytes%HeaderPageBytes != 0 {
		return nil, fmt.Errorf("create segment %s: size %d must be a multiple of %d in [%d, %d]", name, p.Bytes, HeaderPageBytes, HeaderPageBytes, int64(MaxSegmentBytes))
	}
	me, err := Self()
	if err != nil {
		return nil, fmt.Errorf("create segment %s: %w", name, err)
	}
	dir := o.Dir()
	if err := ensureDir(dir, o.Group); err != nil {
		return nil, fmt.Errorf("create segment %s: %w", name, err)
	}
	path := filepath.Join(dir, name)
	mode := o.fileMode()
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		return nil, fmt.Errorf("create segment %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	fail := func(err error) (*Segment, error) {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("create segment %s: %w", path, err)
	}
	// The umask may have cleared bits of mode: set them explicitly.
	if err := unix.Fchmod(fd, mode); err != nil {
		return fail(err)
	}
	if o.Group != 0 {
		if err := unix.Fchown(fd, -1, o.Group); err != nil {
			return fail(fmt.Errorf("chown to group %d: %w", o.Group, err))
		}
	}
	if err := unix.Ftruncate(fd, p.Bytes); err != nil {
		return fail(err)
	}
	s := &Segment{path: path, file: f}
	if err := s.mapFile(int(p.Bytes), o); err != nil {
		return fail(err)
	}
	if err := s.lockShared(LockMapped); err != nil {
		s.unmap()
		return fail(err)
	}
	s.header = Header{
		LayoutMajor: LayoutMajor, LayoutMinor: LayoutMinor, Kind: p.Kind,
		SegmentBytes: uint64(p.Bytes), SchemaID: p.SchemaID,
		CreatorPID: uint32(me.PID), CreatorUID: uint32(os.Geteuid()), CreatorStart: me.StartTime,
		BootID: me.BootID, CreatedNs: time.Now().UnixNano(), CreateMode: mode,
		KindParams: p.KindParams, State: StateReady,
	}
	encodeHeader(s.data, &s.header)
	if init != nil {
		if err := init(s); err != nil {
			s.unmap()
			return fail(err)
		}
	}
	atomic.StoreUint32(s.stateWord(), StateReady)
	return s, nil
}

func ensureDir(dir string, group int) error {
	perm := os.FileMode(0o700)
	if group != 0 {
		perm = 0o770
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory (symlink?)", dir)
	}
	return nil
}

// Open opens, validates and maps the existing segment name. It refuses a
// symlink, a non-regular file, a file owned by a user other than the caller
// (unless in o.AllowUIDs), a file whose mode grants anything to others or
// write to the group without o.Group, a header that does not validate
// (ParseHeader), a segment of another kind than wantKind (0 accepts any), and
// a file shorter or longer than the header says. Errors wrap the Err*
// values of this package; faults while reading the mapping become ErrFault.
func Open(o Options, name string, wantKind uint32) (*Segment, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	path := filepath.Join(o.Dir(), name)
	s, err := openPath(o, path, wantKind)
	if err != nil {
		return nil, fmt.Errorf("open segment %s: %w", path, err)
	}
	return s, nil
}

func openPath(o Options, path string, wantKind uint32) (*Segment, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), path)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, err
	}
	if err := checkStat(&st, o); err != nil {
		f.Close()
		return nil, err
	}
	if st.Size < HeaderBytes {
		f.Close()
		return nil, fmt.Errorf("%w: file has %d bytes, a header needs %d", ErrTruncated, st.Size, HeaderBytes)
	}
	if st.Size > MaxSegmentBytes {
		f.Close()
		return nil, fmt.Errorf("%w: file has %d bytes, more than the limit %d", ErrCorrupt, st.Size, int64(MaxSegmentBytes))
	}
	s := &Segment{path: path, file: f}
	if err := s.mapFile(int(st.Size), o); err != nil {
		f.Close()
		return nil, err
	}
	err = Guard(func() error {
		h, err := ParseHeader(s.data)
		if err != nil {
			return err
		}
		if wantKind != 0 && h.Kind != wantKind {
			return fmt.Errorf("%w: kind %d, want %d", ErrKind, h.Kind, wantKind)
		}
		if h.SegmentBytes != uint64(st.Size) {
			if h.SegmentBytes > uint64(st.Size) {
				return fmt.Errorf("%w: header says %d bytes, file has %d", ErrTruncated, h.SegmentBytes, st.Size)
			}
			return fmt.Errorf("%w: header says %d bytes, file has %d", ErrCorrupt, h.SegmentBytes, st.Size)
		}
		s.header = h
		return nil
	})
	if err == nil {
		err = s.lockShared(LockMapped)
	}
	if err != nil {
		s.unmap()
		f.Close()
		return nil, err
	}
	return s, nil
}

// checkStat applies the owner, type and mode rules to an fstat result.
func checkStat(st *unix.Stat_t, o Options) error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("not a regular file (mode %#o)", st.Mode)
	}
	euid := os.Geteuid()
	if int(st.Uid) != euid {
		allowed := false
		for _, u := range o.AllowUIDs {
			allowed = allowed || u == int(st.Uid)
		}
		if !allowed {
			return fmt.Errorf("%w: owner uid %d, caller uid %d (Options.AllowUIDs lists other accepted owners)", ErrOwner, st.Uid, euid)
		}
	}
	perm := st.Mode & 0o777
	allowedPerm := uint32(0o600)
	if o.Group != 0 {
		allowedPerm = 0o660
	}
	if perm&^allowedPerm != 0 {
		return fmt.Errorf("%w: mode %#o, at most %#o allowed (set Options.Group to share with a group)", ErrMode, perm, allowedPerm)
	}
	return nil
}

func (s *Segment) mapFile(size int, o Options) error {
	flags := unix.MAP_SHARED
	if o.Populate {
		flags |= unix.MAP_POPULATE
	}
	data, err := unix.Mmap(int(s.file.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, flags)
	if err != nil {
		return fmt.Errorf("mmap %d bytes: %w", size, err)
	}
	s.data = data
	if o.HugePages {
		if err := unix.Madvise(data, unix.MADV_HUGEPAGE); err != nil {
			s.unmap()
			return fmt.Errorf("madvise(MADV_HUGEPAGE): %w", err)
		}
	}
	if o.Lock {
		if err := unix.Mlock(data); err != nil {
			s.unmap()
			return fmt.Errorf("mlock %d bytes (raise RLIMIT_MEMLOCK?): %w", size, err)
		}
	}
	return nil
}

func (s *Segment) unmap() {
	if s.data != nil {
		_ = unix.Munmap(s.data)
		s.data = nil
	}
}

// Close unmaps the segment and closes its file, which releases every lock the
// segment holds. Views into Bytes are invalid afterwards.
func (s *Segment) Close() error {
	s.unmap()
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	s.file = nil
	return err
}

// Replaced reports whether the file at the segment's path is no longer the
// mapped one: it was removed (true, nil) or another file now has its name
// (a different device or inode: true, nil). It costs an fstat and an lstat,
// so call it from a control loop (every second or so), never per frame. An
// error other than "no such file" is returned as is.
func (s *Segment) Replaced() (bool, error) {
	if s.file == nil {
		return false, fmt.Errorf("segment %s: closed", s.path)
	}
	var mine, named unix.Stat_t
	if err := unix.Fstat(int(s.file.Fd()), &mine); err != nil {
		return false, fmt.Errorf("segment %s: fstat: %w", s.path, err)
	}
	if err := unix.Lstat(s.path, &named); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return true, nil
		}
		return false, fmt.Errorf("segment %s: %w", s.path, err)
	}
	return mine.Dev != named.Dev || mine.Ino != named.Ino, nil
}

// Bytes returns the whole mapping, header page included.
func (s *Segment) Bytes() []byte { return s.data }

// Header returns the header read (or written) when the segment was opened.
func (s *Segment) Header() Header { return s.header }

// Path returns the segment's file path.
func (s *Segment) Path() string { return s.path }

func (s *Segment) stateWord() *uint32 {
	return (*uint32)(unsafe.Pointer(&s.data[offState]))
}

// KindParams returns the kind's parameter bytes inside the mapped header.
func (s *Segment) KindParams() []byte { return s.data[offKindParams : offKindParams+KindParamsBytes] }

// Uint64At returns a pointer to the 8-byte-aligned word at off in the mapping.
func (s *Segment) Uint64At(off int) *uint64 {
	if off%8 != 0 || off < 0 || off+8 > len(s.data) {
		panic(fmt.Sprintf("shm: Uint64At(%d) outside or misaligned in a %d-byte segment", off, len(s.data)))
	}
	return (*uint64)(unsafe.Pointer(&s.data[off]))
}

// Uint32At returns a pointer to the 4-byte-aligned word at off in the mapping.
func (s *Segment) Uint32At(off int) *uint32 {
	if off%4 != 0 || off < 0 || off+4 > len(s.data) {
		panic(fmt.Sprintf("shm: Uint32At(%d) outside or misaligned in a %d-byte segment", off, len(s.data)))
	}
	return (*uint32)(unsafe.Pointer(&s.data[off]))
}

// flock builds an OFD lock request on the one byte at index.
func flock(typ int16, index int) unix.Flock_t {
	return unix.Flock_t{Type: typ, Whence: 0, Start: int64(index), Len: 1}
}

func (s *Segment) lockShared(index int) error {
	lk := flock(unix.F_RDLCK, index)
	if err := unix.FcntlFlock(s.file.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		return fmt.Errorf("shared lock %d: %w", index, err)
	}
	return nil
}

// ErrLocked is returned by TryLock when another open file holds the lock.
var ErrLocked = errors.New("lock held by another process")

// TryLock takes the exclusive lock at index without waiting. It returns an
// error wrapping ErrLocked if another open of the file holds it. The lock is
// released by Unlock, by Close, or by the kernel when the process dies.
func (s *Segment) TryLock(index int) error {
	lk := flock(unix.F_WRLCK, index)
	if err := unix.FcntlFlock(s.file.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return fmt.Errorf("lock %d of %s: %w", index, s.path, ErrLocked)
		}
		return fmt.Errorf("lock %d of %s: %w", index, s.path, err)
	}
	return nil
}

// Unlock releases the lock at index held through this Segment.
func (s *Segment) Unlock(index int) error {
	lk := flock(unix.F_UNLCK, index)
	return unix.FcntlFlock(s.file.Fd(), unix.F_OFD_SETLK, &lk)
}

// LockHeld reports whether another open file description holds the lock at
// index (shared or exclusive). Locks held through this Segment do not count.
// It is one fcntl system call: keep it off hot paths.
func (s *Segment) LockHeld(index int) (bool, error) {
	return lockHeld(s.file.Fd(), index)
}

func lockHeld(fd uintptr, index int) (bool, error) {
	lk := flock(unix.F_WRLCK, index)
	if err := unix.FcntlFlock(fd, unix.F_OFD_GETLK, &lk); err != nil {
		return false, err
	}
	return lk.Type != unix.F_UNLCK, nil
}

// Remove deletes the segment file name. Processes that have it mapped keep
// their mapping; new opens fail.
func Remove(o Options, name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	path := filepath.Join(o.Dir(), name)
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove segment %s: %w", path, err)
	}
	return nil
}

// Entry describes one file found by List.
type Entry struct {
	Name string
	Path string
	Size int64
	// Header is valid when Err is nil.
	Header Header
	// Err says why the file is not a usable segment (it is still listed so
	// tools can show and gc it).
	Err error
}

// List returns the files in o.Dir(), sorted by name, each with its header or
// the reason it could not be read. A missing directory is an empty list.
func List(o Options) ([]Entry, error) {
	dir := o.Dir()
	des, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list segments in %s: %w", dir, err)
	}
	var out []Entry
	for _, de := range des {
		if !de.Type().IsRegular() || strings.HasPrefix(de.Name(), ".") {
			continue
		}
		e := Entry{Name: de.Name(), Path: filepath.Join(dir, de.Name())}
		if fi, err := de.Info(); err == nil {
			e.Size = fi.Size()
		}
		s, err := openPath(o, e.Path, 0)
		if err != nil {
			e.Err = err
		} else {
			e.Header = s.Header()
			s.Close()
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// InUse reports whether the file at path is open as a segment by anyone
// (some open file description, the caller's own Segments included, holds
// LockMapped) or mapped by another process at all (found in some
// /proc/PID/maps by device and inode, which also catches clients that map
// without taking the lock).
func InUse(path string) (bool, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	held, err := lockHeld(uintptr(fd), LockMapped)
	if err != nil {
		return false, err
	}
	if held {
		return true, nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, err
	}
	return mappedByAnyProcess(st.Dev, st.Ino)
}

// mappedByAnyProcess scans /proc/*/maps for a mapping of (dev, ino).
func mappedByAnyProcess(dev, ino uint64) (bool, error) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return false, err
	}
	self := os.Getpid()
	want := fmt.Sprintf(" %02x:%02x %d", unix.Major(dev), unix.Minor(dev), ino)
	for _, p := range procs {
		pid, err := parsePID(p.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile("/proc/" + p.Name() + "/maps")
		if err != nil {
			continue // exited, or not ours to read
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, want+" ") || strings.HasSuffix(line, want) {
				return true, nil
			}
		}
	}
	return false, nil
}

func parsePID(s string) (int, error) {
	n := 0
	if s == "" {
		return 0, errors.New("empty")
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, errors.New("not a pid")
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}
