package wal

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/tapewire/tapewire/vfs"
)

// noDirectFS opens every file without O_DIRECT, as vfs.OS does when the
// file system refuses it.
type noDirectFS struct{ vfs.FS }

func (fs noDirectFS) Open(name string, flags vfs.Flag) (vfs.File, error) {
	return fs.FS.Open(name, flags&^vfs.FlagDirect)
}

func TestBufferedFallbackIsReportedOnce(t *testing.T) {
	var mu sync.Mutex
	var notices []string
	opts := crashOptions(noDirectFS{vfs.NewCrashFS(1)})
	opts.Logf = func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if strings.Contains(format, "O_DIRECT refused") {
			notices = append(notices, format)
		}
	}
	l, err := Open("/wal", opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 { // several rotations: several segments opened
		if _, err := l.Append(context.Background(), []Record{{Payload: payloadFor(0, i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if m := l.Metrics(); m.WriteMode != "buffered+dsync" || m.Segments < 2 {
		t.Fatalf("metrics %+v", m)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(notices) != 1 {
		t.Fatalf("fallback logged %d times, want once", len(notices))
	}
}
