// Command lsmbench compares Tapewire's LSM engine (lsm/) with Pebble (tuned
// like CockroachDB: 256 MiB cache, 64 MiB memtables, 32 KiB blocks, 10-bit
// bloom) and Badger on the workloads of issue 5:
//
//	fillseq           N sequential 16-byte keys, 100-byte values, no sync
//	fillrandom        the same keys in random order
//	readrandom-1g/2g  N random gets after a fill, from 1 and 2 goroutines
//	scan              1000-entry range scans from random starts
//	readwhilewriting  random gets while a writer fills at a fixed rate
//	fillsync-1w/16w/64w  synced single-key writes from 1, 16 and 64 writers
//
// Fills without sync compare the engines without a log of their own:
// Tapewire in ExternalLog mode (how the appliance runs it: the LSM is fed
// from the appliance's durable WAL) against Pebble with DisableWAL and Badger
// without synced writes (Badger cannot turn its value log off). fillsync
// compares the full durable write path: Tapewire in Standalone mode with its
// own O_DIRECT group-commit wal.Log, Pebble with its WAL and Sync, Badger
// with SyncWrites.
//
// Usage: go run ./cmd/lsmbench [-quick] [-json PATH] [-dir DIR] [-only REGEXP]
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapewire/tapewire/bench/internal/harness"
)

const valueBytes = 100

func key(i uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, i)
	binary.BigEndian.PutUint64(k[8:], i*0x9E3779B97F4A7C15)
	return k
}

func value(i uint64) []byte {
	v := make([]byte, valueBytes)
	x := i*0x9E3779B97F4A7C15 + 1
	for j := range v {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		v[j] = byte(x)
	}
	return v
}

type system struct {
	name string
	// openFill opens an engine for the no-sync fills and reads.
	openFill func(dir string) (engine, error)
	// openSync opens an engine for synced writes.
	openSync func(dir string) (engine, error)
}

var systems = []system{
	{"tapewire",
		func(d string) (engine, error) { return openTapewire(d, true) },
		func(d string) (engine, error) { return openTapewire(d, false) }},
	{"pebble",
		func(d string) (engine, error) { return openPebble(d, true) },
		func(d string) (engine, error) { return openPebble(d, false) }},
	{"badger",
		func(d string) (engine, error) { return openBadger(d, false) },
		func(d string) (engine, error) { return openBadger(d, true) }},
}

func main() {
	root := flag.String("dir", "", "work directory on the disk under test (default: a new directory under $TMPDIR, which must not be tmpfs)")
	b := harness.New("lsmbench")
	n := b.Size(1_000_000, 100_000)
	workRoot := *root
	if workRoot == "" {
		var err error
		if workRoot, err = os.MkdirTemp("", "lsmbench-"); err != nil {
			fmt.Fprintln(os.Stderr, "lsmbench:", err)
			os.Exit(1)
		}
		defer os.RemoveAll(workRoot)
	}
	keys := make([][]byte, n)
	vals := make([][]byte, n)
	for i := range keys {
		keys[i] = key(uint64(i))
		vals[i] = value(uint64(i))
	}
	perm := rand.New(rand.NewPCG(1, 2)).Perm(n)

	fill := func(name string, order []int) {
		cs := make([]harness.Contender, 0, len(systems))
		for _, s := range systems {
			cs = append(cs, harness.Contender{System: s.name, Run: func(int) (harness.Result, error) {
				return runFill(workRoot, s, keys, vals, order)
			}})
		}
		b.Interleave(name, cs...)
	}
	seq := make([]int, n)
	for i := range seq {
		seq[i] = i
	}
	fill("fillseq", seq)
	fill("fillrandom", perm)

	// Read workloads share one filled database per system.
	needReads := b.Wants("readrandom-1g") || b.Wants("readrandom-2g") || b.Wants("scan") || b.Wants("readwhilewriting")
	if needReads {
		filled := make(map[string]engine)
		var openErr error
		for _, s := range systems {
			e, err := filledEngine(workRoot, s, keys, vals)
			if err != nil {
				b.Fail("read set-up/"+s.name, err)
				openErr = err
				continue
			}
			filled[s.name] = e
		}
		readers := func(name string, run func(e engine, repeat int) (harness.Result, error)) {
			var cs []harness.Contender
			for _, s := range systems {
				if e := filled[s.name]; e != nil {
					cs = append(cs, harness.Contender{System: s.name, Run: func(r int) (harness.Result, error) { return run(e, r) }})
				}
			}
			b.Interleave(name, cs...)
		}
		gets := b.Size(1_000_000, 200_000)
		readers("readrandom-1g", func(e engine, r int) (harness.Result, error) { return runReads(e, keys, gets, 1, uint64(r)) })
		readers("readrandom-2g", func(e engine, r int) (harness.Result, error) { return runReads(e, keys, gets, 2, uint64(r)) })
		scans := b.Size(5_000, 300)
		readers("scan", func(e engine, r int) (harness.Result, error) { return runScans(e, keys, scans, uint64(r)) })
		d := b.Duration(5*time.Second, time.Second)
		next := uint64(n)
		readers("readwhilewriting", func(e engine, r int) (harness.Result, error) {
			res, written, err := runReadWhileWriting(e, keys, d, next, uint64(r))
			next += written
			return res, err
		})
		for name, e := range filled {
			if err := e.close(); err != nil && openErr == nil {
				b.Fail("close/"+name, err)
			}
		}
	}

	for _, writers := range []int{1, 16, 64} {
		name := fmt.Sprintf("fillsync-%dw", writers)
		d := b.Duration(3*time.Second, 500*time.Millisecond)
		var cs []harness.Contender
		for _, s := range systems {
			cs = append(cs, harness.Contender{System: s.name, Run: func(int) (harness.Result, error) {
				return runFillSync(workRoot, s, writers, d)
			}})
		}
		b.Interleave(name, cs...)
	}
	fmt.Fprintf(os.Stderr, "lsmbench: digest of everything read: %d\n", readChecksum.Load())
	b.Finish()
}

