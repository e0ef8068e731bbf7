package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapewire/tapewire/appliance"
	"github.com/tapewire/tapewire/bench/internal/harness"
	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/shm"
	"github.com/tapewire/tapewire/vfs"
	"github.com/tapewire/tapewire/wal"
)

// env holds what the workloads share: the disk directory and the shm base
// of this run.
type env struct {
	root  string
	quick bool
	runs  int
}

var spinIterations = flag.Int("spin", -1, "storage.spin_iterations of the node (-1: the default); a large value makes the committer busy-spin as on a reserved core")

// configSets are -set KEY=VALUE overrides of every node's configuration
// (for A/B runs of one option).
var configSets setFlags

func init() {
	flag.Var(&configSets, "set", "override a node configuration `key=value` (repeatable), e.g. -set recovery.ingest_event_log=false")
}

type setFlags []string

func (s *setFlags) String() string { return strings.Join(*s, ",") }
func (s *setFlags) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("-set %q: want key=value", v)
	}
	*s = append(*s, v)
	return nil
}

var shmBase = fmt.Sprintf("/dev/shm/tapewire-e2ebench-%d", os.Getpid())

func (e *env) cleanupShm() { os.RemoveAll(shmBase) }

// config returns a node configuration on a fresh data directory and a fresh
// shm namespace: the durable topic "load" and two non-durable topics for
// the round trip.
func (e *env) config() (appliance.Config, error) {
	e.runs++
	dir, err := freshDir(e.root, "node")
	if err != nil {
		return appliance.Config{}, err
	}
	cfg := appliance.DefaultConfig()
	cfg.Node.DataDir = filepath.Join(dir, "data")
	cfg.Shm.Base = shmBase
	cfg.Shm.Namespace = fmt.Sprintf("run%d", e.runs)
	cfg.Admin.Listen = ""
	cfg.LastValue.Enabled = false
	cfg.Checkpoint.IntervalMs = 0
	if *spinIterations >= 0 {
		cfg.Storage.SpinIterations = *spinIterations
	}
	for _, kv := range configSets {
		k, v, _ := strings.Cut(kv, "=")
		if err := cfg.Set(k, v); err != nil {
			return appliance.Config{}, err
		}
	}
	cfg.Topics = []appliance.TopicConfig{
		{Name: "load", Kind: appliance.KindLog, CapacityBytes: 64 << 20, MaxFrameBytes: 64 << 10, Mode: appliance.ModeReliable, Durable: true, Subscribers: 16},
		{Name: "ping", Kind: appliance.KindLog, CapacityBytes: 1 << 20, MaxFrameBytes: 4096, Mode: appliance.ModeReliable, Subscribers: 4},
		{Name: "pong", Kind: appliance.KindLog, CapacityBytes: 1 << 20, MaxFrameBytes: 4096, Mode: appliance.ModeReliable, Subscribers: 4},
	}
	return cfg, cfg.Validate()
}

func shmOf(cfg appliance.Config) shm.Options {
	return shm.Options{Base: cfg.Shm.Base, Namespace: cfg.Shm.Namespace}
}

