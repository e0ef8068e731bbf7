package lsmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	pvfs "github.com/cockroachdb/pebble/v2/vfs"

	"github.com/tapewire/tapewire/lsm"
	"github.com/tapewire/tapewire/vfs"
	"github.com/tapewire/tapewire/wal"
)

type optionSet struct {
	name string
	ours func(fs vfs.FS) lsm.Options
	// osFS runs ours on the real file system (mmap path) instead of memory.
	osFS bool
}

func thirdBytePartition(k []byte) uint64 {
	if len(k) < 3 {
		return 0
	}
	return uint64(k[2]) + 1
}

func smallWAL() wal.Options { return wal.Options{SegmentSizeBytes: 1 << 20, MaxGroupBytes: 256 << 10} }

var optionSets = []optionSet{
	{name: "tiny", ours: func(fs vfs.FS) lsm.Options {
		return lsm.Options{FS: fs, WAL: smallWAL(), MemTableSizeBytes: 64 << 10, BlockSizeBytes: 128, BlockRestartInterval: 2,
			TargetFileSizeBytes: 16 << 10, BaseLevelBytes: 32 << 10, LevelMultiplier: 2, L0CompactionTrigger: 2, L0StopWritesThreshold: 6}
	}},
	{name: "small-nobloom", ours: func(fs vfs.FS) lsm.Options {
		return lsm.Options{FS: fs, WAL: smallWAL(), MemTableSizeBytes: 128 << 10, BlockSizeBytes: 1024, BloomBitsPerKey: -1,
			TargetFileSizeBytes: 64 << 10, BaseLevelBytes: 128 << 10, LevelMultiplier: 3}
	}},
	{name: "external-log", ours: func(fs vfs.FS) lsm.Options {
		return lsm.Options{FS: fs, Durability: lsm.ExternalLog, MemTableSizeBytes: 64 << 10, BlockSizeBytes: 256,
			TargetFileSizeBytes: 16 << 10, BaseLevelBytes: 64 << 10, LevelMultiplier: 2, L0CompactionTrigger: 2}
	}},
	// The appliance's mode with Options.Partition: tables never span
	// partitions, moves go straight to the bottom, inserts use one cached
	// splice per partition. Keys k0000..k0299 fall into three partitions
	// by their third byte (monotonic, as the appliance's are).
	{name: "external-log-partitioned", ours: func(fs vfs.FS) lsm.Options {
		return lsm.Options{FS: fs, Durability: lsm.ExternalLog, MemTableSizeBytes: 64 << 10, BlockSizeBytes: 256,
			TargetFileSizeBytes: 16 << 10, BaseLevelBytes: 64 << 10, LevelMultiplier: 2, L0CompactionTrigger: 2,
			Partition: thirdBytePartition}
	}},
	{name: "defaults-os", osFS: true, ours: func(fs vfs.FS) lsm.Options {
		return lsm.Options{FS: fs, WAL: smallWAL(), MemTableSizeBytes: 256 << 10}
	}},
}

// harness drives both engines.
type harness struct {
	t        *testing.T
	rng      *rand.Rand
	fs       vfs.FS
	dir      string
	opts     lsm.Options
	ours     *lsm.DB
	pfs      pvfs.FS
	theirs   *pebble.DB
	snaps    []snapPair
	op       int
	trace    []string
	keySpace int
	// callerLog holds every batch in ExternalLog mode, LSN i+1 at index i:
	// the test plays the appliance, whose log is durable by construction.
	callerLog []*lsm.Batch
}

type snapPair struct {
	ours   *lsm.Snapshot
	theirs *pebble.Snapshot
}

func (h *harness) fatalf(format string, args ...any) {
	h.t.Helper()
	start := max(0, len(h.trace)-15)
	h.t.Fatalf("op %d: %s\nlast operations:\n  %s", h.op, fmt.Sprintf(format, args...), joinLines(h.trace[start:]))
}

func joinLines(ss []string) string {
	var b bytes.Buffer
	for i, s := range ss {
		if i > 0 {
			b.WriteString("\n  ")
		}
		b.WriteString(s)
	}
	return b.String()
}

func (h *harness) note(format string, args ...any) {
	h.trace = append(h.trace, fmt.Sprintf("%d: ", h.op)+fmt.Sprintf(format, args...))
}

