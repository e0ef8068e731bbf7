package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tapewire/tapewire/bench/internal/harness"
	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/shm"
)

const rttFrameBytes = 64

// pingPongTopics creates the ping topic (the parent publishes, with
// pubOpts) and the pong topic (the child publishes; closed here so the
// child can attach), and subscribes the parent to pong.
func pingPongTopics(o shm.Options, wait ring.WaitStrategy, pubOpts ring.PublisherOptions) (*ring.Publisher, *ring.Subscriber, error) {
	cfg := ring.LogConfig{CapacityBytes: 64 << 10, Mode: ring.Reliable}
	ping, err := ring.CreateLog(o, "ping", cfg, pubOpts)
	if err != nil {
		return nil, nil, err
	}
	pong, err := ring.CreateLog(o, "pong", cfg, ring.PublisherOptions{})
	if err != nil {
		ping.Close()
		return nil, nil, err
	}
	pong.Close()
	sub, err := ring.OpenSubscriber(o, "pong", ring.SubscriberOptions{Wait: wait})
	if err != nil {
		ping.Close()
		return nil, nil, err
	}
	return ping, sub, nil
}

func init() {
	// tw-pong: rounds, park(0|1), demote(0|1): echo every ping frame on
	// pong (demote: PublisherOptions.DemoteCommitted).
	childRoles["tw-pong"] = func(o shm.Options, cpu int, args []string) error {
		rounds, park := argInt(args, 0), argInt(args, 1) == 1
		pubOpts := ring.PublisherOptions{DemoteCommitted: argInt(args, 2) == 1}
		wait := ring.WaitStrategy{Kind: ring.BusySpin}
		if park {
			wait = ring.WaitStrategy{Kind: ring.SpinPark, SpinIterations: -1, YieldIterations: -1}
		}
		sub, pub, err := openPongSide(o, wait, pubOpts)
		if err != nil {
			return err
		}
		defer sub.Close()
		defer pub.Close()
		ready()
		for i := 0; i < rounds; i++ {
			for {
				f, _, err := sub.Next()
				if err != nil {
					return err
				}
				if f != nil {
					if _, err := pub.Offer(f); err != nil {
						return err
					}
					break
				}
				if park {
					if err := sub.Wait(0); err != nil {
						return err
					}
				} else {
					shm.Pause()
				}
			}
		}
		report(struct{}{})
		return nil
	}
	// tw-pong-poll: rounds, demote(0|1): echo every ping frame on pong from
	// inside a Poll handler (up to 16 frames a call), as a Poll-based
	// service answers.
	childRoles["tw-pong-poll"] = func(o shm.Options, cpu int, args []string) error {
		rounds := argInt(args, 0)
		pubOpts := ring.PublisherOptions{DemoteCommitted: argInt(args, 1) == 1}
		sub, pub, err := openPongSide(o, ring.WaitStrategy{Kind: ring.BusySpin}, pubOpts)
		if err != nil {
			return err
		}
		defer sub.Close()
		defer pub.Close()
		var answerErr error
		answer := func(f []byte, _ uint64) {
			if answerErr == nil {
				_, answerErr = pub.Offer(f)
			}
		}
		ready()
		for done := 0; done < rounds; {
			n, err := sub.Poll(answer, 16)
			if err != nil {
				return err
			}
			if answerErr != nil {
				return answerErr
			}
			if n == 0 {
				shm.Pause()
			}
			done += n
		}
		report(struct{}{})
		return nil
	}
	// floor-pong: rounds: answer every odd value of the shared word with the
	// next even one.
	childRoles["floor-pong"] = func(o shm.Options, cpu int, args []string) error {
		rounds := argInt(args, 0)
		ctl, err := openControl(o)
		if err != nil {
			return err
		}
		defer ctl.Close()
		w := ctl.Uint64At(ctlWord)
		ready()
		for i := uint64(0); i < uint64(rounds); i++ {
			for atomic.LoadUint64(w) != 2*i+1 {
				shm.Pause()
			}
			atomic.StoreUint64(w, 2*i+2)
		}
		report(struct{}{})
		return nil
	}
	// floorwalk-pong: rounds, layout: like floor-pong, but each direction
	// has its own word, placed by walkWords (see walkLayout).
	childRoles["floorwalk-pong"] = func(o shm.Options, cpu int, args []string) error {
		rounds, layout := argInt(args, 0), walkLayout(argInt(args, 1))
		ctl, err := openControl(o)
		if err != nil {
			return err
		}
		defer ctl.Close()
		ready()
		for i := 0; i < rounds; i++ {
			ping, pong := walkWords(ctl, layout, i)
			for atomic.LoadUint64(ping) != uint64(i)+1 {
				shm.Pause()
			}
			if layout == walkTwoLinesFull {
				echoLine(pong, ping, uint64(i)+1)
				continue
			}
			atomic.StoreUint64(pong, uint64(i)+1)
		}
		report(struct{}{})
		return nil
	}
	// uds-pong: rounds: echo 64-byte messages on fd 3.
	childRoles["uds-pong"] = func(o shm.Options, cpu int, args []string) error {
		rounds := argInt(args, 0)
		var buf [rttFrameBytes]byte
		ready()
		for i := 0; i < rounds; i++ {
			if err := readFull(3, buf[:]); err != nil {
				return err
			}
			if _, err := unix.Write(3, buf[:]); err != nil {
				return err
			}
		}
		report(struct{}{})
		return nil
	}
}