func runFill(root string, s system, keys, vals [][]byte, order []int) (harness.Result, error) {
	dir, err := tempDir(root, s.name)
	if err != nil {
		return harness.Result{}, err
	}
	defer os.RemoveAll(dir)
	e, err := s.openFill(dir)
	if err != nil {
		return harness.Result{}, err
	}
	h := harness.NewHistogram()
	before := harness.Mallocs()
	start := time.Now()
	var bytes int64
	for _, i := range order {
		t0 := time.Now()
		if err := e.put(keys[i], vals[i]); err != nil {
			e.close()
			return harness.Result{}, fmt.Errorf("put %d: %w", i, err)
		}
		h.Record(int64(time.Since(t0)))
		bytes += int64(len(keys[i]) + len(vals[i]))
	}
	elapsed := time.Since(start)
	r := harness.Result{
		OpsPerSec:   float64(len(order)) / elapsed.Seconds(),
		BytesPerSec: float64(bytes) / elapsed.Seconds(),
		AllocsPerOp: harness.AllocsPerOp(before, int64(len(order))),
		Notes:       fmt.Sprintf("%d keys", len(order)),
	}
	h.Fill(&r)
	return r, e.close()
}

func filledEngine(root string, s system, keys, vals [][]byte) (engine, error) {
	dir, err := tempDir(root, s.name+"-read")
	if err != nil {
		return nil, err
	}
	e, err := s.openFill(dir)
	if err != nil {
		return nil, err
	}
	for i := range keys {
		if err := e.put(keys[i], vals[i]); err != nil {
			e.close()
			return nil, err
		}
	}
	if err := e.settle(); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func runReads(e engine, keys [][]byte, gets, goroutines int, seed uint64) (harness.Result, error) {
	hs := make([]*harness.Histogram, goroutines)
	errs := make([]error, goroutines)
	var wg sync.WaitGroup
	runtime.GC()
	before := harness.Mallocs()
	start := time.Now()
	for g := 0; g < goroutines; g++ {
		hs[g] = harness.NewHistogram()
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			h := hs[g]
			var digest uint64
			defer func() { readChecksum.Add(digest) }()
			for i := 0; i < gets/goroutines; i++ {
				k := keys[rng.IntN(len(keys))]
				t0 := time.Now()
				n, found, err := e.get(k)
				h.Record(int64(time.Since(t0)))
				digest += uint64(n)
				if err != nil || !found {
					errs[g] = fmt.Errorf("get %x: found=%v err=%v", k, found, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	elapsed := time.Since(start)
	allocs := harness.AllocsPerOp(before, int64(gets))
	for _, err := range errs {
		if err != nil {
			return harness.Result{}, err
		}
	}
	for _, h := range hs[1:] {
		hs[0].Merge(h)
	}
	r := harness.Result{OpsPerSec: float64(gets) / elapsed.Seconds(), AllocsPerOp: allocs,
		Notes: fmt.Sprintf("%d gets over %d keys, %d goroutines", gets, len(keys), goroutines)}
	hs[0].Fill(&r)
	return r, nil
}

func runScans(e engine, keys [][]byte, scans int, seed uint64) (harness.Result, error) {
	rng := rand.New(rand.NewPCG(seed, 7))
	h := harness.NewHistogram()
	before := harness.Mallocs()
	start := time.Now()
	entries := 0
	for i := 0; i < scans; i++ {
		k := keys[rng.IntN(len(keys)-1000)]
		t0 := time.Now()
		n, err := e.scan(k, 1000)
		h.Record(int64(time.Since(t0)))
		if err != nil || n != 1000 {
			return harness.Result{}, fmt.Errorf("scan from %x: %d entries, err=%v", k, n, err)
		}
		entries += n
	}
	elapsed := time.Since(start)
	r := harness.Result{OpsPerSec: float64(scans) / elapsed.Seconds(),
		BytesPerSec: float64(entries*(16+valueBytes)) / elapsed.Seconds(),
		AllocsPerOp: harness.AllocsPerOp(before, int64(scans)),
		Notes:       "ops are 1000-entry scans"}
	h.Fill(&r)
	return r, nil
}

// writeRatePerSec is the writer's offered rate in readwhilewriting.
const writeRatePerSec = 20_000

func runReadWhileWriting(e engine, keys [][]byte, d time.Duration, next, seed uint64) (harness.Result, uint64, error) {
	stop := make(chan struct{})
	var written atomic.Uint64
	var writeErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		interval := time.Second / writeRatePerSec
		start := time.Now()
		for i := uint64(0); ; i++ {
			for time.Since(start) < time.Duration(i)*interval {
				select {
				case <-stop:
					return
				default:
				}
				runtime.Gosched()
			}
			if err := e.put(key(next+i), value(next+i)); err != nil {
				writeErr = err
				return
			}
			written.Add(1)
		}
	}()
	rng := rand.New(rand.NewPCG(seed, 11))
	h := harness.NewHistogram()
	start := time.Now()
	reads := 0
	var readErr error
	for time.Since(start) < d {
		k := keys[rng.IntN(len(keys))]
		t0 := time.Now()
		n, found, err := e.get(k)
		h.Record(int64(time.Since(t0)))
		readChecksum.Add(uint64(n))
		if err != nil || !found {
			readErr = fmt.Errorf("get %x: found=%v err=%v", k, found, err)
			break
		}
		reads++
	}
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	if readErr != nil {
		return harness.Result{}, written.Load(), readErr
	}
	if writeErr != nil {
		return harness.Result{}, written.Load(), writeErr
	}
	r := harness.Result{OpsPerSec: float64(reads) / elapsed.Seconds(),
		Notes: fmt.Sprintf("writer offered %d/s, achieved %.0f/s", writeRatePerSec, float64(written.Load())/elapsed.Seconds())}
	h.Fill(&r)
	return r, written.Load(), nil
}

func runFillSync(root string, s system, writers int, d time.Duration) (harness.Result, error) {
	dir, err := tempDir(root, s.name+"-sync")
	if err != nil {
		return harness.Result{}, err
	}
	defer os.RemoveAll(dir)
	e, err := s.openSync(dir)
	if err != nil {
		return harness.Result{}, err
	}
	hs := make([]*harness.Histogram, writers)
	errs := make([]error, writers)
	counts := make([]int, writers)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := 0; w < writers; w++ {
		hs[w] = harness.NewHistogram()
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := uint64(0); time.Now().Before(deadline); i++ {
				id := uint64(w)<<40 | i
				t0 := time.Now()
				if err := e.putSync(key(id), value(id)); err != nil {
					errs[w] = err
					return
				}
				hs[w].Record(int64(time.Since(t0)))
				counts[w]++
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := 0
	for w := range counts {
		if errs[w] != nil {
			e.close()
			return harness.Result{}, errs[w]
		}
		total += counts[w]
		if w > 0 {
			hs[0].Merge(hs[w])
		}
	}
	r := harness.Result{OpsPerSec: float64(total) / elapsed.Seconds(), Notes: fmt.Sprintf("%d writers, one key per synced batch", writers)}
	hs[0].Fill(&r)
	return r, e.close()
}