func (h *harness) open() {
	var err error
	h.ours, err = lsm.Open(h.dir, h.opts)
	if err != nil {
		h.fatalf("open ours: %v", err)
	}
	if h.opts.Durability == lsm.ExternalLog {
		// Replay the caller's log from the covered LSN on, as the appliance
		// does after a restart.
		covered := h.ours.CoveredLSN()
		if covered > uint64(len(h.callerLog)) {
			h.fatalf("covered LSN %d beyond the %d batches logged", covered, len(h.callerLog))
		}
		for lsn := covered + 1; lsn <= uint64(len(h.callerLog)); lsn++ {
			if err := h.ours.ApplyAt(h.callerLog[lsn-1], lsn); err != nil {
				h.fatalf("replay LSN %d: %v", lsn, err)
			}
		}
		h.note("replayed LSNs %d..%d", covered+1, len(h.callerLog))
	}
	h.theirs, err = pebble.Open("db", &pebble.Options{FS: h.pfs, MemTableSize: 64 << 10, L0CompactionThreshold: 2, Logger: quietLogger{t: h.t}})
	if err != nil {
		h.fatalf("open pebble: %v", err)
	}
}

func (h *harness) close() {
	for _, s := range h.snaps {
		s.ours.Close()
		s.theirs.Close()
	}
	h.snaps = nil
	if err := h.ours.Close(); err != nil {
		h.fatalf("close ours: %v", err)
	}
	if err := h.theirs.Close(); err != nil {
		h.fatalf("close pebble: %v", err)
	}
}

func (h *harness) key() []byte {
	k := fmt.Sprintf("k%04d", h.rng.IntN(h.keySpace))
	switch h.rng.IntN(40) {
	case 0, 1, 2, 3, 4:
		k += "/x"
	case 5, 6, 7, 8, 9:
		k = k[:3]
	}
	return []byte(k)
}

func (h *harness) value() []byte {
	n := h.rng.IntN(40)
	if h.rng.IntN(20) == 0 {
		n = 300 + h.rng.IntN(2000)
	}
	v := make([]byte, n)
	for i := range v {
		v[i] = 'a' + byte(h.rng.IntN(26))
	}
	return v
}

func (h *harness) write() {
	var ob lsm.Batch
	pb := h.theirs.NewBatch()
	defer pb.Close()
	n := 1
	if h.rng.IntN(4) == 0 {
		n = 2 + h.rng.IntN(20)
	}
	for i := 0; i < n; i++ {
		k := h.key()
		if h.rng.IntN(4) == 0 {
			ob.Delete(k)
			_ = pb.Delete(k, nil)
			h.note("del %s", k)
		} else {
			v := h.value()
			ob.Set(k, v)
			_ = pb.Set(k, v, nil)
			h.note("set %s (%d B)", k, len(v))
		}
	}
	sync := h.rng.IntN(10) == 0
	wo := lsm.NoSync
	po := pebble.NoSync
	if sync {
		wo, po = lsm.Sync, pebble.Sync
	}
	if h.opts.Durability == lsm.ExternalLog {
		h.callerLog = append(h.callerLog, &ob)
		if err := h.ours.ApplyAt(&ob, uint64(len(h.callerLog))); err != nil {
			h.fatalf("apply ours at LSN %d: %v", len(h.callerLog), err)
		}
	} else if err := h.ours.Apply(&ob, wo); err != nil {
		h.fatalf("apply ours: %v", err)
	}
	if err := h.theirs.Apply(pb, po); err != nil {
		h.fatalf("apply pebble: %v", err)
	}
}

type getter interface {
	Get([]byte) ([]byte, io.Closer, error)
}

func (h *harness) get() {
	k := h.key()
	var og interface {
		Get([]byte) ([]byte, io.Closer, error)
	} = h.ours
	var pg getter = h.theirs
	label := "latest"
	if len(h.snaps) > 0 && h.rng.IntN(3) == 0 {
		s := h.snaps[h.rng.IntN(len(h.snaps))]
		og, pg, label = s.ours, s.theirs, "snapshot"
	}
	ov, oc, oerr := og.Get(k)
	pv, pc, perr := pg.Get(k)
	h.note("get %s (%s)", k, label)
	oFound, pFound := oerr == nil, perr == nil
	if oerr != nil && !errors.Is(oerr, lsm.ErrNotFound) {
		h.fatalf("get %s: ours failed: %v", k, oerr)
	}
	if perr != nil && !errors.Is(perr, pebble.ErrNotFound) {
		h.fatalf("get %s: pebble failed: %v", k, perr)
	}
	if oFound != pFound || !bytes.Equal(ov, pv) {
		h.fatalf("get %s (%s): ours %q found=%v, pebble %q found=%v", k, label, trunc(ov), oFound, trunc(pv), pFound)
	}
	if oc != nil {
		oc.Close()
	}
	if pc != nil {
		pc.Close()
	}
}

