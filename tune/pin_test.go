package tune

import (
	"errors"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// The tests lock their goroutine to its thread themselves (LockOSThread nests),
// so checks made after Release still look at the thread Pin acted on.

func TestPinBindsThreadAndReleaseRestores(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	allowed, err := AllowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	if len(allowed) == 0 {
		t.Fatal("no allowed CPUs")
	}
	cpu := allowed[len(allowed)-1]
	p, err := Pin(cpu)
	if err != nil {
		t.Fatal(err)
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	if set.Count() != 1 || !set.IsSet(cpu) {
		t.Fatalf("after Pin(%d) affinity has %d CPUs, cpu set=%v", cpu, set.Count(), set.IsSet(cpu))
	}
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	if set.Count() != len(allowed) {
		t.Fatalf("after Release affinity has %d CPUs, want %d", set.Count(), len(allowed))
	}
	if err := p.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
}

func TestPinRejectsCPUOutsideAllowedSet(t *testing.T) {
	if _, err := Pin(100000); err == nil {
		t.Fatal("Pin(100000) succeeded")
	}
}

func TestSetFIFOValidatesPriorityAndReportsPermission(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	allowed, _ := AllowedCPUs()
	p, err := Pin(allowed[0])
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release()
	if err := p.SetFIFO(0); err == nil {
		t.Fatal("priority 0 accepted")
	}
	if err := p.SetFIFO(100); err == nil {
		t.Fatal("priority 100 accepted")
	}
	err = p.SetFIFO(1)
	switch {
	case err == nil:
		var attr *unix.SchedAttr
		if attr, err = unix.SchedGetAttr(0, 0); err != nil {
			t.Fatal(err)
		}
		if attr.Policy != unix.SCHED_FIFO {
			t.Fatalf("policy %d after SetFIFO, want SCHED_FIFO", attr.Policy)
		}
	case errors.Is(err, ErrRealtimeNotPermitted):
		// Unprivileged: the error must say why, which errors.Is just checked.
	default:
		t.Fatalf("SetFIFO(1): %v", err)
	}
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	attr, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if attr.Policy != schedOther {
		t.Fatalf("policy %d after Release, want SCHED_OTHER", attr.Policy)
	}
}
