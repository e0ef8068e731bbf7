package wal

import (
	"context"
	"errors"
	"testing"

	"github.com/tapewire/tapewire/vfs"
)

// TestErrorSweep fails operation n for n = 0, 1, 2, … until a run completes
// without reaching n. Each time: the error reaches the writers (no append is
// acknowledged after it), a failed log refuses appends, and a reopen on the
// undamaged file system recovers every acknowledged record.
func TestErrorSweep(t *testing.T) {
	forGeometries(t, []string{"default", "ring", "direct"}, func(t *testing.T) {
		wl := workload{writers: 2, perWriter: 24, batch: 2, truncate: true}
		for n := int64(0); ; n++ {
			inner := vfs.NewCrashFS(uint64(n))
			efs := vfs.NewErrorFS(inner, n)
			acks := &ackLog{acked: map[LSN][]byte{}}
			var truncated LSN
			l, err := Open("/wal", crashOptions(efs))
			if err == nil {
				acks, truncated = wl.run(l)
				if ferr := l.Err(); ferr != nil {
					if !errors.Is(ferr, vfs.ErrInjected) {
						t.Fatalf("n=%d: log failed with %v, want the injected error", n, ferr)
					}
					if _, aerr := l.Append(context.Background(), []Record{{Payload: []byte("x")}}); aerr == nil {
						t.Fatalf("n=%d: failed log accepted an append", n)
					}
					if _, aerr := l.AppendAsync([]Record{{Payload: []byte("x")}}); aerr == nil {
						t.Fatalf("n=%d: failed log accepted an async append", n)
					}
				}
				cerr := l.Close()
				if l.Err() != nil && cerr == nil {
					t.Fatalf("n=%d: Close of a failed log returned nil", n)
				}
			} else if !errors.Is(err, vfs.ErrInjected) {
				t.Fatalf("n=%d: open: %v", n, err)
			}
			if !efs.Injected() {
				t.Logf("a run needs %d operations; swept every one", n)
				break
			}
			checkRecovered(t, inner, crashOptions(nil), acks, truncated, wl.writers, "error at op "+itoa(n))
			if n > 5000 {
				t.Fatal("error sweep does not terminate")
			}
		}
	})
}