// walkLines is the number of cache lines each direction of the ring-walk
// floors cycles through (32 KiB per direction).
const walkLines = 512

// walkLayout says where the two words of a floor's round trip live. The
// floors differ only in that; together they separate what a fresh line per
// message costs from what a second line (one writer per line) costs.
type walkLayout int

const (
	// walkTwoLines: round i uses its own line (i mod walkLines) of a ping
	// region and of a pong region: a pair of rings with no ring code.
	walkTwoLines walkLayout = iota
	// walkFixedTwoLines: one fixed line per direction, each written by one
	// process only.
	walkFixedTwoLines
	// walkSharedLine: round i uses one fresh line (i mod walkLines) for
	// both directions (ping word at +0, pong word at +8).
	walkSharedLine
	// walkTwoLinesFull: walkTwoLines carrying a whole 64-byte line per
	// message, as a ring carries a 64 B frame: the writer stores words 1-7,
	// then word 0 (the commit) and a barrier (see echoLine); the reader
	// spins on word 0 and reads the rest.
	walkTwoLinesFull
)

// echoLine writes the 64-byte line at dst as a ring commits a frame: words
// 1-7 (copied from src when it is not nil), then word 0 = v with a plain
// store followed by a full barrier (a locked add on a private word). A
// locked store (XCHG) on word 0 after plain stores to the same line is
// slower: the spinning reader takes the line away between the plain stores
// and the locked instruction, which must then win it back.
func echoLine(dst, src *uint64, v uint64) {
	d := (*[8]uint64)(unsafe.Pointer(dst))
	if src != nil {
		s := (*[8]uint64)(unsafe.Pointer(src))
		for k := 1; k < 8; k++ {
			d[k] = s[k]
		}
	} else {
		for k := 1; k < 8; k++ {
			d[k] = v + uint64(k)
		}
	}
	*dst = v
	atomic.AddUint64(&lineFence, 1)
}

// lineFence is the private target of echoLine's barrier.
var lineFence uint64

// walkWords returns the ping and pong words of round i.
func walkWords(ctl *shm.Segment, layout walkLayout, i int) (ping, pong *uint64) {
	line := (i % walkLines) * 64
	switch layout {
	case walkFixedTwoLines:
		return ctl.Uint64At(ctlWalk), ctl.Uint64At(ctlWalk + walkLines*64)
	case walkTwoLinesFull:
		return ctl.Uint64At(ctlWalk + line), ctl.Uint64At(ctlWalk + walkLines*64 + line)
	case walkSharedLine:
		return ctl.Uint64At(ctlWalk + line), ctl.Uint64At(ctlWalk + line + 8)
	}
	return ctl.Uint64At(ctlWalk + line), ctl.Uint64At(ctlWalk + walkLines*64 + line)
}

