package wal

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapewire/tapewire/vfs"
)

// gateFS holds every write to a file opened with FlagDSync (frame writes)
// while gated: the write is announced on started and waits for a token on
// release. Other writes (segment preparation) pass.
type gateFS struct {
	vfs.FS
	gated   atomic.Bool
	started chan int64 // file offsets of held writes, in the order they arrived
	release chan struct{}
}

func newGateFS(inner vfs.FS) *gateFS {
	return &gateFS{FS: inner, started: make(chan int64, 1024), release: make(chan struct{}, 1024)}
}

func (fs *gateFS) Open(name string, flags vfs.Flag) (vfs.File, error) {
	f, err := fs.FS.Open(name, flags)
	if err != nil || flags&vfs.FlagDSync == 0 {
		return f, err
	}
	return &gateFile{File: f, fs: fs}, nil
}

type gateFile struct {
	vfs.File
	fs *gateFS
}

func (f *gateFile) WriteAt(p []byte, off int64) (int, error) {
	if f.fs.gated.Load() {
		f.fs.started <- off
		<-f.fs.release
	}
	return f.File.WriteAt(p, off)
}

// awaitWrite waits for the next held write to start.
func (fs *gateFS) awaitWrite(t *testing.T, what string) {
	t.Helper()
	select {
	case <-fs.started:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no frame write started", what)
	}
}

// openGated opens a log on a gateFS over a CrashFS, with the first segment
// active and its spare prepared, and then gates frame writes.
func openGated(t *testing.T, mutate func(*Options)) (*Log, *gateFS) {
	t.Helper()
	fs := newGateFS(vfs.NewCrashFS(1))
	opts := crashOptions(fs)
	opts.MaxInFlightFrames = 4
	if mutate != nil {
		mutate(&opts)
	}
	l, err := Open("/wal", opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(context.Background(), []Record{{Payload: []byte("first")}}); err != nil {
		t.Fatal(err)
	}
	fs.gated.Store(true)
	return l, fs
}

func (l *Log) framesSealed() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats.Frames
}

// TestCohortSealedWhileFramesInFlight: the appenders an acknowledgement
// woke form the next group, which is written as soon as the last of them
// has appended, while other frames are still in flight, instead of waiting
// for PipelineFillBytes or for the pipeline to drain (which serialized 16
// synchronous writers onto one frame in flight at a time).
func TestCohortSealedWhileFramesInFlight(t *testing.T) {
	l, fs := openGated(t, nil)
	defer func() {
		fs.gated.Store(false)
		for range 8 {
			fs.release <- struct{}{}
		}
		l.Close()
	}()
	ctx := context.Background()
	// Frame 1: one synchronous appender, written by the caller itself.
	x1 := make(chan LSN)
	go func() {
		lsn, err := l.Append(ctx, []Record{{Payload: []byte("x1")}})
		if err != nil {
			t.Error(err)
		}
		x1 <- lsn
	}()
	fs.awaitWrite(t, "frame 1")
	// A small record while frame 1 is in flight waits: nothing was
	// acknowledged yet, it is below PipelineFillBytes.
	if _, err := l.AppendAsync([]Record{{Payload: []byte("a1")}}); err != nil {
		t.Fatal(err)
	}
	if got := l.framesSealed(); got != 2 {
		t.Fatalf("%d frames sealed, want 2: a small group was sealed while a frame was in flight and no cohort was due", got)
	}
	// Frame 1 completes: its appender is woken (a cohort of one); the
	// waiting group is written once the pipeline is empty (frame 2).
	fs.release <- struct{}{}
	<-x1
	fs.awaitWrite(t, "frame 2 (the group that waited)")
	// The woken appender comes back: its cohort is complete, so its group
	// is sealed and written while frame 2 is still held.
	done := make(chan error, 1)
	go func() {
		_, err := l.Append(ctx, []Record{{Payload: []byte("x2")}})
		done <- err
	}()
	fs.awaitWrite(t, "frame 3 (the returning cohort, with frame 2 in flight)")
	if m := l.Metrics(); m.InFlightFrames != 2 {
		t.Fatalf("%d frames in flight, want 2", m.InFlightFrames)
	}
	fs.release <- struct{}{}
	fs.release <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r, err := l.NewReader(1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []string
	for _, rec := range readAll(t, r) {
		got = append(got, string(rec.Payload))
	}
	if want := []string{"first", "x1", "a1", "x2"}; len(got) != len(want) || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		t.Fatalf("log holds %q, want %q", got, want)
	}
}