func trunc(b []byte) string {
	if len(b) > 24 {
		return string(b[:24]) + fmt.Sprintf("…(%d B)", len(b))
	}
	return string(b)
}

func (h *harness) bounds() (lower, upper []byte) {
	if h.rng.IntN(2) == 0 {
		lower = h.key()
	}
	if h.rng.IntN(2) == 0 {
		upper = h.key()
	}
	if lower != nil && upper != nil && bytes.Compare(lower, upper) > 0 {
		lower, upper = upper, lower
	}
	return
}

func (h *harness) iterate() {
	lower, upper := h.bounds()
	oo := &lsm.IterOptions{LowerBound: lower, UpperBound: upper}
	po := &pebble.IterOptions{LowerBound: lower, UpperBound: upper}
	var oi *lsm.Iterator
	var pi *pebble.Iterator
	var err error
	label := "latest"
	if len(h.snaps) > 0 && h.rng.IntN(3) == 0 {
		s := h.snaps[h.rng.IntN(len(h.snaps))]
		oi = s.ours.NewIter(oo)
		pi, err = s.theirs.NewIter(po)
		label = "snapshot"
	} else {
		oi = h.ours.NewIter(oo)
		pi, err = h.theirs.NewIter(po)
	}
	if err != nil {
		h.fatalf("pebble NewIter: %v", err)
	}
	h.note("iter [%s, %s) %s", lower, upper, label)
	// Interleave writes and flushes with the open iterator: it must keep
	// its view.
	positioned := false
	for steps := 5 + h.rng.IntN(40); steps > 0; steps-- {
		var what string
		var ov, pv bool
		switch r := h.rng.IntN(10); {
		case r == 0 || !positioned && r < 5:
			k := h.key()
			what = fmt.Sprintf("SeekGE(%s)", k)
			ov, pv = oi.SeekGE(k), pi.SeekGE(k)
		case r == 1 || !positioned:
			k := h.key()
			what = fmt.Sprintf("SeekLT(%s)", k)
			ov, pv = oi.SeekLT(k), pi.SeekLT(k)
		case r == 2:
			what = "First"
			ov, pv = oi.First(), pi.First()
		case r == 3:
			what = "Last"
			ov, pv = oi.Last(), pi.Last()
		case r < 7:
			what = "Next"
			ov, pv = oi.Next(), pi.Next()
		case r < 9:
			what = "Prev"
			ov, pv = oi.Prev(), pi.Prev()
		default:
			what = "concurrent write"
			h.write()
			if h.rng.IntN(3) == 0 {
				h.flush()
			}
			continue
		}
		positioned = true
		h.note("  %s", what)
		if ov != pv {
			h.fatalf("iter %s: ours valid=%v, pebble valid=%v (pebble at %q)", what, ov, pv, keyOr(pi, pv))
		}
		if ov && (!bytes.Equal(oi.Key(), pi.Key()) || !bytes.Equal(oi.Value(), pi.Value())) {
			h.fatalf("iter %s: ours %q=%q, pebble %q=%q", what, oi.Key(), trunc(oi.Value()), pi.Key(), trunc(pi.Value()))
		}

	}
	if err := oi.Close(); err != nil {
		h.fatalf("iter close ours: %v", err)
	}
	if err := pi.Close(); err != nil {
		h.fatalf("iter close pebble: %v", err)
	}
}

func keyOr(pi *pebble.Iterator, valid bool) []byte {
	if valid {
		return pi.Key()
	}
	return nil
}

