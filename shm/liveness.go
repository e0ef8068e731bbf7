package shm

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
	_ "unsafe" // for go:linkname
)

// Process identifies a process across pid reuse: a pid names a process only
// together with its start time (clock ticks after boot) on one boot.
type Process struct {
	PID       int
	StartTime uint64
	BootID    [16]byte
}

var (
	selfOnce sync.Once
	self     Process
	selfErr  error
)

// Self returns the calling process's identity. It reads /proc once.
func Self() (Process, error) {
	selfOnce.Do(func() {
		pid := os.Getpid()
		start, err := StartTime(pid)
		if err != nil {
			selfErr = err
			return
		}
		boot, err := BootID()
		if err != nil {
			selfErr = err
			return
		}
		self = Process{PID: pid, StartTime: start, BootID: boot}
	})
	return self, selfErr
}

// errNoProcess reports that /proc has no such pid.
var errNoProcess = errors.New("no such process")

// StartTime returns the start time of pid in clock ticks after boot (field 22
// of /proc/PID/stat).
func StartTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("start time of pid %d: %w", pid, errNoProcess)
		}
		return 0, fmt.Errorf("start time of pid %d: %w", pid, err)
	}
	return parseStatStartTime(b)
}

// parseStatStartTime extracts field 22 from a /proc/PID/stat line. The command
// name (field 2) is in parentheses and may itself hold spaces and parentheses,
// so fields are counted from the last ')'.
func parseStatStartTime(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no ')' after the command name")
	}
	fields := bytes.Fields(b[i+1:])
	// fields[0] is field 3 (state); field 22 is fields[19].
	if len(fields) < 20 {
		return 0, fmt.Errorf("/proc stat: %d fields after the command name, need 20", len(fields))
	}
	v, err := strconv.ParseUint(string(fields[19]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc stat: start time %q: %w", fields[19], err)
	}
	return v, nil
}

// BootID returns this boot's id (/proc/sys/kernel/random/boot_id).
func BootID() ([16]byte, error) {
	var id [16]byte
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return id, fmt.Errorf("read boot id: %w", err)
	}
	hexDigits := bytes.ReplaceAll(bytes.TrimSpace(b), []byte("-"), nil)
	if len(hexDigits) != 32 {
		return id, fmt.Errorf("boot id %q: want 32 hex digits", b)
	}
	if _, err := hex.Decode(id[:], hexDigits); err != nil {
		return id, fmt.Errorf("boot id %q: %w", b, err)
	}
	return id, nil
}

// Alive reports whether p is still running: same boot, pid present, same
// start time. A recycled pid has another start time, so it is not p.
func Alive(p Process) bool {
	if p.PID <= 0 {
		return false
	}
	boot, err := BootID()
	if err != nil || boot != p.BootID {
		return false
	}
	start, err := StartTime(p.PID)
	if err != nil {
		return false
	}
	return start == p.StartTime
}

// Nanotime returns CLOCK_MONOTONIC in nanoseconds, the same clock in every
// process of a host, so heartbeats written by one process can be aged by
// another. It reads the clock through the vDSO without allocating.
func Nanotime() int64 { return nanotime() }

//go:linkname nanotime runtime.nanotime
func nanotime() int64

// HeartbeatAge returns how long ago a heartbeat written with Nanotime was.
func HeartbeatAge(heartbeatNs int64) time.Duration {
	return time.Duration(Nanotime() - heartbeatNs)
}