// publishDurable publishes mixed 150-byte events at rate (open loop) for d
// and measures each from its intended publish time until the ring's
// durable position passes it. With spin the committer busy-spins
// (storage.wait = busy-spin) and the producer busy-polls the durable
// position, as each would on a core reserved for it: no futex wake-up is
// left on the path.
func (e *env) publishDurable(rate float64, d time.Duration, spin bool) (harness.Result, error) {
	np, err := e.startNodeProcess(func(c *appliance.Config) {
		if spin {
			c.Storage.Wait = appliance.WaitBusySpin
		}
	})
	if err != nil {
		return harness.Result{}, err
	}
	defer np.stop()
	cfg := np.cfg
	pub, err := ring.OpenPublisher(shmOf(cfg), "load", ring.PublisherOptions{BackPressureTimeout: 10 * time.Second})
	if err != nil {
		return harness.Result{}, err
	}
	defer pub.Close()
	frames, err := appliance.LoadGenFrames(1, 150, 1024)
	if err != nil {
		return harness.Result{}, err
	}
	total := int(rate*d.Seconds()) + 1
	type pending struct {
		end      uint64
		intended int64
	}
	// One goroutine publishes on schedule and, between publications, polls
	// the durable position (one load) to time the events it passed: like
	// a producer process that waits for durability, it is the only spinner
	// besides the committer.
	queue := make([]pending, total)
	h := harness.NewHistogram()
	lg := pub.Log()
	interval := float64(time.Second) / rate
	start := shm.Nanotime()
	before := harness.Mallocs()
	published, done := 0, 0
	deadline := start + int64(d) + int64(30*time.Second)
	for done < total {
		now := shm.Nanotime()
		if now > deadline {
			fmt.Fprintf(os.Stderr, "e2ebench: the node child when the run failed (goroutines and log):\n%s\n", np.dump())
			return harness.Result{}, fmt.Errorf("%d of %d events not durable 30 s after the run (%d published; durable position %d, published position %d)",
				total-done, total, published, lg.Durable(), lg.Published())
		}
		if published < total {
			intended := start + int64(float64(published)*interval)
			if now >= intended {
				if _, err := pub.Offer(frames[published%len(frames)]); err != nil {
					return harness.Result{}, err
				}
				queue[published] = pending{end: pub.Position(), intended: intended}
				published++
				continue
			}
		}
		if done < published {
			if durable := lg.Durable(); durable >= queue[done].end {
				now = shm.Nanotime()
				for done < published && queue[done].end <= durable {
					h.Record(now - queue[done].intended)
					done++
				}
				continue
			}
			// Wait for durability (the ring's spin-then-park wait) until
			// the next event is due, like a producer that waits for it.
			wait := time.Second
			if published < total {
				wait = time.Duration(start + int64(float64(published)*interval) - now)
			}
			if wait > 0 {
				if spin {
					// Busy-poll the durable word (one load a PAUSE) until it
					// moves or the next event is due: a producer on a core
					// of its own learns of durability without a wake-up.
					for end, until := queue[done].end, now+int64(wait); lg.Durable() < end && shm.Nanotime() < until; {
						shm.Pause()
					}
				} else {
					_ = lg.WaitDurable(queue[done].end, wait)
				}
			}
			continue
		}
		if left := start + int64(float64(published)*interval) - now; left > int64(2*time.Millisecond) {
			time.Sleep(time.Duration(left) - time.Millisecond)
		} else {
			shm.Pause()
		}
	}
	elapsed := time.Duration(shm.Nanotime() - start)
	r := harness.Result{OpsPerSec: float64(total) / elapsed.Seconds(), AllocsPerOp: harness.AllocsPerOp(before, int64(total))}
	h.Fill(&r)
	r.Notes = fmt.Sprintf("offered %.0f events/s open loop, 150-byte mixed events, latency from intended publish to durable position", rate)
	if spin {
		r.Notes += "; committer busy-spins (storage.wait = busy-spin) and the producer busy-polls the durable position: the reserved-core configuration, here on 2 shared vCPUs"
	}
	return r, nil
}

// ingest publishes as fast as the reliable ring takes events, waiting for
// durability with a window of most of the ring, for d, and counts the
// events acknowledged durable (the appliance runs in its own process).
func (e *env) ingest(d time.Duration) (harness.Result, error) {
	np, err := e.startNodeProcess()
	if err != nil {
		return harness.Result{}, err
	}
	defer np.stop()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	st, err := appliance.RunLoadGen(ctx, appliance.LoadGenConfig{Shm: shmOf(np.cfg), Topic: "load", SizeBytes: 150, Seed: 3,
		WaitDurable: true, Window: 200_000})
	if err != nil && ctx.Err() == nil {
		return harness.Result{}, err
	}
	r := harness.Result{OpsPerSec: float64(st.Acked) / st.Duration.Seconds()}
	r.BytesPerSec = r.OpsPerSec * avgFrameBytes()
	r.Notes = fmt.Sprintf("100-200 B mixed events (avg %.0f B) acknowledged durable by one producer process (window 200000 events) from the appliance process; 2 vCPUs shared by both",
		avgFrameBytes())
	return r, nil
}

func avgFrameBytes() float64 {
	frames, _ := appliance.LoadGenFrames(3, 150, 1024)
	total := 0
	for _, f := range frames {
		total += len(f)
	}
	return float64(total) / float64(len(frames))
}

