package ring

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tapewire/tapewire/shm"
)

// Frame counts of the multi-process stress test: the normal run keeps the
// package under ~90 s with -race on 2 cores; TAPEWIRE_LONG=1 runs the 10 M
// frames the issue asks for.
func stressFrames() int {
	if os.Getenv("TAPEWIRE_LONG") == "1" {
		return 10_000_000
	}
	return 1_000_000
}

// subStats is what a subscriber child reports on stdout, one JSON line.
type subStats struct {
	Received   uint64 `json:"received"`
	First      uint64 `json:"first"`
	Last       uint64 `json:"last"`
	LossFrames uint64 `json:"loss_frames"`
	Laps       uint64 `json:"laps"`
	GoneEvents int    `json:"gone_events"`
	// GoneUnixNs is when the subscriber first saw ErrPublisherGone.
	GoneUnixNs int64  `json:"gone_unix_ns"`
	Error      string `json:"error,omitempty"`
}

func init() {
	// sub: base ns topic frames stallEvery
	// Subscribes, verifies every frame (checksum, strictly increasing seq;
	// gapless in a reliable topic), until it saw seq frames-1 or the
	// publisher closed with nothing left. stallEvery > 0 sleeps 2 ms every
	// that many frames, so a lossy subscriber is lapped.
	childRoles["sub"] = func(args []string) int {
		o := shm.Options{Base: args[0], Namespace: args[1]}
		frames, _ := strconv.ParseUint(args[3], 10, 64)
		stallEvery, _ := strconv.ParseUint(args[4], 10, 64)
		sub, err := OpenSubscriber(o, args[2], SubscriberOptions{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "sub:", err)
			return 1
		}
		fmt.Println("ready")
		st := subStats{}
		reliable := sub.Log().Mode() == Reliable
		var verr error
		h := func(f []byte, pos uint64) {
			if verr != nil {
				return
			}
			seq, err := verifyFrame(f)
			switch {
			case err != nil:
				verr = fmt.Errorf("at position %d: %w", pos, err)
			case st.Received == 0:
				st.First = seq
				if reliable && seq != 0 {
					verr = fmt.Errorf("first frame seq %d, want 0", seq)
				}
			case seq <= st.Last:
				verr = fmt.Errorf("seq %d after %d: out of order", seq, st.Last)
			case reliable && seq != st.Last+1:
				verr = fmt.Errorf("seq %d after %d: gap in a reliable topic", seq, st.Last)
			}
			st.Last = seq
			st.Received++
			if stallEvery > 0 && st.Received%stallEvery == 0 {
				time.Sleep(2 * time.Millisecond)
			}
		}
		for verr == nil && (st.Received == 0 || st.Last < frames-1) {
			n, err := sub.Poll(h, 256)
			if err != nil {
				verr = err
				break
			}
			if n > 0 {
				continue
			}
			err = sub.Wait(5 * time.Second)
			if errors.Is(err, ErrPublisherGone) {
				if st.GoneEvents == 0 {
					st.GoneUnixNs = time.Now().UnixNano()
				}
				st.GoneEvents++
				if st.Received > 0 && strings.Contains(err.Error(), "closed") && !sub.ready() {
					break // the publisher finished
				}
				if time.Duration(time.Now().UnixNano()-st.GoneUnixNs) > 60*time.Second {
					verr = fmt.Errorf("no publisher for 60 s: %w", err)
					break
				}
				time.Sleep(time.Millisecond)
				continue
			}
			if err != nil {
				verr = err
			}
		}
		st.LossFrames, _, st.Laps = sub.Loss()
		if verr != nil {
			st.Error = verr.Error()
		}
		b, _ := json.Marshal(st)
		fmt.Println(string(b))
		sub.Close()
		return 0
	}
	// pub: base ns frames topic... — publishes frames verifiable frames of
	// random sizes to every topic (ClaimBatch of 1..8 frames), then closes.
	childRoles["pub"] = func(args []string) int {
		o := shm.Options{Base: args[0], Namespace: args[1]}
		frames, _ := strconv.ParseUint(args[2], 10, 64)
		var pubs []*Publisher
		for _, topic := range args[3:] {
			p, err := OpenPublisher(o, topic, PublisherOptions{BackPressureTimeout: 30 * time.Second})
			if err != nil {
				fmt.Fprintln(os.Stderr, "pub:", err)
				return 1
			}
			pubs = append(pubs, p)
		}
		fmt.Println("ready")
		var sizes [8]int
		var claims [8]Claim
		for seq := uint64(0); seq < frames; {
			batch := int(seq%8) + 1
			if rem := frames - seq; uint64(batch) > rem {
				batch = int(rem)
			}
			for i := 0; i < batch; i++ {
				sizes[i] = testFrameSize(seq+uint64(i), 40, 600)
			}
			for _, p := range pubs {
				if err := p.ClaimBatch(sizes[:batch], testFrameType, 0, claims[:batch]); err != nil {
					fmt.Fprintln(os.Stderr, "pub: claim:", err)
					return 1
				}
				for i := 0; i < batch; i++ {
					fillFrame(claims[i].Frame(), p.NextSeq()+uint64(i))
				}
				p.CommitBatch(claims[:batch])
			}
			seq += uint64(batch)
		}
		for _, p := range pubs {
			p.Close()
		}
		return 0
	}
}