// TestAppendThatDoesNotFitIsNotHeldBack: an append too big for the room
// left in the filling group gets that group sealed at once, even below
// PipelineFillBytes with frames in flight, instead of waiting for the
// pipeline to drain.
func TestAppendThatDoesNotFitIsNotHeldBack(t *testing.T) {
	l, fs := openGated(t, func(o *Options) { o.PipelineFillBytes = 8 << 10 })
	defer func() {
		fs.gated.Store(false)
		for range 8 {
			fs.release <- struct{}{}
		}
		l.Close()
	}()
	if _, err := l.AppendAsync([]Record{{Payload: []byte("one")}}); err != nil {
		t.Fatal(err)
	}
	fs.awaitWrite(t, "frame 1")
	if _, err := l.AppendAsync([]Record{{Payload: make([]byte, 2000)}}); err != nil {
		t.Fatal(err)
	}
	done := make(chan LSN, 1)
	go func() {
		// MaxGroupBytes is 8 KiB: 7000 bytes do not fit next to 2000.
		lsn, err := l.AppendAsync([]Record{{Payload: make([]byte, 7000)}})
		if err != nil {
			t.Error(err)
		}
		done <- lsn
	}()
	fs.awaitWrite(t, "frame 2 (sealed for the append that did not fit)")
	lsn := <-done
	for range 3 {
		fs.release <- struct{}{}
	}
	if err := l.WaitDurable(context.Background(), lsn); err != nil {
		t.Fatal(err)
	}
}

// TestWakeManyWaiters: one acknowledgement releasing more waiters than one
// wake batch wakes every one of them.
func TestWakeManyWaiters(t *testing.T) {
	l, fs := openGated(t, func(o *Options) { o.MaxInFlightFrames = 1 })
	const n = 3*wakeBatchSize + 5
	var wg sync.WaitGroup
	lsns := make(chan LSN, n)
	ctx := context.Background()
	go func() {
		// Frame 1 holds the pipeline; everyone else queues behind it.
		if _, err := l.Append(ctx, []Record{{Payload: []byte("head")}}); err != nil {
			t.Error(err)
		}
	}()
	fs.awaitWrite(t, "frame 1")
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lsn, err := l.Append(ctx, []Record{{Payload: []byte("w")}})
			if err != nil {
				t.Error(err)
				return
			}
			lsns <- lsn
		}()
	}
	for {
		l.mu.Lock()
		queued := l.waiterLen
		l.mu.Unlock()
		if queued == n+1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	fs.gated.Store(false)
	fs.release <- struct{}{}
	wg.Wait()
	close(lsns)
	seen := map[LSN]bool{}
	for lsn := range lsns {
		if seen[lsn] || lsn > l.DurableLSN() {
			t.Fatalf("LSN %d returned twice or before it was durable (durable %d)", lsn, l.DurableLSN())
		}
		seen[lsn] = true
	}
	if len(seen) != n {
		t.Fatalf("%d of %d appenders returned", len(seen), n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestAppendContextEnds: an Append whose context ends while its frame is
// in flight returns the context's error (the record may still become
// durable, and here does), and the log goes on serving appenders.
func TestAppendContextEnds(t *testing.T) {
	l, fs := openGated(t, nil)
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		lsn LSN
		err error
	}
	// A frame in flight, written by a flusher: the next Append waits for
	// it instead of writing its own frame (a caller that writes its frame
	// itself returns only when that write does).
	if _, err := l.AppendAsync([]Record{{Payload: []byte("head")}}); err != nil {
		t.Fatal(err)
	}
	fs.awaitWrite(t, "the frame ahead")
	res := make(chan result, 1)
	go func() {
		lsn, err := l.Append(ctx, []Record{{Payload: []byte("cancelled")}})
		res <- result{lsn, err}
	}()
	cancel()
	r := <-res
	if !errors.Is(r.err, context.Canceled) || r.lsn == 0 {
		t.Fatalf("append with a cancelled context: LSN %d, %v", r.lsn, r.err)
	}
	wctx, wcancel := context.WithCancel(context.Background())
	wcancel()
	if err := l.WaitDurable(wctx, r.lsn); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitDurable with a cancelled context while the frame is held: %v", err)
	}
	fs.gated.Store(false)
	fs.release <- struct{}{}
	if err := l.WaitDurable(context.Background(), r.lsn); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := l.Append(context.Background(), []Record{{Payload: payloadFor(1, i)}}); err != nil {
			t.Fatal(err)
		}
	}
}
