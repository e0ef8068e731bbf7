package wal

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"testing"

	"github.com/tapewire/tapewire/vfs"
)

func long() bool { return os.Getenv("TAPEWIRE_LONG") == "1" }

// workload appends from several writers until done or the log fails, and
// returns what was acknowledged: LSN → payload.
type workload struct {
	writers, perWriter, batch int
	truncate                  bool // call TruncateBefore as it goes
}

type ackLog struct {
	mu    sync.Mutex
	acked map[LSN][]byte
}

func (a *ackLog) add(lsn LSN, recs []Record) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range recs {
		a.acked[lsn-LSN(len(recs)-1-i)] = recs[i].Payload
	}
}

// run drives l; it returns the acknowledged records and the LSN below which
// the log was truncated.
func (w workload) run(l *Log) (*ackLog, LSN) {
	acks := &ackLog{acked: map[LSN][]byte{}}
	var truncated LSN
	var wg sync.WaitGroup
	for wi := range w.writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for n < w.perWriter {
				k := 1 + (n % w.batch)
				recs := make([]Record, 0, k)
				for range k {
					recs = append(recs, Record{Type: uint16(wi), Payload: payloadFor(wi, n)})
					n++
				}
				lsn, err := l.Append(context.Background(), recs)
				if err != nil {
					return
				}
				acks.add(lsn, recs)
				if w.truncate && wi == 0 && n%16 == 0 && lsn > 40 {
					// Count the attempt: a TruncateBefore that fails (at its
					// directory sync, say) may still have removed segments.
					acks.mu.Lock()
					truncated = max(truncated, lsn-40)
					acks.mu.Unlock()
					_ = l.TruncateBefore(lsn - 40)
				}
			}
		}()
	}
	wg.Wait()
	return acks, truncated
}

// checkRecovered opens the log in fs and checks the crash-safety contract:
// not corrupt, every acknowledged record present with its payload, and the
// recovered log an exact prefix of what was appended: per writer its
// records 0..k in order, nothing else.
func checkRecovered(t *testing.T, fs vfs.FS, opts Options, acks *ackLog, truncated LSN, writers int, what string) {
	t.Helper()
	// Open's deferred scan (the appliance's) decides as the full scan
	// does on every crash state; checked before Open repairs the tail.
	checkDeferredAgrees(t, fs, what)
	opts.FS = fs
	l, err := Open("/wal", opts)
	if err != nil {
		t.Fatalf("%s: reopen: %v", what, err)
	}
	defer l.Close()
	rep := l.Recovery()
	r, err := l.NewReader(truncated)
	if err != nil {
		t.Fatalf("%s: reader: %v (recovery %+v)", what, err, rep.Decision)
	}
	defer r.Close()
	recs := readAll(t, r)
	byLSN := map[LSN][]byte{}
	nextPerWriter := make([]int, writers)
	seenWriter := make([]bool, writers)
	for i, rec := range recs {
		if i > 0 && rec.LSN != recs[i-1].LSN+1 {
			t.Fatalf("%s: LSN %d follows %d", what, rec.LSN, recs[i-1].LSN)
		}
		byLSN[rec.LSN] = rec.Payload
		w := int(rec.Type)
		if w >= writers || len(rec.Payload) < 8 {
			t.Fatalf("%s: LSN %d: record of unknown writer %d", what, rec.LSN, w)
		}
		n := int(binary.LittleEndian.Uint32(rec.Payload[4:]))
		if string(payloadFor(w, n)) != string(rec.Payload) {
			t.Fatalf("%s: LSN %d: payload is not writer %d record %d", what, rec.LSN, w, n)
		}
		if seenWriter[w] && n != nextPerWriter[w] {
			t.Fatalf("%s: LSN %d: writer %d record %d after record %d: not a prefix", what, rec.LSN, w, n, nextPerWriter[w]-1)
		}
		seenWriter[w] = true
		nextPerWriter[w] = n + 1
	}
	for lsn, p := range acks.acked {
		if lsn < truncated {
			continue
		}
		got, ok := byLSN[lsn]
		if !ok {
			t.Fatalf("%s: acknowledged LSN %d lost (recovered %d records, verdict %v, last LSN %d)", what, lsn, len(recs), rep.Decision.Verdict, rep.LastLSN)
		}
		if string(got) != string(p) {
			t.Fatalf("%s: acknowledged LSN %d has a different payload", what, lsn)
		}
	}
	// The log accepts appends again and closes cleanly.
	if _, err := l.Append(context.Background(), []Record{{Type: 0, Payload: []byte("post-recovery")}}); err != nil {
		t.Fatalf("%s: append after recovery: %v", what, err)
	}
}

func crashOptions(fs vfs.FS) Options {
	o := smallOptions(fs)
	o.SegmentSizeBytes = 32 << 10
	o.MaxGroupBytes = 8 << 10
	return o
}