// startChildReady starts cmd and waits for its "ready" line; the returned
// scanner reads the rest of its stdout.
func startChildReady(t *testing.T, cmd *exec.Cmd) *bufio.Scanner {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	sc := bufio.NewScanner(out)
	ready := make(chan bool, 1)
	go func() { ready <- sc.Scan() && sc.Text() == "ready" }()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("child %v did not say ready", cmd.Args)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("child %v not ready in 30 s", cmd.Args)
	}
	return sc
}

func readStats(t *testing.T, name string, sc *bufio.Scanner) subStats {
	t.Helper()
	var st subStats
	if !sc.Scan() {
		t.Fatalf("%s: no stats line", name)
	}
	if err := json.Unmarshal(sc.Bytes(), &st); err != nil {
		t.Fatalf("%s: stats %q: %v", name, sc.Text(), err)
	}
	return st
}

// One publisher process, two reliable and two lossy subscriber processes,
// frames of random sizes (40..600 B, batches of 1..8) through 64 KiB rings:
// thousands of wraps. Reliable subscribers must see every frame in order
// with a valid checksum; lossy subscribers (one of them stalling to be
// lapped) in-order valid frames with exact loss accounting.
func TestMultiProcessStress(t *testing.T) {
	frames := stressFrames()
	o := testOptions(t)
	for _, c := range []struct {
		topic string
		mode  Mode
	}{{"rel", Reliable}, {"lossy", Lossy}} {
		p, err := CreateLog(o, c.topic, LogConfig{CapacityBytes: 64 << 10, Mode: c.mode}, PublisherOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
	}
	type child struct {
		name string
		cmd  *exec.Cmd
		sc   *bufio.Scanner
	}
	var subs []child
	for i, spec := range []struct{ topic, stall string }{{"rel", "0"}, {"rel", "50000"}, {"lossy", "0"}, {"lossy", "20000"}} {
		cmd := childCmd("sub", o.Base, o.Namespace, spec.topic, strconv.Itoa(frames), spec.stall)
		subs = append(subs, child{fmt.Sprintf("sub%d-%s", i, spec.topic), cmd, startChildReady(t, cmd)})
	}
	start := time.Now()
	pub := childCmd("pub", o.Base, o.Namespace, strconv.Itoa(frames), "rel", "lossy")
	startChildReady(t, pub)
	if err := pub.Wait(); err != nil {
		t.Fatalf("publisher: %v", err)
	}
	for _, s := range subs {
		st := readStats(t, s.name, s.sc)
		if err := s.cmd.Wait(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if st.Error != "" {
			t.Fatalf("%s: %s (stats %+v)", s.name, st.Error, st)
		}
		if strings.HasSuffix(s.name, "rel") {
			if st.Received != uint64(frames) || st.First != 0 || st.Last != uint64(frames-1) || st.LossFrames != 0 {
				t.Fatalf("%s: reliable subscriber %+v, want all %d frames", s.name, st, frames)
			}
			continue
		}
		if st.Received+st.LossFrames != st.Last-st.First+1 {
			t.Fatalf("%s: received %d + lost %d != span %d..%d", s.name, st.Received, st.LossFrames, st.First, st.Last)
		}
		t.Logf("%s: received %d, lost %d in %d laps", s.name, st.Received, st.LossFrames, st.Laps)
	}
	lg, err := OpenLog(o, "rel")
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	wraps := lg.Published() / lg.Capacity()
	if lg.PublishedFrames() != uint64(frames) || wraps < 1000 {
		t.Fatalf("published %d frames, %d wraps", lg.PublishedFrames(), wraps)
	}
	t.Logf("%d frames to 2 topics x 2 subscribers in %v, %d wraps", frames, time.Since(start).Round(time.Millisecond), wraps)
}

func init() {
	// pub-hang: base ns topic frames — publishes frames frames, then claims
	// one more, writes half of it, says "claimed" and hangs until killed.
	childRoles["pub-hang"] = func(args []string) int {
		o := shm.Options{Base: args[0], Namespace: args[1]}
		frames, _ := strconv.ParseUint(args[3], 10, 64)
		p, err := OpenPublisher(o, args[2], PublisherOptions{BackPressureTimeout: 30 * time.Second})
		if err != nil {
			fmt.Fprintln(os.Stderr, "pub-hang:", err)
			return 1
		}
		fmt.Println("ready")
		for seq := uint64(0); seq < frames; seq++ {
			if _, err := publishTestFrame(p, testFrameSize(seq, 40, 300)); err != nil {
				fmt.Fprintln(os.Stderr, "pub-hang:", err)
				return 1
			}
		}
		c, err := p.Claim(200, testFrameType, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "pub-hang: claim:", err)
			return 1
		}
		copy(c.Payload()[:50], pattern)
		fmt.Println("claimed")
		// Hang until killed. Not select{}: with no other goroutine the
		// runtime reports a deadlock and exits (only the race detector's
		// runtime hid that), releasing the lock the test needs held.
		for {
			time.Sleep(time.Hour)
		}
	}
}

// kill -9 of the publisher while it holds a claim: subscribers must notice
// within a bounded time (the claim is padded over, state "dead" visible),
// and a new publisher must take over so they receive the rest, gapless.
func TestKillPublisherMidClaim(t *testing.T) {
	o := testOptions(t)
	p, err := CreateLog(o, "k", LogConfig{CapacityBytes: 16 << 10, Mode: Reliable}, PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	const before, after = 5000, 3000
	var subs []*exec.Cmd
	var scs []*bufio.Scanner
	for i := 0; i < 2; i++ {
		cmd := childCmd("sub", o.Base, o.Namespace, "k", strconv.Itoa(before+after), "0")
		subs = append(subs, cmd)
		scs = append(scs, startChildReady(t, cmd))
	}
	hang := childCmd("pub-hang", o.Base, o.Namespace, "k", strconv.Itoa(before))
	sc := startChildReady(t, hang)
	if !sc.Scan() || sc.Text() != "claimed" {
		t.Fatalf("publisher did not claim: %q", sc.Text())
	}
	killed := time.Now()
	if err := hang.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	hang.Wait()
	lg, err := OpenLog(o, "k")
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	// A subscriber repairs the topic: bounded time, visible to tools.
	waitFor(t, "topic marked dead after kill -9", 3*time.Second, func() bool {
		return lg.Publisher().State == PublisherDead
	})
	// Both subscribers get past the dead claim: their positions reach the
	// published position.
	waitFor(t, "subscribers past the abandoned claim", 3*time.Second, func() bool {
		for _, si := range lg.Subscribers() {
			if si.Status == SlotActive && si.Position != lg.Published() {
				return false
			}
		}
		return true
	})
	repairTime := time.Since(killed)
	if info := lg.Publisher(); info.AbandonedClaims != 1 || info.Alive {
		t.Fatalf("publisher record after repair: %+v", info)
	}
	if lg.Tail() != lg.Published() {
		t.Fatalf("tail %d != published %d after repair", lg.Tail(), lg.Published())
	}
	// A new publisher continues the sequence.
	np, err := OpenPublisher(o, "k", PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if np.NextSeq() != before {
		t.Fatalf("new publisher starts at seq %d, want %d", np.NextSeq(), before)
	}
	for seq := uint64(before); seq < before+after; seq++ {
		if _, err := publishTestFrame(np, testFrameSize(seq, 40, 300)); err != nil {
			t.Fatal(err)
		}
	}
	np.Close()
	for i, cmd := range subs {
		st := readStats(t, "sub", scs[i])
		cmd.Wait()
		if st.Error != "" || st.Received != before+after || st.Last != before+after-1 {
			t.Fatalf("subscriber %d: %+v", i, st)
		}
		if st.GoneEvents > 0 {
			if d := time.Duration(st.GoneUnixNs - killed.UnixNano()); d > 3*time.Second {
				t.Fatalf("subscriber %d reported the dead publisher after %v, bound 3s", i, d)
			}
		}
	}
	t.Logf("subscribers past the dead claim %v after kill -9", repairTime.Round(time.Millisecond))
}

func init() {
	// sub-stall: base ns topic — registers, reads 10 frames, then stops
	// polling (alive but stuck) until killed.
	childRoles["sub-stall"] = func(args []string) int {
		o := shm.Options{Base: args[0], Namespace: args[1]}
		sub, err := OpenSubscriber(o, args[2], SubscriberOptions{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "sub-stall:", err)
			return 1
		}
		fmt.Println("ready")
		got := 0
		for got < 10 {
			n, err := sub.Poll(func([]byte, uint64) {}, 10-got)
			if err != nil {
				fmt.Fprintln(os.Stderr, "sub-stall:", err)
				return 1
			}
			got += n
			if n == 0 {
				sub.Wait(time.Second)
			}
		}
		fmt.Println("stalled")
		for { // until killed; not select{} (see pub-hang)
			time.Sleep(time.Hour)
		}
	}
}

// kill -9 of a reliable subscriber that blocks the publisher: the publisher
// evicts it (its slot lock is gone) and goes on within a bounded time; the
// other subscriber process gets everything.
func TestKillReliableSubscriber(t *testing.T) {
	o := testOptions(t)
	pub, err := CreateLog(o, "ks", LogConfig{CapacityBytes: 16 << 10, Mode: Reliable}, PublisherOptions{BackPressureTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	const frames = 20000
	good := childCmd("sub", o.Base, o.Namespace, "ks", strconv.Itoa(frames), "0")
	goodSc := startChildReady(t, good)
	stall := childCmd("sub-stall", o.Base, o.Namespace, "ks")
	stallSc := startChildReady(t, stall)
	var published atomic.Int64
	done := make(chan error, 1)
	go func() {
		for seq := uint64(0); seq < frames; seq++ {
			if _, err := publishTestFrame(pub, testFrameSize(seq, 40, 300)); err != nil {
				done <- fmt.Errorf("frame %d: %w", seq, err)
				return
			}
			published.Add(1)
		}
		done <- nil
	}()
	if !stallSc.Scan() || stallSc.Text() != "stalled" {
		t.Fatal("stalling subscriber did not stall")
	}
	// The staller fills the 16 KiB ring: the publisher blocks.
	waitFor(t, "publisher blocked by the stalled subscriber", 10*time.Second, func() bool {
		before := published.Load()
		time.Sleep(100 * time.Millisecond)
		return published.Load() == before && before < frames
	})
	blockedAt := published.Load()
	killedAt := time.Now()
	stall.Process.Signal(syscall.SIGKILL)
	waitFor(t, "publisher resumes after the kill", 2*time.Second, func() bool { return published.Load() > blockedAt })
	resumedAfter := time.Since(killedAt)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := readStats(t, "good", goodSc)
	good.Wait()
	if st.Error != "" || st.Received != frames {
		t.Fatalf("surviving subscriber: %+v", st)
	}
	info := pub.Log().Publisher()
	if info.Evictions != 1 {
		t.Fatalf("evictions %d, want 1", info.Evictions)
	}
	t.Logf("publisher blocked at frame %d resumed %v after kill -9 of the staller; evictions %d", blockedAt, resumedAfter.Round(time.Microsecond), info.Evictions)
}
