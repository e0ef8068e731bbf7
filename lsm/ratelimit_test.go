package lsm

import (
	"fmt"
	"testing"
	"time"

	"github.com/tapewire/tapewire/vfs"
)

func TestRateLimiterPaces(t *testing.T) {
	const rate = 4 << 20 // 4 MiB/s
	r := newRateLimiter(rate)
	start := time.Now()
	for i := 0; i < 256; i++ {
		r.wait(4 << 10) // 1 MiB in 4 KiB steps
	}
	if elapsed := time.Since(start); elapsed < 230*time.Millisecond {
		t.Fatalf("1 MiB at 4 MiB/s took %v, want about 250 ms", elapsed)
	}
	if newRateLimiter(0) != nil {
		t.Fatal("rate 0 must mean unlimited (nil limiter)")
	}
}

// TestCompactionRateLimit: a manual compaction of ~400 KB at 2 MB/s takes
// at least ~0.2 s, and no rate limit applies to flushes.
func TestCompactionRateLimit(t *testing.T) {
	o := crashOptions(vfs.NewCrashFS(4), ExternalLog)
	o.CompactionRateBytesPerSec = 2 << 20
	o.DisableAutomaticCompactions = true
	o.MemTableSizeBytes = 1 << 20
	d := mustOpen(t, "/db", o)
	defer d.Close()
	var b Batch
	val := make([]byte, 100)
	for i := 0; i < 4000; i++ {
		b.Reset()
		b.Set([]byte(fmt.Sprintf("k%06d", (i*7919)%4000)), val)
		if err := d.ApplyAt(&b, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := d.Compact(nil, nil); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	m := d.Metrics()
	want := time.Duration(float64(m.CompactionBytesOut) / float64(o.CompactionRateBytesPerSec) * float64(time.Second))
	if m.Compactions == 0 || elapsed < want*8/10 {
		t.Fatalf("compaction wrote %d B in %v; at %d B/s it should take about %v", m.CompactionBytesOut, elapsed, o.CompactionRateBytesPerSec, want)
	}
}