func readFull(fd int, b []byte) error {
	for got := 0; got < len(b); {
		n, err := unix.Read(fd, b[got:])
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("fd %d: EOF", fd)
		}
		got += n
	}
	return nil
}

// openPongSide subscribes to ping and publishes on pong: the answering
// side of a round trip.
func openPongSide(o shm.Options, wait ring.WaitStrategy, pubOpts ring.PublisherOptions) (*ring.Subscriber, *ring.Publisher, error) {
	sub, err := ring.OpenSubscriber(o, "ping", ring.SubscriberOptions{Wait: wait})
	if err != nil {
		return nil, nil, err
	}
	pub, err := ring.OpenPublisher(o, "pong", pubOpts)
	if err != nil {
		sub.Close()
		return nil, nil, err
	}
	return sub, pub, nil
}

// timedRounds runs warm+rounds round trips of op on the calling goroutine,
// pinned to cpu, recording the measured ones. prepare, when not nil, runs
// untimed before each round.
func timedRounds(cpu, warm, rounds int, prepare func(), op func(i int) error) (harness.Result, error) {
	return timedRoundsFor(cpu, warm, rounds, 0, nil, prepare, op)
}

// timedRoundsFor is timedRounds that also stops measuring after limit (0: no
// limit), for contenders whose operations can take 1000x longer than ours.
// If end is not nil and op leaves a non-zero TSC reading in it, the round
// ended there (a Poll handler stamps it on entry: what Poll does after the
// handler returns is not part of the round trip).
func timedRoundsFor(cpu, warm, rounds int, limit time.Duration, end *uint64, prepare func(), op func(i int) error) (harness.Result, error) {
	release := harness.Pin(cpu)
	defer release()
	h := harness.NewHistogram()
	var mallocs uint64
	var start time.Time
	measured := rounds
	for i := 0; i < warm+rounds; i++ {
		if i == warm {
			mallocs = harness.Mallocs()
			start = time.Now()
		}
		if limit > 0 && i > warm && (i-warm)%256 == 0 && time.Since(start) > limit {
			measured = i - warm
			break
		}
		if prepare != nil {
			prepare()
		}
		t0 := rdtsc()
		if err := op(i); err != nil {
			return harness.Result{}, err
		}
		t1 := rdtsc()
		if end != nil && *end != 0 {
			t1, *end = *end, 0
		}
		if i >= warm {
			h.Record(ticksToNs(t1 - t0))
		}
	}
	el := time.Since(start)
	r := harness.Result{OpsPerSec: float64(measured) / el.Seconds(), AllocsPerOp: harness.AllocsPerOp(mallocs, int64(measured))}
	h.Fill(&r)
	return r, nil
}

