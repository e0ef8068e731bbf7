package shm

import (
	"os"
	"os/exec"
	"testing"
)

func TestParseStatStartTime(t *testing.T) {
	line := "1234 (a) b) (c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 987654 20 21\n"
	got, err := parseStatStartTime([]byte(line))
	if err != nil || got != 987654 {
		t.Fatalf("got %d, %v", got, err)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 -5 20"} {
		if _, err := parseStatStartTime([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestAliveDistinguishesPidReuse(t *testing.T) {
	me, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	if me.PID != os.Getpid() || me.StartTime == 0 || !Alive(me) {
		t.Fatalf("self %+v not alive", me)
	}
	reused := me
	reused.StartTime++ // same pid, another process
	if Alive(reused) {
		t.Fatal("same pid with another start time reported alive")
	}
	otherBoot := me
	otherBoot.BootID[0] ^= 1
	if Alive(otherBoot) {
		t.Fatal("process from another boot reported alive")
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if Alive(Process{PID: cmd.Process.Pid, StartTime: 1, BootID: me.BootID}) {
		t.Fatal("exited child reported alive")
	}
	if Alive(Process{}) {
		t.Fatal("pid 0 alive")
	}
}

func TestNanotimeIsMonotonic(t *testing.T) {
	a := Nanotime()
	b := Nanotime()
	if b < a || a <= 0 {
		t.Fatalf("nanotime %d then %d", a, b)
	}
	if HeartbeatAge(a) < 0 {
		t.Fatal("negative heartbeat age")
	}
}
