package shm

import (
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

func TestFutexTimesOutAndSkipsOnChangedValue(t *testing.T) {
	o := testOptions(t)
	s := createTest(t, o, "futex")
	w := s.Uint32At(HeaderPageBytes)
	start := time.Now()
	timedOut, err := FutexWait(w, 0, 20*time.Millisecond)
	if err != nil || !timedOut {
		t.Fatalf("wait on unchanged word: timedOut=%v err=%v", timedOut, err)
	}
	if el := time.Since(start); el < 15*time.Millisecond {
		t.Fatalf("timed out after %v, want ~20ms", el)
	}
	timedOut, err = FutexWait(w, 1, time.Second) // value is 0, not 1: returns at once
	if err != nil || timedOut {
		t.Fatalf("wait on changed value: timedOut=%v err=%v", timedOut, err)
	}
}

// A waiter in another process is woken by FutexWake on the shared word: this
// fails if the private flag were used (the kernel would key the queue on our
// address space).
func TestFutexWakesAnotherProcess(t *testing.T) {
	o := testOptions(t)
	s := createTest(t, o, "futex2")
	word := s.Uint32At(HeaderPageBytes)
	ack := s.Uint32At(HeaderPageBytes + 64)
	child := startChild(t, "futex-waiter", o.Base, o.Namespace, "futex2")
	for i := uint32(1); i <= 20; i++ {
		// Wait until the child is asleep on the word (it counts itself in ack
		// before sleeping), then change the word and wake it.
		deadline := time.Now().Add(10 * time.Second)
		for atomic.LoadUint32(ack) != 2*i-1 {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: child did not park (ack %d)", i, atomic.LoadUint32(ack))
			}
			time.Sleep(100 * time.Microsecond)
		}
		time.Sleep(time.Millisecond) // let it enter the kernel
		atomic.StoreUint32(word, i)
		if _, err := FutexWake(word, 1); err != nil {
			t.Fatal(err)
		}
		for atomic.LoadUint32(ack) < 2*i {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: child not woken", i)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	if err := child.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}

func init() {
	childRoles["futex-waiter"] = func(args []string) int {
		s, err := Open(Options{Base: args[0], Namespace: args[1]}, args[2], 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		word := s.Uint32At(HeaderPageBytes)
		ack := s.Uint32At(HeaderPageBytes + 64)
		fmt.Print("ready\n")
		for i := uint32(1); i <= 20; i++ {
			atomic.AddUint32(ack, 1)
			for atomic.LoadUint32(word) != i {
				// A long timeout: the test fails by its own deadline if the
				// wake never arrives.
				if timedOut, err := FutexWait(word, i-1, 30*time.Second); err != nil || timedOut {
					fmt.Fprintln(os.Stderr, "futex wait:", timedOut, err, strconv.Itoa(int(i)))
					return 1
				}
			}
			atomic.AddUint32(ack, 1)
		}
		return 0
	}
}

func TestFutexWakeWithNoWaiters(t *testing.T) {
	o := testOptions(t)
	s := createTest(t, o, "futex3")
	n, err := FutexWake(s.Uint32At(HeaderPageBytes), 10)
	if err != nil || n != 0 {
		t.Fatalf("wake with nobody waiting: %d, %v", n, err)
	}
}

func TestPauseAndYieldReturn(t *testing.T) {
	Pause()
	PauseN(100)
	PauseN(0)
	Yield()
}