func (w *workloads) rtt() {
	const name, pollName = "rtt-64B", "rtt-64B-poll"
	if !w.b.Wants(name) && !w.b.Wants(pollName) {
		return
	}
	rounds := w.b.Size(300_000, 40_000)
	warm := rounds / 10
	total := warm + rounds
	// Kernel-mediated peers take ~50 µs a round: bound each repeat's time
	// too (the children are told the full count and killed when cut short).
	limit := w.b.Duration(5*time.Second, time.Second)
	// tapewire: the pinger claims, builds and commits a frame, then waits
	// for the echo with Next (poll false) or with Poll and maxFrames 1 (poll
	// true, the ponger answering from its Poll handler). demote sets
	// PublisherOptions.DemoteCommitted on both publishers.
	tapewire := func(poll, demote bool) func(int) (harness.Result, error) {
		return func(repeat int) (harness.Result, error) {
			o, cleanup, err := newBase()
			if err != nil {
				return harness.Result{}, err
			}
			defer cleanup()
			ping, sub, err := pingPongTopics(o, ring.WaitStrategy{Kind: ring.BusySpin}, ring.PublisherOptions{DemoteCommitted: demote})
			if err != nil {
				return harness.Result{}, err
			}
			defer ping.Close()
			defer sub.Close()
			d := 0
			if demote {
				d = 1
			}
			role, args := "tw-pong", childArgs(o, w.cpuB, total, 0, d)
			if poll {
				role, args = "tw-pong-poll", childArgs(o, w.cpuB, total, d)
			}
			c, err := startChild(nil, role, args...)
			if err != nil {
				return harness.Result{}, err
			}
			var sum, handled uint64
			take := func(f []byte, _ uint64) {
				handled = rdtsc()
				sum += binary.LittleEndian.Uint64(f[schema.HeaderSize:])
			}
			end := &handled
			if !poll {
				end = nil
			}
			r, err := timedRoundsFor(w.cpuA, warm, rounds, 0, end, nil, func(i int) error {
				cl, err := ping.Claim(rttFrameBytes, schema.TypeHeartbeat, 0)
				if err != nil {
					return err
				}
				binary.LittleEndian.PutUint64(cl.Payload(), uint64(i))
				ping.Commit(cl)
				for {
					if poll {
						n, err := sub.Poll(take, 1)
						if err != nil || n == 1 {
							return err
						}
					} else {
						f, _, err := sub.Next()
						if err != nil {
							return err
						}
						if f != nil {
							sum += binary.LittleEndian.Uint64(f[schema.HeaderSize:])
							return nil
						}
					}
					shm.Pause()
				}
			})
			if err != nil {
				c.kill()
				return r, err
			}
			if want := uint64(total) * uint64(total-1) / 2; sum != want {
				return r, fmt.Errorf("echoed payload sum %d, want %d", sum, want)
			}
			r.Notes = "busy-spin both sides; claim+commit, Next; ponger Next, Offer; allocs/op = publish+poll of the pinger"
			if poll {
				r.Notes = "busy-spin both sides; pinger: claim+commit, Poll(maxFrames 1), round ends when its handler runs; ponger answers from its Poll(maxFrames 16) handler; allocs/op = publish+poll of the pinger"
			}
			if demote {
				r.Notes += "; both publishers with DemoteCommitted"
			} else {
				r.Notes += "; default PublisherOptions (no DemoteCommitted)"
			}
			return r, c.result(&struct{}{})
		}
	}
	floor := func(repeat int) (harness.Result, error) {
		o, ctl, cleanup, err := newControlBase()
		if err != nil {
			return harness.Result{}, err
		}
		defer cleanup()
		word := ctl.Uint64At(ctlWord)
		c, err := startChild(nil, "floor-pong", childArgs(o, w.cpuB, total)...)
		if err != nil {
			return harness.Result{}, err
		}
		r, err := timedRounds(w.cpuA, warm, rounds, nil, func(i int) error {
			atomic.StoreUint64(word, 2*uint64(i)+1)
			for atomic.LoadUint64(word) != 2*uint64(i)+2 {
				shm.Pause()
			}
			return nil
		})
		if err != nil {
			c.kill()
			return r, err
		}
		r.Notes = "two processes spinning on one shared 8-byte word (atomic store, PAUSE loop)"
		return r, c.result(&struct{}{})
	}
	floorWalk := func(layout walkLayout, notes string) func(int) (harness.Result, error) {
		return func(repeat int) (harness.Result, error) {
			o, ctl, cleanup, err := newControlBase()
			if err != nil {
				return harness.Result{}, err
			}
			defer cleanup()
			c, err := startChild(nil, "floorwalk-pong", childArgs(o, w.cpuB, total, int(layout))...)
			if err != nil {
				return harness.Result{}, err
			}
			var sum uint64
			r, err := timedRounds(w.cpuA, warm, rounds, nil, func(i int) error {
				ping, pong := walkWords(ctl, layout, i)
				if layout == walkTwoLinesFull {
					echoLine(ping, nil, uint64(i)+1)
				} else {
					atomic.StoreUint64(ping, uint64(i)+1)
				}
				for atomic.LoadUint64(pong) != uint64(i)+1 {
					shm.Pause()
				}
				if layout == walkTwoLinesFull {
					sum += (*[8]uint64)(unsafe.Pointer(pong))[7]
				}
				return nil
			})
			if layout == walkTwoLinesFull {
				// Round i's echo carries word 7 = i+1+7.
				want := uint64(total)*uint64(total-1)/2 + 8*uint64(total)
				if sum != want {
					return r, fmt.Errorf("echoed line sum %d, want %d", sum, want)
				}
			}
			if err != nil {
				c.kill()
				return r, err
			}
			r.Notes = notes
			return r, c.result(&struct{}{})
		}
	}
	uds := func(repeat int) (harness.Result, error) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return harness.Result{}, err
		}
		mine := fds[0]
		theirs := os.NewFile(uintptr(fds[1]), "uds")
		defer unix.Close(mine)
		c, err := startChild([]*os.File{theirs}, "uds-pong", childArgs(shm.Options{Base: "-", Namespace: "-"}, w.cpuB, total)...)
		theirs.Close()
		if err != nil {
			return harness.Result{}, err
		}
		var buf [rttFrameBytes]byte
		r, err := timedRoundsFor(w.cpuA, warm, rounds, limit, nil, nil, func(i int) error {
			binary.LittleEndian.PutUint64(buf[:], uint64(i))
			if _, err := unix.Write(mine, buf[:]); err != nil {
				return err
			}
			return readFull(mine, buf[:])
		})
		if err != nil {
			c.kill()
			return r, err
		}
		r.Notes = "socketpair(AF_UNIX, SOCK_STREAM), blocking write+read of 64 B"
		c.kill() // it may still wait for the rounds a time limit cut
		return r, nil
	}
	channels := func(repeat int) (harness.Result, error) {
		ping, pong := make(chan [rttFrameBytes]byte, 1), make(chan [rttFrameBytes]byte, 1)
		done := make(chan struct{})
		go func() {
			defer close(done)
			release := harness.Pin(w.cpuB)
			defer release()
			for v := range ping {
				pong <- v
			}
		}()
		var msg [rttFrameBytes]byte
		r, err := timedRoundsFor(w.cpuA, warm, rounds, limit, nil, nil, func(i int) error {
			binary.LittleEndian.PutUint64(msg[:], uint64(i))
			ping <- msg
			msg = <-pong
			return nil
		})
		close(ping)
		<-done
		r.Notes = "two goroutines pinned to the two CPUs, chan [64]byte with buffer 1 each way"
		return r, err
	}
	if w.b.Wants(name) {
		fmt.Fprintln(os.Stderr, "ringbench: shmipc-go is not served by the module proxy here (403): rtt-64B runs without it")
	}
	w.b.Interleave(name,
		harness.Contender{System: harness.Ours, Run: tapewire(false, true)},
		harness.Contender{System: "tapewire-no-demote", Run: tapewire(false, false)},
		harness.Contender{System: "floor-cacheline", Run: floor},
		harness.Contender{System: "floor-cacheline-ringwalk", Run: floorWalk(walkTwoLines,
			"like floor-cacheline, but round i uses its own cache line (i mod 512) of a ping and a pong region: a pair of rings' access pattern with no ring code")},
		harness.Contender{System: "floor-cacheline-2lines", Run: floorWalk(walkFixedTwoLines,
			"like floor-cacheline, but each direction has its own fixed cache line, written by one process only (as every line of a pair of topics is)")},
		harness.Contender{System: "floor-cacheline-ringwalk-64B", Run: floorWalk(walkTwoLinesFull,
			"like floor-cacheline-ringwalk, but each message fills its 64-byte line (words 1-7, then word 0 with a plain store and a barrier) and the reader copies it back: two topics carrying 64 B frames with no ring code")},
		harness.Contender{System: "floor-cacheline-walk-shared", Run: floorWalk(walkSharedLine,
			"like floor-cacheline-ringwalk, but round i carries both directions on one fresh line (ping at +0, pong at +8): what a fresh line per message costs by itself")},
		harness.Contender{System: "unix-socket", Run: uds},
		harness.Contender{System: "go-channel", Run: channels},
	)
	// The same round trip through Poll, against the floor of any pair of
	// topics: what a Poll-based service (the appliance, sim) answers in.
	w.b.Interleave(pollName,
		harness.Contender{System: harness.Ours, Run: tapewire(true, true)},
		harness.Contender{System: "floor-cacheline-2lines", Run: floorWalk(walkFixedTwoLines,
			"two processes, each writes its own fixed cache line and spins on the other's: the floor of any pair of topics")},
	)
}
