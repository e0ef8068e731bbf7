package tune

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// AllowedCPUs returns the CPUs this process may run on (its affinity mask),
// in ascending order.
func AllowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("read CPU affinity: %w", err)
	}
	cpus := make([]int, 0, set.Count())
	for cpu := 0; cpu < len(set)*64; cpu++ {
		if set.IsSet(cpu) {
			cpus = append(cpus, cpu)
		}
	}
	return cpus, nil
}

// Pinned is a goroutine locked to its OS thread and that thread bound to one
// CPU. Release restores the thread's previous affinity and unlocks it.
type Pinned struct {
	CPU      int
	previous unix.CPUSet
	fifo     bool
	released bool
}

// Pin locks the calling goroutine to its OS thread and binds that thread to
// cpu. The cpu must be in AllowedCPUs; otherwise the error names the CPU and
// the allowed set.
func Pin(cpu int) (*Pinned, error) {
	allowed, err := AllowedCPUs()
	if err != nil {
		return nil, err
	}
	ok := false
	for _, c := range allowed {
		ok = ok || c == cpu
	}
	if !ok {
		return nil, fmt.Errorf("pin to CPU %d: not in this process's allowed CPUs %v", cpu, allowed)
	}
	runtime.LockOSThread()
	p := &Pinned{CPU: cpu}
	if err := unix.SchedGetaffinity(0, &p.previous); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("pin to CPU %d: read affinity: %w", cpu, err)
	}
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("pin to CPU %d: %w", cpu, err)
	}
	return p, nil
}

// ErrRealtimeNotPermitted is returned (wrapped) by SetFIFO when the process
// lacks CAP_SYS_NICE or an RLIMIT_RTPRIO high enough for the priority.
var ErrRealtimeNotPermitted = errors.New("SCHED_FIFO not permitted: needs CAP_SYS_NICE or RLIMIT_RTPRIO >= the priority")

// Maximum SCHED_FIFO priority accepted by SetFIFO; Linux allows 1..99.
const (
	minFIFOPriority = 1
	maxFIFOPriority = 99
)

// SetFIFO switches the pinned thread to SCHED_FIFO at the given priority
// (1..99). A FIFO thread that never blocks starves everything else on its CPU,
// so only use it on a CPU reserved for the hot path.
func (p *Pinned) SetFIFO(priority int) error {
	if priority < minFIFOPriority || priority > maxFIFOPriority {
		return fmt.Errorf("SCHED_FIFO priority %d: must be in %d..%d", priority, minFIFOPriority, maxFIFOPriority)
	}
	if err := setScheduler(unix.SCHED_FIFO, priority); err != nil {
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("SCHED_FIFO priority %d on CPU %d: %w", priority, p.CPU, ErrRealtimeNotPermitted)
		}
		return fmt.Errorf("SCHED_FIFO priority %d on CPU %d: %w", priority, p.CPU, err)
	}
	p.fifo = true
	return nil
}

// Release undoes Pin (and SetFIFO) on the calling goroutine. It must run on
// the goroutine that called Pin; calling it twice is harmless.
func (p *Pinned) Release() error {
	if p.released {
		return nil
	}
	p.released = true
	var err error
	if p.fifo {
		if e := setScheduler(schedOther, 0); e != nil {
			err = fmt.Errorf("restore SCHED_OTHER: %w", e)
		}
	}
	if e := unix.SchedSetaffinity(0, &p.previous); e != nil && err == nil {
		err = fmt.Errorf("restore CPU affinity: %w", e)
	}
	runtime.UnlockOSThread()
	return err
}

// schedOther is Linux's default time-sharing policy (SCHED_OTHER).
const schedOther = 0

// setScheduler sets the calling thread's scheduling policy (sched_setattr(2)).
func setScheduler(policy, priority int) error {
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: uint32(policy), Priority: uint32(priority)}
	return unix.SchedSetAttr(0, &attr, 0)
}
