package wal

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tapewire/tapewire/vfs"
)

const killChildEnv = "TAPEWIRE_WAL_KILL_CHILD"

func killOptions() Options {
	return Options{FS: vfs.Default, SegmentSizeBytes: 1 << 20, MaxGroupBytes: 64 << 10, MaxInFlightFrames: 4}
}

// TestKill9Child is the child of TestKill9Loop: it appends from 8 writers
// and prints "lsn writer n" for each record only after Append returned.
func TestKill9Child(t *testing.T) {
	dir := os.Getenv(killChildEnv)
	if dir == "" {
		t.Skip("helper process of TestKill9Loop: runs only with " + killChildEnv + " set")
	}
	run, _ := strconv.Atoi(os.Getenv(killChildEnv + "_RUN"))
	l, err := Open(dir, killOptions())
	if err != nil {
		fmt.Fprintf(os.Stdout, "open-error %v\n", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			writer := run*8 + w
			for n := 0; ; n++ {
				lsn, err := l.Append(context.Background(), []Record{{Type: uint16(writer), Payload: payloadFor(writer, n)}})
				if err != nil {
					fmt.Fprintf(os.Stdout, "append-error %v\n", err)
					os.Exit(4)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "%d %d %d\n", lsn, writer, n)
				mu.Unlock()
				if w == 0 && n%50 == 49 && lsn > 300 {
					// Exercise truncation and segment recycling: announce
					// the point first, since a kill may land inside.
					mu.Lock()
					fmt.Fprintf(os.Stdout, "trunc %d\n", lsn-300)
					mu.Unlock()
					if err := l.TruncateBefore(lsn - 300); err != nil {
						fmt.Fprintf(os.Stdout, "truncate-error %v\n", err)
						os.Exit(5)
					}
				}
			}
		}()
	}
	wg.Wait()
}

// TestKill9Loop kills a process that appends with concurrent writers at
// random moments, on ext4, and checks after each kill that every LSN the
// child reported acknowledged is in the log with its payload.
func TestKill9Loop(t *testing.T) {
	kills := 12
	if long() {
		kills = 120
	}
	dir := ext4Dir(t)
	type ack struct{ writer, n int }
	acked := map[LSN]ack{}
	var truncated LSN // acknowledged LSNs below it may have been truncated away
	total := 0
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for run := range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$", "-test.count=1")
		cmd.Env = append(os.Environ(), killChildEnv+"="+dir, killChildEnv+"_RUN="+strconv.Itoa(run))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Let it run until it has acknowledged something, then a while more.
		first := true
		var deadline <-chan time.Time
		killed := false
		for line := range lines {
			var lsn, w, n int
			if _, err := fmt.Sscanf(line, "trunc %d", &lsn); err == nil {
				truncated = max(truncated, LSN(lsn))
				continue
			}
			if _, err := fmt.Sscanf(line, "%d %d %d", &lsn, &w, &n); err != nil {
				if !killed {
					t.Fatalf("run %d: child said %q", run, line)
				}
				continue // a line cut by the kill
			}
			acked[LSN(lsn)] = ack{w, n}
			total++
			if first {
				first = false
				deadline = time.After(time.Duration(5+rng.IntN(120)) * time.Millisecond)
			}
			select {
			case <-deadline:
				if !killed {
					_ = cmd.Process.Kill() // SIGKILL
					killed = true
				}
			default:
			}
		}
		_ = cmd.Wait()
		if !killed {
			t.Fatalf("run %d: child exited on its own", run)
		}
		rep, err := Inspect(vfs.Default, dir)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Decision.Verdict == Corrupt {
			t.Fatalf("run %d: log after kill -9 classified corrupt: %v", run, rep.Err())
		}
		if rep.FirstLSN > max(truncated, 1) {
			t.Fatalf("run %d: log starts at LSN %d, but truncation was only ever asked below %d", run, rep.FirstLSN, truncated)
		}
		r, err := rep.NewReader(vfs.Default, rep.FirstLSN)
		if err != nil {
			t.Fatal(err)
		}
		for lsn := range acked {
			if lsn < rep.FirstLSN {
				delete(acked, lsn) // truncated by the child, as announced
			}
		}
		found := 0
		for _, rec := range readAll(t, r) {
			if a, ok := acked[rec.LSN]; ok {
				if int(rec.Type) != a.writer || string(rec.Payload) != string(payloadFor(a.writer, a.n)) {
					t.Fatalf("run %d: LSN %d holds another record than acknowledged", run, rec.LSN)
				}
				found++
			}
		}
		r.Close()
		if found != len(acked) {
			t.Fatalf("run %d: %d of %d acknowledged records found after kill -9 (log ends at %d, %s)", run, found, len(acked), rep.LastLSN, rep.Decision.Verdict)
		}
	}
	t.Logf("%d kills, %d acknowledged records verified after the last (log from LSN %d), %d acknowledged in all", kills, len(acked), truncated, total)
}