// floorFile creates a preallocated, zero-written 64 MiB file opened
// O_DIRECT|O_DSYNC, as WAL segments are.
func (e *env) floorFile() (vfs.File, func(), error) {
	dir, err := freshDir(e.root, "floor")
	if err != nil {
		return nil, nil, err
	}
	path := filepath.Join(dir, "floor")
	f, err := vfs.Default.Open(path, vfs.FlagWrite|vfs.FlagCreate|vfs.FlagDirect)
	if err != nil {
		return nil, nil, err
	}
	zero := vfs.AlignedBuffer(1 << 20)
	for off := int64(0); off < floorFileBytes; off += int64(len(zero)) {
		if _, err := f.WriteAt(zero, off); err != nil {
			f.Close()
			return nil, nil, err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, nil, err
	}
	f.Close()
	f, err = vfs.Default.Open(path, vfs.FlagWrite|vfs.FlagDirect|vfs.FlagDSync)
	if err != nil {
		return nil, nil, err
	}
	if !f.Direct() {
		f.Close()
		return nil, nil, fmt.Errorf("O_DIRECT refused on %s", dir)
	}
	return f, func() { f.Close(); os.RemoveAll(dir) }, nil
}

const floorFileBytes = 64 << 20

// floorOpenLoop issues 4 KiB O_DIRECT|O_DSYNC writes paced at rate and
// records each write's own duration: the device's latency for one commit
// at the same offered load (a write that falls behind schedule is issued
// at once, and its wait is not charged to it: this is the device's service
// time, the floor under any commit).
func (e *env) floorOpenLoop(rate float64, d time.Duration) (harness.Result, error) {
	f, done, err := e.floorFile()
	if err != nil {
		return harness.Result{}, err
	}
	defer done()
	buf := vfs.AlignedBuffer(vfs.BlockSize)
	buf[0] = 1
	h := harness.NewHistogram()
	interval := float64(time.Second) / rate
	total := int(rate * d.Seconds())
	start := shm.Nanotime()
	var off int64
	for i := 0; i < total; i++ {
		intended := start + int64(float64(i)*interval)
		for {
			left := intended - shm.Nanotime()
			if left <= 0 {
				break
			}
			if left > int64(2*time.Millisecond) {
				time.Sleep(time.Duration(left) - time.Millisecond)
			} else {
				shm.Pause()
			}
		}
		t0 := shm.Nanotime()
		if _, err := f.WriteAt(buf, off); err != nil {
			return harness.Result{}, err
		}
		h.Record(shm.Nanotime() - t0)
		off = (off + vfs.BlockSize) % floorFileBytes
	}
	r := harness.Result{OpsPerSec: float64(total) / time.Duration(shm.Nanotime()-start).Seconds()}
	h.Fill(&r)
	r.Notes = fmt.Sprintf("paced at %.0f writes/s, one 4 KiB O_DIRECT|O_DSYNC pwrite each; latency = the write's own duration (device service time)", rate)
	return r, nil
}

// floorSequential writes 1 MiB O_DIRECT|O_DSYNC blocks back to back, four
// in flight (as the WAL pipelines), and reports the events per second that
// bandwidth could hold at the WAL footprint of a 150-byte event.
func (e *env) floorSequential(d time.Duration) (harness.Result, error) {
	f, done, err := e.floorFile()
	if err != nil {
		return harness.Result{}, err
	}
	defer done()
	const size, inflight = 1 << 20, 4
	var next atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	var written atomic.Int64
	errs := make([]error, inflight)
	start := time.Now()
	for w := range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := vfs.AlignedBuffer(size)
			buf[0] = 1
			for !stop.Load() {
				off := (next.Add(1) % (floorFileBytes / size)) * size
				if _, err := f.WriteAt(buf, off); err != nil {
					errs[w] = err
					return
				}
				written.Add(size)
			}
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return harness.Result{}, err
		}
	}
	bps := float64(written.Load()) / time.Since(start).Seconds()
	perEvent := float64(wal.RecordHeaderSize + schema.AlignedSize(8+int(avgFrameBytes())))
	return harness.Result{OpsPerSec: bps / perEvent, BytesPerSec: bps / perEvent * avgFrameBytes(),
		Notes: fmt.Sprintf("1 MiB O_DIRECT|O_DSYNC writes, 4 in flight: %.0f MB/s, at %.0f WAL bytes per event", bps/1e6, perEvent)}, nil
}
