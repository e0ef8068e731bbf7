package shm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The test binary re-executes itself as a child process for tests that need a
// second process (locks, liveness, futex across processes). The role is in
// the environment variable childRoleEnv; its arguments in childArgsEnv.
const (
	childRoleEnv = "TAPEWIRE_SHM_TEST_CHILD"
	childArgsEnv = "TAPEWIRE_SHM_TEST_ARGS"
)

var childRoles = map[string]func(args []string) int{}

func TestMain(m *testing.M) {
	if role := os.Getenv(childRoleEnv); role != "" {
		f := childRoles[role]
		if f == nil {
			fmt.Fprintf(os.Stderr, "unknown child role %q\n", role)
			os.Exit(2)
		}
		os.Exit(f(strings.Split(os.Getenv(childArgsEnv), "\x1f")))
	}
	os.Exit(m.Run())
}

// startChild starts the test binary as role with args; the child writes
// "ready\n" to stdout when it has done its setup.
func startChild(t *testing.T, role string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childRoleEnv+"="+role, childArgsEnv+"="+strings.Join(args, "\x1f"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ready := make(chan error, 1)
	go func() {
		buf := make([]byte, 6)
		_, err := out.Read(buf)
		if err == nil && string(buf) != "ready\n" {
			err = fmt.Errorf("child said %q", buf)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("child %s: %v", role, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("child %s not ready after 20s", role)
	}
	return cmd
}

// testOptions returns Options with a fresh base directory on /dev/shm (real
// tmpfs shared memory), removed when the test ends.
func testOptions(t testing.TB) Options {
	t.Helper()
	base, err := os.MkdirTemp("/dev/shm", "tapewire-shm-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	return Options{Base: base, Namespace: "t"}
}

func segPath(o Options, name string) string { return filepath.Join(o.Dir(), name) }
