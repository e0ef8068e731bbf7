package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func createTest(t *testing.T, o Options, name string) *Segment {
	t.Helper()
	var p CreateParams
	p.Kind, p.SchemaID, p.Bytes = 7, 42, 3*HeaderPageBytes
	copy(p.KindParams[:], "params")
	s, err := Create(o, name, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestCreateOpenRoundTrip(t *testing.T) {
	o := testOptions(t)
	s := createTest(t, o, "a.seg")
	s.Bytes()[HeaderPageBytes] = 0xAB
	r, err := Open(o, "a.seg", 7)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := r.Header()
	me, _ := Self()
	if h.Kind != 7 || h.SchemaID != 42 || h.SegmentBytes != 3*HeaderPageBytes || h.Creator() != me || h.CreatorUID != uint32(os.Geteuid()) {
		t.Fatalf("header %+v", h)
	}
	if string(h.KindParams[:6]) != "params" || string(r.KindParams()[:6]) != "params" {
		t.Fatalf("kind params %q", h.KindParams[:6])
	}
	if r.Bytes()[HeaderPageBytes] != 0xAB {
		t.Fatal("second mapping does not see the first's write: not MAP_SHARED?")
	}
	if _, err := Open(o, "a.seg", 8); !errors.Is(err, ErrKind) {
		t.Fatalf("open as kind 8: %v, want ErrKind", err)
	}
	if _, err := Create(o, "a.seg", CreateParams{Kind: 7, Bytes: HeaderPageBytes}, nil); !errors.Is(err, os.ErrExist) {
		t.Fatalf("create over existing: %v, want ErrExist", err)
	}
}

func TestCreateModeIgnoresUmask(t *testing.T) {
	o := testOptions(t)
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	createTest(t, o, "private")
	o2 := o
	o2.Group = 65534
	syscall.Umask(0o777) // would leave no bits at all
	createTest(t, o2, "grouped")
	syscall.Umask(0)
	for name, want := range map[string]uint32{"private": 0o600, "grouped": 0o660} {
		var st unix.Stat_t
		if err := unix.Stat(segPath(o, name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&0o777 != want {
			t.Errorf("%s: mode %#o, want %#o", name, st.Mode&0o777, want)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(segPath(o, "grouped"), &st); err != nil || st.Gid != 65534 {
		t.Fatalf("grouped: gid %d, err %v", st.Gid, err)
	}
}

func TestOpenRefusesHostileFiles(t *testing.T) {
	o := testOptions(t)
	good := createTest(t, o, "good")
	goodBytes := append([]byte(nil), good.Bytes()...)

	write := func(name string, b []byte, mode os.FileMode) {
		t.Helper()
		p := segPath(o, name)
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	mutate := func(f func(b []byte)) []byte {
		b := append([]byte(nil), goodBytes...)
		f(b)
		return b
	}
	resum := func(b []byte) {
		binary.LittleEndian.PutUint32(b[offCRC:], crc32.Checksum(b[:offCRC], castagnoli))
	}
	garbage := make([]byte, 2*HeaderPageBytes)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	write("garbage", garbage, 0o600)
	write("short", goodBytes[:100], 0o600)
	write("truncated", goodBytes[:2*HeaderPageBytes], 0o600)
	write("longer", append(append([]byte(nil), goodBytes...), make([]byte, HeaderPageBytes)...), 0o600)
	write("magic", mutate(func(b []byte) { b[0] = 'X' }), 0o600)
	write("major", mutate(func(b []byte) { b[offLayoutMajor] = 2; resum(b) }), 0o600)
	write("halfinit", mutate(func(b []byte) { binary.LittleEndian.PutUint32(b[offState:], 0) }), 0o600)
	write("badstate", mutate(func(b []byte) { binary.LittleEndian.PutUint32(b[offState:], 7) }), 0o600)
	write("crc", mutate(func(b []byte) { b[offSchemaID] ^= 1 }), 0o600)
	write("worldreadable", goodBytes, 0o644)
	write("groupwritable", goodBytes, 0o620)
	write("otheruser", goodBytes, 0o600)
	if err := os.Chown(segPath(o, "otheruser"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(segPath(o, "good"), segPath(o, "symlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(segPath(o, "dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		want error
	}{
		{"garbage", ErrNotSegment},
		{"short", ErrTruncated},
		{"truncated", ErrTruncated},
		{"longer", ErrCorrupt},
		{"magic", ErrNotSegment},
		{"major", ErrLayout},
		{"halfinit", ErrInitializing},
		{"badstate", ErrCorrupt},
		{"crc", ErrCorrupt},
		{"worldreadable", ErrMode},
		{"groupwritable", ErrMode},
		{"otheruser", ErrOwner},
		{"symlink", unix.ELOOP},
		{"dir", nil},
		{"missing", os.ErrNotExist},
	}
	for _, c := range cases {
		s, err := Open(o, c.name, 0)
		if err == nil {
			s.Close()
			t.Errorf("%s: opened", c.name)
			continue
		}
		if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	o2 := o
	o2.AllowUIDs = []int{65534}
	s, err := Open(o2, "otheruser", 0)
	if err != nil {
		t.Fatalf("other owner allowed by AllowUIDs: %v", err)
	}
	s.Close()
}

// A process running as another user (a child with real uid and gid 65534)
// can read and write a group-shared segment owned by root, and must still
// refuse it unless root is in its AllowUIDs.
func TestOpenAsAnotherUserIsRefused(t *testing.T) {
	o := testOptions(t)
	o.Group = 65534
	createTest(t, o, "shared")
	for _, p := range []string{o.Base, o.Dir()} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The test binary's own directory is private: run a world-readable copy.
	bin := filepath.Join(o.Base, "shm.test")
	exe, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, allow := range []string{"", "0"} {
		cmd := exec.Command(bin, "-test.run=^$")
		cmd.Env = append(os.Environ(), childRoleEnv+"=open-as-other", childArgsEnv+"="+o.Base+"\x1f"+o.Namespace+"\x1f"+allow)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child (allow %q): %v\n%s", allow, err, out)
		}
		want := "refused: owner\n"
		if allow != "" {
			want = "opened\n"
		}
		if got := string(out); got != want {
			t.Fatalf("child (allow %q) said %q, want %q", allow, got, want)
		}
	}
}

func init() {
	childRoles["open-as-other"] = func(args []string) int {
		o := Options{Base: args[0], Namespace: args[1], Group: 65534}
		if args[2] != "" {
			uid, _ := strconv.Atoi(args[2])
			o.AllowUIDs = []int{uid}
		}
		if os.Geteuid() != 65534 {
			fmt.Printf("child runs as uid %d\n", os.Geteuid())
			return 1
		}
		s, err := Open(o, "shared", 0)
		switch {
		case err == nil:
			s.Close()
			fmt.Print("opened\n")
		case errors.Is(err, ErrOwner):
			fmt.Print("refused: owner\n")
		default:
			fmt.Printf("unexpected: %v\n", err)
		}
		return 0
	}
}

func TestOwnerCheckAgainstChownedFile(t *testing.T) {
	// Root can open anything, so the owner check is what refuses here.
	o := testOptions(t)
	createTest(t, o, "s")
	if err := os.Chown(segPath(o, "s"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(o, "s", 0); !errors.Is(err, ErrOwner) {
		t.Fatalf("chowned segment: %v, want ErrOwner", err)
	}
}

func TestGuardTurnsSIGBUSIntoError(t *testing.T) {
	o := testOptions(t)
	s := createTest(t, o, "shrinks")
	if err := os.Truncate(s.Path(), HeaderPageBytes); err != nil {
		t.Fatal(err)
	}
	err := Guard(func() error {
		faultSink = s.Bytes()[2*HeaderPageBytes+10] // beyond EOF: SIGBUS
		return nil
	})
	if !errors.Is(err, ErrFault) {
		t.Fatalf("read past truncated end: %v, want ErrFault", err)
	}
	// And Open of the truncated file is an error, not a crash.
	if _, err := Open(o, "shrinks", 0); !errors.Is(err, ErrTruncated) {
		t.Fatalf("open truncated: %v", err)
	}
}

func TestCheckName(t *testing.T) {
	for _, n := range []string{"", ".hidden", "a/b", "../x", "a b", string(make([]byte, MaxNameBytes+1))} {
		if CheckName(n) == nil {
			t.Errorf("name %q accepted", n)
		}
	}
	for _, n := range []string{"a", "ticks.ring", "BTC-USD_1.lvc"} {
		if err := CheckName(n); err != nil {
			t.Errorf("name %q: %v", n, err)
		}
	}
}

func TestListAndRemove(t *testing.T) {
	o := testOptions(t)
	createTest(t, o, "b")
	createTest(t, o, "a")
	os.WriteFile(segPath(o, "junk"), []byte("x"), 0o600)
	es, err := List(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 3 || es[0].Name != "a" || es[1].Name != "b" || es[2].Name != "junk" {
		t.Fatalf("list: %+v", es)
	}
	if es[0].Err != nil || es[0].Header.Kind != 7 || es[2].Err == nil {
		t.Fatalf("list entries: %+v", es)
	}
	if err := Remove(o, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(o, "a", 0); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("open after remove: %v", err)
	}
	empty, err := List(Options{Base: o.Base, Namespace: "none"})
	if err != nil || len(empty) != 0 {
		t.Fatalf("missing namespace: %v %v", empty, err)
	}
}

func TestLocksAreReleasedWhenTheHolderDies(t *testing.T) {
	o := testOptions(t)
	s := createTest(t, o, "locked")
	child := startChild(t, "hold-lock", o.Base, o.Namespace, "locked", strconv.Itoa(LockWriter))
	if err := s.TryLock(LockWriter); !errors.Is(err, ErrLocked) {
		t.Fatalf("TryLock while child holds it: %v", err)
	}
	held, err := s.LockHeld(LockWriter)
	if err != nil || !held {
		t.Fatalf("LockHeld = %v, %v", held, err)
	}
	if inUse, err := InUse(s.Path()); err != nil || !inUse {
		t.Fatalf("InUse with child mapping it = %v, %v", inUse, err)
	}
	child.Process.Kill()
	child.Wait()
	if held, _ := s.LockHeld(LockWriter); held {
		t.Fatal("lock still held after the holder was killed")
	}
	if err := s.TryLock(LockWriter); err != nil {
		t.Fatalf("TryLock after holder died: %v", err)
	}
	// Our own locks do not count as "held by another".
	if held, _ := s.LockHeld(LockWriter); held {
		t.Fatal("own lock reported as held by another")
	}
	s.Close()
	if inUse, err := InUse(segPath(o, "locked")); err != nil || inUse {
		t.Fatalf("InUse with nobody mapping = %v, %v", inUse, err)
	}
}

func init() {
	childRoles["hold-lock"] = func(args []string) int {
		s, err := Open(Options{Base: args[0], Namespace: args[1]}, args[2], 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		idx, _ := strconv.Atoi(args[3])
		if err := s.TryLock(idx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Print("ready\n")
		select {}
	}
}

// faultSink keeps the compiler from dropping the faulting read.
var faultSink byte

// Populate, Lock and HugePages are mapping options: the segment must work
// with each. MADV_HUGEPAGE is accepted by the kernel even where the tmpfs
// cannot give huge pages (doc.go), so an error from it is a real failure.
func TestMappingOptions(t *testing.T) {
	o := testOptions(t)
	o.Populate, o.Lock, o.HugePages = true, true, true
	s := createTest(t, o, "opts")
	s.Bytes()[HeaderPageBytes] = 1
	r, err := Open(o, "opts", 7)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Bytes()[HeaderPageBytes] != 1 {
		t.Fatal("populated, locked mapping does not share the write")
	}
}
