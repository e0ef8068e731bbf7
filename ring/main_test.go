package ring

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/shm"
)

// Multi-process tests re-execute the test binary as publisher or subscriber
// children; the role and its arguments travel in the environment.
const (
	childRoleEnv = "TAPEWIRE_RING_TEST_CHILD"
	childArgsEnv = "TAPEWIRE_RING_TEST_ARGS"
	argSep       = "\x1f"
)

var childRoles = map[string]func(args []string) int{}

func TestMain(m *testing.M) {
	if role := os.Getenv(childRoleEnv); role != "" {
		f := childRoles[role]
		if f == nil {
			fmt.Fprintf(os.Stderr, "unknown child role %q\n", role)
			os.Exit(2)
		}
		os.Exit(f(strings.Split(os.Getenv(childArgsEnv), argSep)))
	}
	os.Exit(m.Run())
}

// childCmd prepares the test binary as role with args.
func childCmd(role string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childRoleEnv+"="+role, childArgsEnv+"="+strings.Join(args, argSep))
	cmd.Stderr = os.Stderr
	// Children die with the test binary, even when it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// testOptions returns shm options with a fresh base directory on /dev/shm.
func testOptions(t testing.TB) shm.Options {
	t.Helper()
	base, err := os.MkdirTemp("/dev/shm", "tapewire-ring-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	return shm.Options{Base: base, Namespace: "t"}
}

// Test frames carry, after the header, the payload length in bytes 24..28,
// then pseudo-random bytes derived from seq, and end with a CRC-32C of
// everything between: a torn or misdelivered frame fails verifyFrame.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

const testFrameType = schema.TypeTick

// testFrameSize picks a frame size for seq in [minB, maxB].
func testFrameSize(seq uint64, minB, maxB int) int {
	x := seq*0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019
	x ^= x >> 29
	return minB + int(x%uint64(maxB-minB+1))
}

// pattern is the byte source of test payloads (copied, not generated per
// byte, so -race children stay fast).
var pattern = func() []byte {
	b := make([]byte, 1<<16)
	x := uint64(0x9E3779B97F4A7C15)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}()

// fillFrame writes a verifiable payload for seq into frame (header bytes
// 0..24 are left to the publisher): the frame length, pattern bytes chosen
// by seq, and a CRC-32C of them mixed with seq.
func fillFrame(frame []byte, seq uint64) {
	p := frame[schema.HeaderSize:]
	binary.LittleEndian.PutUint32(p[0:4], uint32(len(frame)))
	off := int(seq*131) % (len(pattern) / 2)
	copy(p[4:len(p)-4], pattern[off:])
	binary.LittleEndian.PutUint32(p[len(p)-4:], crc32.Checksum(p[:len(p)-4], crcTable)^uint32(seq))
}

// verifyFrame checks a delivered frame against its own header's seq.
func verifyFrame(frame []byte) (seq uint64, err error) {
	h, err := schema.DecodeHeader(frame)
	if err != nil {
		return 0, err
	}
	if int(h.Length) != len(frame) || h.Type != testFrameType {
		return h.Seq, fmt.Errorf("seq %d: header length %d type %d, frame %d bytes", h.Seq, h.Length, h.Type, len(frame))
	}
	p := frame[schema.HeaderSize:]
	if len(p) < 8 || int(binary.LittleEndian.Uint32(p[0:4])) != len(frame) {
		return h.Seq, fmt.Errorf("seq %d: payload length mismatch", h.Seq)
	}
	if crc32.Checksum(p[:len(p)-4], crcTable)^uint32(h.Seq) != binary.LittleEndian.Uint32(p[len(p)-4:]) {
		return h.Seq, fmt.Errorf("seq %d: payload checksum mismatch (torn or misplaced frame)", h.Seq)
	}
	return h.Seq, nil
}

// publishTestFrame claims, fills and commits one verifiable frame.
func publishTestFrame(p *Publisher, size int) (uint64, error) {
	c, err := p.Claim(size, testFrameType, 0)
	if err != nil {
		return 0, err
	}
	fillFrame(c.Frame(), p.NextSeq())
	return p.Commit(c), nil
}

func waitFor(t testing.TB, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(time.Millisecond)
	}
}

func copyFile(o shm.Options, from, to string) error {
	b, err := os.ReadFile(o.Dir() + "/" + from)
	if err != nil {
		return err
	}
	return os.WriteFile(o.Dir()+"/"+to, b, 0o600)
}