// TestCrashAtEveryKthOp crashes the file system at operation k for k across
// the whole run (Open, appends, rotations, truncation, Close), and checks
// recovery each time.
func TestCrashAtEveryKthOp(t *testing.T) {
	forGeometries(t, []string{"default", "ring", "direct"}, func(t *testing.T) {
		wl := workload{writers: 4, perWriter: 40, batch: 3, truncate: true}
		// Count the operations of an uncrashed run.
		probe := vfs.NewCrashFS(0)
		l, err := Open("/wal", crashOptions(probe))
		if err != nil {
			t.Fatal(err)
		}
		wl.run(l)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		total := probe.Ops()
		runs := int64(60)
		if long() {
			runs = total
		}
		step := max(1, total/runs)
		t.Logf("%d operations per run, crashing every %d", total, step)
		for k := int64(0); k <= total+step; k += step {
			fs := vfs.NewCrashFS(uint64(k))
			fs.CrashAtOp(k)
			var acks = &ackLog{acked: map[LSN][]byte{}}
			var truncated LSN
			if l, err := Open("/wal", crashOptions(fs)); err == nil {
				acks, truncated = wl.run(l)
				l.Close()
			}
			fs.Crash()
			checkRecovered(t, fs.Image(), crashOptions(nil), acks, truncated, wl.writers, "crash at op "+itoa(k))
		}
	})
}

// TestCrashTwice crashes during the recovery of a crashed log.
func TestCrashTwice(t *testing.T) {
	forGeometries(t, []string{"default", "ring", "direct"}, func(t *testing.T) {
		wl := workload{writers: 3, perWriter: 30, batch: 2}
		for seed := range uint64(12) {
			fs := vfs.NewCrashFS(seed)
			fs.CrashAtOp(200 + int64(seed)*37)
			acks := &ackLog{acked: map[LSN][]byte{}}
			if l, err := Open("/wal", crashOptions(fs)); err == nil {
				acks, _ = wl.run(l)
				l.Close()
			}
			fs.Crash()
			img := fs.Image()
			img.CrashAtOp(img.Ops() + 3 + int64(seed)) // crash again inside recovery or just after
			if l, err := Open("/wal", crashOptions(img)); err == nil {
				l.Close()
			}
			img.Crash()
			checkRecovered(t, img.Image(), crashOptions(nil), acks, 0, wl.writers, "second crash seed "+itoa(int64(seed)))
		}
	})
}

func itoa(n int64) string { return strconvItoa(n) }

// shuffleFS delays every frame write (a file opened with FlagDSync) by a
// random number of yields before and after the inner write, so that many
// frames are in flight at once and complete, land and return in any order.
type shuffleFS struct {
	vfs.FS
	mu  sync.Mutex
	rng *rand.Rand
}

func (fs *shuffleFS) Open(name string, flags vfs.Flag) (vfs.File, error) {
	f, err := fs.FS.Open(name, flags)
	if err != nil || flags&vfs.FlagDSync == 0 {
		return f, err
	}
	return &shuffleFile{File: f, fs: fs}, nil
}

type shuffleFile struct {
	vfs.File
	fs *shuffleFS
}

func (f *shuffleFile) yields() {
	f.fs.mu.Lock()
	n := f.fs.rng.IntN(60)
	f.fs.mu.Unlock()
	for range n {
		runtime.Gosched()
	}
}

func (f *shuffleFile) WriteAt(p []byte, off int64) (int, error) {
	f.yields()
	n, err := f.File.WriteAt(p, off)
	f.yields()
	return n, err
}

// TestCrashDeepPipeline: with up to 16 frames in flight, completing in any
// order (the default depth is 8), a crash at any point recovers every
// acknowledged record and nothing unacknowledged reads as corruption.
func TestCrashDeepPipeline(t *testing.T) {
	wl := workload{writers: 24, perWriter: 12, batch: 2, truncate: true}
	deep := func(fs vfs.FS) Options {
		o := crashOptions(fs)
		o.MaxInFlightFrames = MaxInFlightFramesLimit
		o.PipelineFillBytes = -1 // pipeline every group: the deepest pipeline
		return o
	}
	// How deep the pipeline gets depends on scheduling: probe until it
	// went deep once (a loaded machine overlaps fewer writes).
	var probe *vfs.CrashFS
	peak := 0
	for try := uint64(0); try < 10 && peak < 6; try++ {
		probe = vfs.NewCrashFS(try)
		l, err := Open("/wal", deep(&shuffleFS{FS: probe, rng: rand.New(rand.NewPCG(try, 1))}))
		if err != nil {
			t.Fatal(err)
		}
		wl.run(l)
		peak = max(peak, l.Metrics().PeakInFlightFrames)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if peak < 6 {
		t.Fatalf("the pipeline reached only %d frames in flight in 10 runs: the test does not exercise a deep pipeline", peak)
	}
	total := probe.Ops()
	runs := int64(40)
	if long() {
		runs = total
	}
	step := max(1, total/runs)
	t.Logf("%d operations per run, crashing every %d; up to %d frames were in flight", total, step, peak)
	for k := int64(0); k <= total+step; k += step {
		fs := vfs.NewCrashFS(uint64(k))
		fs.CrashAtOp(k)
		acks := &ackLog{acked: map[LSN][]byte{}}
		var truncated LSN
		if l, err := Open("/wal", deep(&shuffleFS{FS: fs, rng: rand.New(rand.NewPCG(uint64(k), 7))})); err == nil {
			acks, truncated = wl.run(l)
			l.Close()
		}
		fs.Crash()
		checkRecovered(t, fs.Image(), deep(nil), acks, truncated, wl.writers, "deep pipeline, crash at op "+itoa(k))
	}
}
