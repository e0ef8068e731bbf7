package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Multi-process tests re-execute the test binary in a role: a node (the
// appliance process the kill loop kills) or a load generator (the producer
// process).
const (
	childRoleEnv   = "TAPEWIRE_APPLIANCE_TEST_CHILD"
	childConfigEnv = "TAPEWIRE_APPLIANCE_TEST_CONFIG" // node: config file; loadgen: JSON of LoadGenConfig
	childOutEnv    = "TAPEWIRE_APPLIANCE_TEST_OUT"    // node: file receiving the admin address; loadgen: stats JSON
	childAckedEnv  = "TAPEWIRE_APPLIANCE_TEST_ACKED"  // loadgen: acked log
	// node: when set, the event-log backfill stops after its first group
	// until the node stops (fault injection: a kill lands in the middle).
	childHoldBackfillEnv = "TAPEWIRE_APPLIANCE_TEST_HOLD_BACKFILL"
)

func runChildRole(role string) int {
	var err error
	switch role {
	case "node":
		err = childNode()
	case "loadgen":
		err = childLoadGen()
	default:
		err = fmt.Errorf("unknown child role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "child %s: %v\n", role, err)
		return 1
	}
	return 0
}

// childNode runs a node until SIGTERM (graceful) or SIGKILL.
func childNode() error {
	cfg, err := LoadConfig(os.Getenv(childConfigEnv))
	if err != nil {
		return err
	}
	if os.Getenv(childHoldBackfillEnv) != "" {
		backfillGroupHook = func(_ int, stop <-chan struct{}) error { <-stop; return nil }
	}
	n, err := Open(cfg, Options{Log: os.Stderr})
	if err != nil {
		return err
	}
	if err := n.Start(); err != nil {
		n.Close()
		return err
	}
	out := os.Getenv(childOutEnv)
	if err := os.WriteFile(out+".tmp", []byte(n.AdminAddr()), 0o644); err != nil {
		return err
	}
	if err := os.Rename(out+".tmp", out); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return n.Run(ctx)
}

func childLoadGen() error {
	var cfg LoadGenConfig
	if err := json.Unmarshal([]byte(os.Getenv(childConfigEnv)), &cfg); err != nil {
		return err
	}
	f, err := os.OpenFile(os.Getenv(childAckedEnv), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cfg.AckedLog = f
	cfg.Log = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	st, err := RunLoadGen(ctx, cfg)
	b, _ := json.Marshal(st)
	if werr := os.WriteFile(os.Getenv(childOutEnv), b, 0o644); werr != nil && err == nil {
		err = werr
	}
	return err
}

// child is a running child process.
type child struct {
	t      testing.TB
	cmd    *exec.Cmd
	out    string
	exited chan error
	stderr *logBuffer
}

func startChild(t testing.TB, role, config, out string, extraEnv ...string) *child {
	t.Helper()
	os.Remove(out)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childRoleEnv+"="+role, childConfigEnv+"="+config, childOutEnv+"="+out)
	cmd.Env = append(cmd.Env, extraEnv...)
	c := &child{t: t, cmd: cmd, out: out, exited: make(chan error, 1), stderr: &logBuffer{tb: t}}
	cmd.Stderr = c.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.exited
		c.exited <- nil
	})
	return c
}

// waitReady waits for a node child's admin address.
func (c *child) waitReady(timeout time.Duration) string {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(c.out); err == nil && len(b) > 0 {
			return "http://" + string(b)
		}
		select {
		case err := <-c.exited:
			c.exited <- err
			c.t.Fatalf("child exited before it was ready: %v\n%s", err, c.stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
	c.t.Fatalf("child not ready within %v\n%s", timeout, c.stderr)
	return ""
}

func (c *child) kill9() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	err := <-c.exited
	c.exited <- err
}

// stop sends SIGTERM and waits for a clean exit.
func (c *child) stop(timeout time.Duration) {
	c.t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.exited:
		c.exited <- err
		if err != nil {
			c.t.Fatalf("child exit: %v\n%s", err, c.stderr)
		}
	case <-time.After(timeout):
		c.t.Fatalf("child did not stop within %v\n%s", timeout, c.stderr)
	}
}

func writeConfig(t testing.TB, cfg Config) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tapewire.toml")
	if err := os.WriteFile(path, []byte(cfg.TOML()), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// readAcked reads the complete lines of an acked log.
func readAcked(t testing.TB, path string) []uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	text := string(b)
	if i := strings.LastIndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	} else {
		text = ""
	}
	var out []uint64
	for _, line := range strings.Split(text, "\n") {
		if line == "" {
			continue
		}
		var v uint64
		if _, err := fmt.Sscan(line, &v); err != nil {
			t.Fatalf("acked log line %q: %v", line, err)
		}
		out = append(out, v)
	}
	return out
}