// scanAll compares the full contents in both directions.
func (h *harness) scanAll(stage string) {
	oi := h.ours.NewIter(nil)
	pi, _ := h.theirs.NewIter(nil)
	defer oi.Close()
	defer pi.Close()
	n := 0
	ov, pv := oi.First(), pi.First()
	for ; ov && pv; ov, pv = oi.Next(), pi.Next() {
		if !bytes.Equal(oi.Key(), pi.Key()) || !bytes.Equal(oi.Value(), pi.Value()) {
			h.fatalf("%s scan entry %d: ours %q=%q, pebble %q=%q", stage, n, oi.Key(), trunc(oi.Value()), pi.Key(), trunc(pi.Value()))
		}
		n++
	}
	if ov || pv || oi.Error() != nil {
		h.fatalf("%s scan: lengths differ after %d entries (ours more=%v, pebble more=%v, err=%v)", stage, n, ov, pv, oi.Error())
	}
	ov, pv = oi.Last(), pi.Last()
	for ; ov && pv; ov, pv = oi.Prev(), pi.Prev() {
		if !bytes.Equal(oi.Key(), pi.Key()) || !bytes.Equal(oi.Value(), pi.Value()) {
			h.fatalf("%s reverse scan: ours %q, pebble %q", stage, oi.Key(), pi.Key())
		}
	}
	if ov || pv {
		h.fatalf("%s reverse scan: lengths differ", stage)
	}
}

func (h *harness) flush() {
	h.note("flush")
	if err := h.ours.Flush(); err != nil {
		h.fatalf("flush ours: %v", err)
	}
	if err := h.theirs.Flush(); err != nil {
		h.fatalf("flush pebble: %v", err)
	}
}

func (h *harness) compact() {
	lo, hi := h.key(), h.key()
	if bytes.Compare(lo, hi) > 0 {
		lo, hi = hi, lo
	}
	hi = append(hi, 0)
	h.note("compact [%s, %s]", lo, hi)
	if err := h.ours.Compact(lo, hi); err != nil {
		h.fatalf("compact ours: %v", err)
	}
	if err := h.theirs.Compact(context.Background(), lo, hi, false); err != nil {
		h.fatalf("compact pebble: %v", err)
	}
}

func (h *harness) snapshot() {
	if len(h.snaps) >= 4 || h.rng.IntN(3) == 0 && len(h.snaps) > 0 {
		i := h.rng.IntN(len(h.snaps))
		h.snaps[i].ours.Close()
		h.snaps[i].theirs.Close()
		h.snaps = append(h.snaps[:i], h.snaps[i+1:]...)
		h.note("close snapshot")
		return
	}
	h.snaps = append(h.snaps, snapPair{h.ours.NewSnapshot(), h.theirs.NewSnapshot()})
	h.note("snapshot")
}

func runDifferential(t *testing.T, set optionSet, seed uint64, ops int) {
	h := &harness{t: t, rng: rand.New(rand.NewPCG(seed, 0x5eed)), pfs: pvfs.NewMem(), keySpace: 300}
	if set.osFS {
		h.fs, h.dir = vfs.Default, t.TempDir()
	} else {
		h.fs, h.dir = vfs.NewCrashFS(seed), "/db"
	}
	h.opts = set.ours(h.fs)
	h.open()
	defer func() {
		if h.ours != nil {
			h.close()
		}
	}()
	for h.op = 0; h.op < ops; h.op++ {
		switch r := h.rng.IntN(100); {
		case r < 45:
			h.write()
		case r < 70:
			h.get()
		case r < 82:
			h.iterate()
		case r < 88:
			h.snapshot()
		case r < 92:
			h.flush()
		case r < 95:
			h.compact()
		case r < 97:
			h.note("reopen")
			h.close()
			h.open()
			h.scanAll("after reopen")
		default:
			h.scanAll("checkpoint")
		}
	}
	h.scanAll("final")
	m := h.ours.Metrics()
	t.Logf("flushes %d, compactions %d, trivial moves %d, files per level %v, bloom useful %d",
		m.Flushes, m.Compactions, m.TrivialMoves, levelFiles(m), m.BloomUseful)
	h.close()
	h.ours = nil
}

func TestDifferential(t *testing.T) {
	seeds, ops := 3, 1500
	if os.Getenv("TAPEWIRE_LONG") == "1" {
		seeds, ops = 30, 10000
	}
	for _, set := range optionSets {
		t.Run(set.name, func(t *testing.T) {
			for s := 0; s < seeds; s++ {
				seed := uint64(s + 1)
				t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runDifferential(t, set, seed, ops) })
			}
		})
	}
}

func levelFiles(m lsm.Metrics) (out []int) {
	for _, l := range m.Levels {
		out = append(out, l.Files)
	}
	return out
}

// quietLogger drops Pebble's informational messages and reports its errors.
type quietLogger struct{ t *testing.T }

func (quietLogger) Infof(string, ...any)                {}
func (l quietLogger) Errorf(format string, args ...any) { l.t.Errorf("pebble: "+format, args...) }
func (l quietLogger) Fatalf(format string, args ...any) { l.t.Fatalf("pebble: "+format, args...) }
