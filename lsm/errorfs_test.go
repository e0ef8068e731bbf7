package lsm

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/tapewire/tapewire/vfs"
)

// TestInjectedErrors fails one file-system operation at points spread over
// a workload (opening, logging, flushing, compacting, manifest writes). The
// database must report the failure (never hang, never panic), and reopening
// on the healthy file system must find every synced acknowledged write and a
// prefix of the attempted ones.
func TestInjectedErrors(t *testing.T) {
	const writes = 800
	probe := vfs.NewErrorFS(vfs.NewCrashFS(1), -1)
	d := mustOpen(t, "/db", crashOptions(probe, Standalone))
	crashWorkload(d, writes, rand.New(rand.NewPCG(1, 1)))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	total := probe.Ops()
	points := int64(40)
	if os.Getenv("TAPEWIRE_LONG") == "1" {
		points = total
	}
	injected := int64(0)
	for p := int64(0); p < points; p++ {
		// Spread over the first 90 %: the count varies from run to run.
		failAt := p * total * 9 / 10 / points
		inner := vfs.NewCrashFS(uint64(p))
		efs := vfs.NewErrorFS(inner, failAt)
		label := fmt.Sprintf("error at op %d of %d", failAt, total)
		attempted, synced := 0, []int(nil)
		d, err := Open("/db", crashOptions(efs, Standalone))
		if err == nil {
			attempted, synced = crashWorkload(d, writes, rand.New(rand.NewPCG(1, 1)))
			_ = d.Close()
		}
		if efs.Injected() {
			injected++
		}
		d2, err := Open("/db", crashOptions(inner, Standalone))
		if err != nil {
			t.Fatalf("%s: reopen on the healthy file system: %v", label, err)
		}
		checkRecovered(t, d2, attempted, synced, label)
		waitIdle(t, d2)
		checkNoOrphans(t, inner, d2, "/db", label)
		if err := d2.Close(); err != nil {
			t.Fatalf("%s: close: %v", label, err)
		}
	}
	// Background timing changes the operation count from run to run, so a
	// point near the end may not be reached; nearly all must be.
	if injected < points*3/4 {
		t.Fatalf("only %d of %d error points were reached", injected, points)
	}
}

// TestTimeOrderedKeysMoveTrivially: event-log keys (increasing) flush into
// tables that overlap nothing, so compaction re-links them instead of
// rewriting them.
func TestTimeOrderedKeysMoveTrivially(t *testing.T) {
	o := crashOptions(vfs.NewCrashFS(2), ExternalLog)
	d := mustOpen(t, "/db", o)
	defer d.Close()
	var b Batch
	val := make([]byte, 100)
	for i := 0; i < 6000; i++ {
		b.Reset()
		b.Set([]byte(fmt.Sprintf("e/0001/%012d", i)), val)
		if err := d.ApplyAt(&b, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, d)
	m := d.Metrics()
	if m.TrivialMoves == 0 {
		t.Fatalf("no trivial move for time-ordered keys: %v", m)
	}
	if m.CompactionBytesOut > m.FlushBytes/4 {
		t.Fatalf("compactions rewrote %d bytes of %d flushed: time-ordered data should mostly move", m.CompactionBytesOut, m.FlushBytes)
	}
	if m.WriteAmplification > 1.25 {
		t.Fatalf("write amplification %.2f for time-ordered keys", m.WriteAmplification)
	}
	t.Log(m)
}
