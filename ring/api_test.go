package ring

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/shm"
)

// A topic created with FirstSeq numbers its first frame FirstSeq, reports it
// as the next sequence number before any commit (to a publisher that
// attaches later too), and counts on from there.
func TestFirstSeqContinuesTheSequence(t *testing.T) {
	for _, first := range []uint64{0, 1, 41_000_000_000} {
		o := testOptions(t)
		pub, err := CreateLog(o, "s", LogConfig{CapacityBytes: 1 << 12, Mode: Reliable, FirstSeq: first}, PublisherOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := pub.NextSeq(); got != first {
			t.Fatalf("FirstSeq %d: NextSeq %d before any commit", first, got)
		}
		if got := pub.Log().PublishedFrames(); got != first {
			t.Fatalf("FirstSeq %d: PublishedFrames %d before any commit", first, got)
		}
		pub.Close()
		// A publisher that attaches later (the appliance closes after
		// creating) continues from the stored word, not from 0.
		pub, err = OpenPublisher(o, "s", PublisherOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sub, err := OpenSubscriber(o, "s", SubscriberOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := uint64(0); i < 100; i++ { // 100 x 128 B wraps the 4 KiB ring
			seq, err := publishTestFrame(pub, 128)
			if err != nil {
				t.Fatal(err)
			}
			if seq != first+i {
				t.Fatalf("FirstSeq %d: frame %d got seq %d", first, i, seq)
			}
			f, _, err := sub.Next()
			if err != nil || f == nil {
				t.Fatalf("frame %d: %v %v", i, f, err)
			}
			got, err := verifyFrame(f)
			if err != nil || got != first+i {
				t.Fatalf("FirstSeq %d: delivered seq %d (%v), want %d", first, got, err, first+i)
			}
			if f, _, err := sub.Next(); f != nil || err != nil { // stores the position
				t.Fatalf("second Next: %v %v", f, err)
			}
		}
		sub.Close()
		pub.Close()
	}
}

// manualTopic creates a reliable 4 KiB topic whose publisher gives up after
// 20 ms of back-pressure, and a ManualRelease subscriber of it.
func manualTopic(t *testing.T) (shm.Options, *Publisher, *Subscriber) {
	t.Helper()
	o := testOptions(t)
	pub, err := CreateLog(o, "m", LogConfig{CapacityBytes: 1 << 12, Mode: Reliable},
		PublisherOptions{BackPressureTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	sub, err := OpenSubscriber(o, "m", SubscriberOptions{ManualRelease: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	return o, pub, sub
}

type heldFrame struct {
	view []byte // zero-copy view into the ring
	pos  uint64
	end  uint64
	seq  uint64
}

// A ManualRelease subscriber reads the whole ring ahead; the publisher is
// held back by what it has not released (not by what it has read), the
// views of read-ahead frames stay intact until released, and each release
// lets the publisher take exactly the room released.
func TestManualReleaseHoldsThePublisherUntilReleased(t *testing.T) {
	_, pub, sub := manualTopic(t)
	const size = 256
	var held []heldFrame
	readAll := func() {
		t.Helper()
		for {
			f, pos, err := sub.Next()
			if err != nil {
				t.Fatal(err)
			}
			if f == nil {
				return
			}
			seq, err := verifyFrame(f)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, heldFrame{view: f, pos: pos, end: pos + uint64(schema.AlignedSize(len(f))), seq: seq})
		}
	}
	checkHeld := func(when string) {
		t.Helper()
		for _, h := range held {
			if seq, err := verifyFrame(h.view); err != nil || seq != h.seq {
				t.Fatalf("%s: read-ahead frame seq %d at %d torn: seq %d, %v", when, h.seq, h.pos, seq, err)
			}
		}
	}
	// Fill the ring while reading everything as it arrives: a subscriber
	// that released as it read would never stop the publisher.
	n := 0
	var err error
	for ; n < 1000; n++ {
		if _, err = publishTestFrame(pub, size); err != nil {
			break
		}
		readAll()
	}
	if !errors.Is(err, ErrBackPressure) {
		t.Fatalf("after %d frames read but not released: %v, want ErrBackPressure", n, err)
	}
	if n*size > 4096 || n < 4096/size-2 {
		t.Fatalf("back-pressure after %d frames of %d B in a 4 KiB ring", n, size)
	}
	if len(held) != n {
		t.Fatalf("read %d frames ahead, publisher committed %d", len(held), n)
	}
	if sub.Position() != pub.Position() || sub.Released() != 0 {
		t.Fatalf("read position %d (published %d), released %d", sub.Position(), pub.Position(), sub.Released())
	}
	if subs := pub.Log().Subscribers(); len(subs) != 1 || subs[0].Position != 0 {
		t.Fatalf("registered position moved without a release: %+v", subs)
	}
	checkHeld("after back-pressure")

	// Release the first four frames: the publisher may now write exactly
	// that much more (and no further), and the frames after them, still
	// unreleased, survive its writes.
	release := held[3].end
	if err := sub.Release(release); err != nil {
		t.Fatal(err)
	}
	wrote := 0
	for ; wrote < 100; wrote++ {
		if _, err = publishTestFrame(pub, size); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrBackPressure) || wrote < 2 || wrote > 4 {
		t.Fatalf("after releasing 4 frames of %d B the publisher wrote %d (%v)", size, wrote, err)
	}
	held = held[4:]
	checkHeld("after the publisher reused the released room")
	readAll()
	checkHeld("after reading the new frames")

	// Release everything read: the publisher goes on.
	if err := sub.Release(sub.Position()); err != nil {
		t.Fatal(err)
	}
	if _, err := publishTestFrame(pub, size); err != nil {
		t.Fatalf("after releasing everything: %v", err)
	}
	if subs := pub.Log().Subscribers(); subs[0].Position != sub.Released() {
		t.Fatalf("registered position %d, released %d", subs[0].Position, sub.Released())
	}
}

// A publisher parked waiting for room is woken by a Release from another
// goroutine, well before its back-pressure timeout.
func TestManualReleaseWakesAWaitingPublisher(t *testing.T) {
	o := testOptions(t)
	pub, err := CreateLog(o, "w", LogConfig{CapacityBytes: 1 << 12, Mode: Reliable},
		PublisherOptions{BackPressureTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sub, err := OpenSubscriber(o, "w", SubscriberOptions{ManualRelease: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i := 0; i < 15; i++ {
		if _, err := publishTestFrame(pub, 256); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := sub.Poll(func([]byte, uint64) {}, 100); err != nil || n != 15 {
		t.Fatalf("poll: %d %v", n, err)
	}
	var released atomic.Bool
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 4; i++ {
			if _, err := publishTestFrame(pub, 256); err != nil {
				done <- err
				return
			}
		}
		if !released.Load() {
			done <- errors.New("publisher wrote over unreleased frames before the release")
			return
		}
		done <- nil
	}()
	time.Sleep(50 * time.Millisecond) // the publisher spins, yields, parks
	released.Store(true)
	start := time.Now()
	if err := sub.Release(sub.Position()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("publisher not woken by Release")
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("publisher went on %v after the release", el)
	}
}

func TestManualReleaseRejectsBadPositions(t *testing.T) {
	o, pub, sub := manualTopic(t)
	var ends []uint64
	for i := 0; i < 3; i++ {
		if _, err := publishTestFrame(pub, 100); err != nil {
			t.Fatal(err)
		}
	}
	sub.Poll(func(f []byte, pos uint64) { ends = append(ends, pos+uint64(schema.AlignedSize(len(f)))) }, 2)
	read := sub.Position()
	if read != ends[1] {
		t.Fatalf("position %d after two frames ending at %v", read, ends)
	}
	if err := sub.Release(ends[0]); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		pos  uint64
		want []string
	}{
		{0, []string{"release to 0", "behind", "released, " + strconv.FormatUint(ends[0], 10)}},
		{read + 104, []string{"release to " + strconv.FormatUint(read+104, 10), "beyond", "read, " + strconv.FormatUint(read, 10)}},
		{ends[0] + 4, []string{"not 8-byte aligned"}},
	}
	for _, c := range cases {
		err := sub.Release(c.pos)
		if !errors.Is(err, ErrReleaseOutOfRange) {
			t.Fatalf("release %d: %v, want ErrReleaseOutOfRange", c.pos, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("release %d: %q does not say %q", c.pos, err, w)
			}
		}
	}
	if sub.Released() != ends[0] {
		t.Fatalf("a refused release moved the position to %d", sub.Released())
	}
	// Next's frame counts as read once returned.
	f, pos, err := sub.Next()
	if err != nil || f == nil {
		t.Fatal(f, err)
	}
	if err := sub.Release(pos + uint64(schema.AlignedSize(len(f)))); err != nil {
		t.Fatalf("release of the frame Next returned: %v", err)
	}
	// Only a ManualRelease gating subscriber may release; others cannot
	// ask for it.
	plain, err := OpenSubscriber(o, "m", SubscriberOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.Release(0); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Release without ManualRelease: %v", err)
	}
	if _, err := OpenSubscriber(o, "m", SubscriberOptions{ManualRelease: true, Observer: true}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("ManualRelease observer: %v", err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if err := sub.Release(sub.Released()); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Release allocates %v per call", allocs)
	}
}

// A subscriber that is alive but not polling keeps its slot by calling
// Heartbeat; one that does not is evicted once its heartbeat is stale.
func TestHeartbeatKeepsAnIdleSubscriber(t *testing.T) {
	for _, beat := range []bool{true, false} {
		o := testOptions(t)
		pub, err := CreateLog(o, "h", LogConfig{CapacityBytes: 1 << 12, Mode: Reliable},
			PublisherOptions{BackPressureTimeout: 300 * time.Millisecond, SubscriberTimeout: 60 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		sub, err := OpenSubscriber(o, "h", SubscriberOptions{})
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		beating := make(chan struct{})
		// Heartbeat would race with the polling goroutine (one goroutine
		// per Subscriber): here nobody polls while it beats.
		go func() {
			defer close(beating)
			for beat {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
					sub.Heartbeat()
				}
			}
		}()
		var perr error
		for i := 0; i < 100 && perr == nil; i++ { // 100 x 64 B > 4 KiB
			_, perr = publishTestFrame(pub, 64)
		}
		close(stop)
		<-beating
		_, err = sub.Poll(func([]byte, uint64) {}, 1)
		if beat {
			if !errors.Is(perr, ErrBackPressure) || err != nil {
				t.Fatalf("heartbeating subscriber: publisher %v, poll %v; want back-pressure and no eviction", perr, err)
			}
		} else if perr != nil || !errors.Is(err, ErrEvicted) {
			t.Fatalf("silent subscriber: publisher %v, poll %v; want eviction", perr, err)
		}
		sub.Close()
		pub.Close()
	}
	o := testOptions(t)
	pub, err := CreateLog(o, "a", LogConfig{CapacityBytes: 1 << 12, Mode: Reliable}, PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sub, err := OpenSubscriber(o, "a", SubscriberOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	before := atomic.LoadUint64(sub.slotHeartbeatW)
	time.Sleep(time.Millisecond)
	if allocs := testing.AllocsPerRun(1000, sub.Heartbeat); allocs != 0 {
		t.Fatalf("Heartbeat allocates %v per call", allocs)
	}
	if after := atomic.LoadUint64(sub.slotHeartbeatW); after <= before {
		t.Fatalf("heartbeat word %d, was %d", after, before)
	}
}

// Timeouts of WaitDurable, WaitReplicated and Wait are the sentinel
// ErrTimeout itself, returned without allocating.
func TestWaitTimeoutsAreASentinelWithoutAllocation(t *testing.T) {
	o := testOptions(t)
	pub, err := CreateLog(o, "t", LogConfig{CapacityBytes: 1 << 12, Mode: Reliable}, PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sub, err := OpenSubscriber(o, "t", SubscriberOptions{Wait: WaitStrategy{Kind: SpinPark, SpinIterations: 10, YieldIterations: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	publishTestFrame(pub, 64)
	end := pub.Position()
	lg := pub.Log()
	waits := map[string]func() error{
		"WaitDurable":    func() error { return lg.WaitDurable(end, 50*time.Microsecond) },
		"WaitReplicated": func() error { return lg.WaitReplicated(end, 50*time.Microsecond) },
		"Wait": func() error {
			for {
				f, _, err := sub.Next()
				if err != nil {
					return err
				}
				if f == nil {
					return sub.Wait(50 * time.Microsecond)
				}
			}
		},
	}
	for name, wait := range waits {
		if err := wait(); err != ErrTimeout {
			t.Fatalf("%s: %v, want ErrTimeout itself", name, err)
		}
		allocs := testing.AllocsPerRun(50, func() {
			if err := wait(); !errors.Is(err, ErrTimeout) {
				t.Fatalf("%s: %v", name, err)
			}
		})
		if allocs != 0 {
			t.Fatalf("%s timing out allocates %v per call", name, allocs)
		}
	}
}

// Replaced tells a long-running producer that its topic's file was removed
// or recreated under the same name.
func TestLogReplaced(t *testing.T) {
	o := testOptions(t)
	cfg := LogConfig{CapacityBytes: 1 << 12, Mode: Reliable}
	pub, err := CreateLog(o, "r", cfg, PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	replaced := func(lg *Log) bool {
		t.Helper()
		r, err := lg.Replaced()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if replaced(pub.Log()) {
		t.Fatal("fresh topic reported replaced")
	}
	path := pub.Log().Segment().Path()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if !replaced(pub.Log()) {
		t.Fatal("removed topic not reported replaced")
	}
	// Recreated under the same name while the old mapping is still open:
	// a new inode.
	pub2, err := CreateLog(o, "r", cfg, PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub2.Close()
	if !replaced(pub.Log()) {
		t.Fatal("recreated topic not reported replaced to the old mapping")
	}
	if replaced(pub2.Log()) {
		t.Fatal("new topic reported replaced")
	}
	// A file moved over the name (rename) is a replacement too.
	other, err := CreateLog(o, "other", cfg, PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := os.Rename(other.Log().Segment().Path(), path); err != nil {
		t.Fatal(err)
	}
	if !replaced(pub2.Log()) || !replaced(other.Log()) {
		t.Fatal("rename over the topic: want both the overwritten mapping and the moved one (its old name is gone) replaced")
	}
}

func init() {
	// manualsub: base ns topic frames — a ManualRelease subscriber that
	// reads ahead as far as the publisher lets it, holding zero-copy views,
	// and releases a pseudo-random prefix of what it holds only when it has
	// run out of frames. Before every release it re-verifies every view it
	// still holds: a publisher that overwrote unreleased bytes fails a
	// checksum. Prints "ok <frames> <releases> <max held>" or an error.
	childRoles["manualsub"] = func(args []string) int {
		o := shm.Options{Base: args[0], Namespace: args[1]}
		frames, _ := strconv.ParseUint(args[3], 10, 64)
		sub, err := OpenSubscriber(o, args[2], SubscriberOptions{ManualRelease: true})
		if err != nil {
			fmt.Fprintln(os.Stderr, "manualsub:", err)
			return 1
		}
		defer sub.Close()
		fmt.Println("ready")
		var held []heldFrame
		var received, releases, maxHeld uint64
		var verr error
		h := func(f []byte, pos uint64) {
			seq, err := verifyFrame(f)
			if err == nil && seq != received {
				err = fmt.Errorf("seq %d, want %d", seq, received)
			}
			if err != nil && verr == nil {
				verr = fmt.Errorf("at position %d: %w", pos, err)
			}
			received++
			held = append(held, heldFrame{view: f, pos: pos, end: pos + uint64(schema.AlignedSize(len(f))), seq: seq})
		}
		for verr == nil && (received < frames || len(held) > 0) {
			n, err := sub.Poll(h, 64)
			if err != nil {
				verr = err
				break
			}
			if n > 0 || verr != nil {
				continue
			}
			if len(held) == 0 {
				if err := sub.Wait(5 * time.Second); err != nil && !errors.Is(err, ErrPublisherGone) {
					verr = err
				}
				continue
			}
			for _, f := range held {
				if seq, err := verifyFrame(f.view); err != nil || seq != f.seq {
					verr = fmt.Errorf("unreleased frame seq %d at %d overwritten (released %d, read %d): seq %d, %v", f.seq, f.pos, sub.Released(), sub.Position(), seq, err)
					break
				}
			}
			maxHeld = max(maxHeld, uint64(len(held)))
			k := 1 + int(uint64(len(held))*0x9E3779B97F4A7C15>>7%uint64(len(held)))
			if received >= frames {
				k = len(held)
			}
			if err := sub.Release(held[k-1].end); err != nil && verr == nil {
				verr = err
			}
			held = held[k:]
			releases++
		}
		if verr != nil {
			fmt.Println("error:", verr)
			return 0
		}
		fmt.Println("ok", received, releases, maxHeld)
		return 0
	}
}

// A ManualRelease subscriber in another process than the publisher: it
// reads ahead zero-copy as far as it can and releases in lagging steps; the
// publisher (random sizes, batches, an 8 KiB ring) is held back by what is
// unreleased, never by what was read, and never overwrites a held frame.
func TestManualReleaseAcrossProcesses(t *testing.T) {
	frames := 200_000
	if os.Getenv("TAPEWIRE_LONG") == "1" {
		frames = 5_000_000
	}
	o := testOptions(t)
	p, err := CreateLog(o, "mr", LogConfig{CapacityBytes: 8 << 10, Mode: Reliable}, PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	sub := childCmd("manualsub", o.Base, o.Namespace, "mr", strconv.Itoa(frames))
	sc := startChildReady(t, sub)
	pub := childCmd("pub", o.Base, o.Namespace, strconv.Itoa(frames), "mr")
	startChildReady(t, pub)
	if err := pub.Wait(); err != nil {
		t.Fatalf("publisher: %v", err)
	}
	if !sc.Scan() {
		t.Fatal("subscriber said nothing")
	}
	line := sc.Text()
	if err := sub.Wait(); err != nil {
		t.Fatalf("subscriber: %v", err)
	}
	var got, releases, maxHeld int
	if _, err := fmt.Sscanf(line, "ok %d %d %d", &got, &releases, &maxHeld); err != nil {
		t.Fatalf("subscriber: %s", line)
	}
	lg, err := OpenLog(o, "mr")
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	info := lg.Publisher()
	t.Logf("%d frames, %d releases, up to %d frames held, publisher waited for room %d times", got, releases, maxHeld, info.BackPressureWait)
	if got != frames || info.BackPressureErr != 0 {
		t.Fatalf("received %d of %d frames; back-pressure errors %d", got, frames, info.BackPressureErr)
	}
	if info.BackPressureWait == 0 || maxHeld < 8 {
		t.Fatalf("the publisher never waited for a release (%d waits, up to %d frames held): the test did not exercise read-ahead", info.BackPressureWait, maxHeld)
	}
}

// Offer copies type, flags, publish_ns and payload exactly and stamps
// length and sequence number; Next hands every frame over in order across
// many wraps and paddings (both have fast paths for the common case).
func TestOfferAndNextAcrossWraps(t *testing.T) {
	for _, demote := range []bool{false, true} {
		t.Run(fmt.Sprintf("demote=%v", demote), func(t *testing.T) { testOfferAndNext(t, PublisherOptions{DemoteCommitted: demote}) })
	}
}

func testOfferAndNext(t *testing.T, opts PublisherOptions) {
	o := testOptions(t)
	pub, err := CreateLog(o, "o", LogConfig{CapacityBytes: 1 << 12, Mode: Reliable}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sub, err := OpenSubscriber(o, "o", SubscriberOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	src := make([]byte, 1024)
	for i := uint64(0); i < 20_000; i++ {
		n := testFrameSize(i, schema.HeaderSize, 700)
		frame := src[:n]
		copy(frame[schema.HeaderSize:], pattern[i%4096:])
		schema.EncodeHeader(frame, schema.Header{Length: 999, Type: schema.Type(1 + i%7), Flags: schema.Flag(i % 3), Seq: 12345, PublishNs: int64(i) * 3})
		pos, err := pub.Offer(frame)
		if err != nil {
			t.Fatalf("offer %d: %v", i, err)
		}
		f, fpos, err := sub.Next()
		if err != nil || f == nil {
			t.Fatalf("frame %d: %v %v", i, f, err)
		}
		h, err := schema.DecodeHeader(f)
		if err != nil {
			t.Fatal(err)
		}
		want := schema.Header{Length: uint32(n), Type: schema.Type(1 + i%7), Flags: schema.Flag(i % 3), Seq: i, PublishNs: int64(i) * 3}
		if fpos != pos || len(f) != n || h != want || string(f[schema.HeaderSize:]) != string(frame[schema.HeaderSize:]) {
			t.Fatalf("frame %d at %d (offered at %d): header %+v, want %+v; %d bytes, want %d; payload equal %v",
				i, fpos, pos, h, want, len(f), n, string(f[schema.HeaderSize:]) == string(frame[schema.HeaderSize:]))
		}
		if f, _, err := sub.Next(); f != nil || err != nil {
			t.Fatalf("after frame %d: %v %v", i, f, err)
		}
	}
	if wraps := pub.Log().Published() / pub.Log().Capacity(); wraps < 1000 {
		t.Fatalf("only %d wraps", wraps)
	}
}
