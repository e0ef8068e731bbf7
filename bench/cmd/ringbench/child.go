package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapewire/tapewire/bench/internal/harness"
	"github.com/tapewire/tapewire/shm"
)

// Every multi-process workload runs in a fresh base directory on /dev/shm
// (real tmpfs shared memory), removed after the repeat.
func newBase() (shm.Options, func(), error) {
	dir, err := os.MkdirTemp("/dev/shm", "ringbench-")
	if err != nil {
		return shm.Options{}, nil, err
	}
	return shm.Options{Base: dir, Namespace: "b"}, func() { os.RemoveAll(dir) }, nil
}

// kindControl is the shm kind of the small control segment parent and
// children share (start/stop words, the raw floors' words).
const kindControl = 99

// Offsets of the control segment's words, each on its own 128-byte line.
const (
	ctlWord   = shm.HeaderPageBytes       // floors: the ping-pong word
	ctlParked = shm.HeaderPageBytes + 128 // floors: "I am about to sleep"
	ctlStop   = shm.HeaderPageBytes + 256 // parent → children: stop
	ctlWalk   = 2 * shm.HeaderPageBytes   // ring-walk floor: ping region, then pong region
	ctlBytes  = ctlWalk + 2*walkLines*64
)

func createControl(o shm.Options) (*shm.Segment, error) {
	return shm.Create(o, "control", shm.CreateParams{Kind: kindControl, Bytes: ctlBytes}, nil)
}

// newControlBase is newBase plus its control segment; cleanup closes the
// segment and removes the base.
func newControlBase() (shm.Options, *shm.Segment, func(), error) {
	o, cleanup, err := newBase()
	if err != nil {
		return o, nil, nil, err
	}
	ctl, err := createControl(o)
	if err != nil {
		cleanup()
		return o, nil, nil, err
	}
	return o, ctl, func() { ctl.Close(); cleanup() }, nil
}

func openControl(o shm.Options) (*shm.Segment, error) {
	return shm.Open(o, "control", kindControl)
}

// child is a running copy of this program in a role.
type child struct {
	cmd *exec.Cmd
	out *bufio.Scanner
}

// startChild starts role with args and waits (bounded) for its "ready" line.
func startChild(extra []*os.File, role string, args ...string) (*child, error) {
	cmd := harness.Child(role, args...)
	cmd.Stdout = nil
	cmd.ExtraFiles = extra
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, out: bufio.NewScanner(pipe)}
	ok := make(chan bool, 1)
	go func() { ok <- c.out.Scan() && c.out.Text() == "ready" }()
	select {
	case good := <-ok:
		if good {
			return c, nil
		}
	case <-time.After(30 * time.Second):
	}
	c.kill()
	return nil, fmt.Errorf("child %s did not get ready", role)
}

// result reads the child's JSON result line into v and waits for it to exit.
func (c *child) result(v any) error {
	if !c.out.Scan() {
		c.kill()
		return errors.New("child exited without a result")
	}
	if err := json.Unmarshal(c.out.Bytes(), v); err != nil {
		c.kill()
		return fmt.Errorf("child result %q: %w", c.out.Text(), err)
	}
	return c.cmd.Wait()
}

func (c *child) kill() {
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

// Child-side helpers.

func ready() { fmt.Println("ready") }

func report(v any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func argInt(args []string, i int) int {
	v, err := strconv.Atoi(args[i])
	if err != nil {
		fmt.Fprintf(os.Stderr, "ringbench child: argument %d %q: %v\n", i, args[i], err)
		os.Exit(2)
	}
	return v
}

func stopped(ctl *shm.Segment) bool { return atomic.LoadUint32(ctl.Uint32At(ctlStop)) != 0 }

// childRoles maps a role to its main; args are base, namespace, cpu, ....
var childRoles = map[string]func(o shm.Options, cpu int, args []string) error{}

func childMain(role string, args []string) int {
	f := childRoles[role]
	if f == nil || len(args) < 3 {
		fmt.Fprintf(os.Stderr, "ringbench: unknown child role %q or missing arguments %v\n", role, args)
		return 2
	}
	o := shm.Options{Base: args[0], Namespace: args[1]}
	cpu := argInt(args, 2)
	// A child forked from a pinned thread inherits that one CPU: widen the
	// mask again so it can pin itself where it was told to.
	runtime.LockOSThread() // the mask below is per thread: keep this one
	defer runtime.UnlockOSThread()
	var all unix.CPUSet
	for i := 0; i < len(all)*64; i++ { // the kernel keeps the CPUs the cpuset allows
		all.Set(i)
	}
	_ = unix.SchedSetaffinity(0, &all)
	release := harness.Pin(cpu)
	defer release()
	if err := f(o, cpu, args[3:]); err != nil {
		fmt.Fprintf(os.Stderr, "ringbench child %s: %v\n", role, err)
		return 1
	}
	return 0
}

func childArgs(o shm.Options, cpu int, rest ...any) []string {
	a := []string{o.Base, o.Namespace, strconv.Itoa(cpu)}
	for _, r := range rest {
		a = append(a, fmt.Sprint(r))
	}
	return a
}
