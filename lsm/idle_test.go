package lsm

import (
	"testing"
	"time"

	"github.com/tapewire/tapewire/lsm/internal/compact"
)

// waitIdle waits until no flush or compaction is running or due and every
// obsolete file has been deleted.
func waitIdle(t testing.TB, d *DB) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		d.mu.Lock()
		var cursors [len(d.cursors)][]byte
		for i := range cursors {
			cursors[i] = append([]byte(nil), d.cursors[i]...)
		}
		idle := !d.flushing && d.compactions == 0 && len(d.imm) == 0 &&
			(d.opts.DisableAutomaticCompactions || compact.Pick(d.current, d.compactOptions(), &cursors, d.running) == nil)
		bgErr := d.bgErr
		d.mu.Unlock()
		if bgErr != nil {
			t.Fatalf("background error: %v", bgErr)
		}
		if idle && d.deleter.pending.Load() == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("database did not become idle within 20 s")
}
