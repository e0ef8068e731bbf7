package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/tapewire/tapewire/vfs"
)

// withReadAhead runs the rest of the test with read-ahead geometry g.
func withReadAhead(t testing.TB, g raGeometry) {
	t.Helper()
	old := readAheadGeometry
	readAheadGeometry = g
	t.Cleanup(func() { readAheadGeometry = old })
}

// Small geometries make the tests' small logs cross slots, wrap around the
// ring ("ring") and take the direct path for frames over 4 KiB ("direct").
var (
	ringGeometry   = raGeometry{slotBytes: 8192, slots: 3, depth: 2, headroomBytes: 8192}
	directGeometry = raGeometry{slotBytes: 4096, slots: 2, depth: 1, headroomBytes: 4096}
)

// forGeometries runs f as a subtest under each named read-ahead geometry.
func forGeometries(t *testing.T, names []string, f func(t *testing.T)) {
	t.Helper()
	all := testGeometries()
	for _, name := range names {
		g, ok := all[name]
		if !ok {
			t.Fatalf("no read-ahead geometry %q", name)
		}
		t.Run("readahead-"+name, func(t *testing.T) {
			withReadAhead(t, g)
			f(t)
		})
	}
}

func testGeometries() map[string]raGeometry {
	return map[string]raGeometry{
		"default": readAheadGeometry,
		"ring":    ringGeometry,
		"direct":  directGeometry,
		"deep":    {slotBytes: 8192, slots: 6, depth: 6, headroomBytes: 16384},
	}
}

// raFiles creates files of the given sizes with random content in fs and
// returns them opened with FlagDirect, and their content.
func raFiles(t *testing.T, fs vfs.FS, rng *rand.Rand, sizes []int64) ([]vfs.File, [][]byte) {
	t.Helper()
	if err := fs.MkdirAll("/ra"); err != nil {
		t.Fatal(err)
	}
	var files []vfs.File
	var data [][]byte
	for i, size := range sizes {
		name := fmt.Sprintf("/ra/f%d", i)
		b := make([]byte, size)
		for j := 0; j < len(b); j += 8 {
			v := rng.Uint64()
			for k := j; k < min(j+8, len(b)); k++ {
				b[k] = byte(v >> (8 * (k - j)))
			}
		}
		w, err := fs.Open(name, vfs.FlagWrite|vfs.FlagCreate)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.WriteAt(b, 0); err != nil {
			t.Fatal(err)
		}
		w.Close()
		f, err := fs.Open(name, vfs.FlagDirect) // CrashFS checks alignment
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		files = append(files, f)
		data = append(data, b)
	}
	return files, data
}

// TestReadAheadMatchesFiles drives a read-ahead through random sequences of
// the calls recovery and readers make — forward reads of frames and blocks,
// jumps, steps back, drops, moves to the announced next file or to another
// — and compares every byte with the files.
func TestReadAheadMatchesFiles(t *testing.T) {
	for name, g := range testGeometries() {
		t.Run(name, func(t *testing.T) {
			withReadAhead(t, g)
			seeds := uint64(6)
			if g.slotBytes*g.slots > 1<<20 {
				seeds = 2 // the default ring: files of 12 MiB
			}
			for seed := range seeds {
				rng := rand.New(rand.NewPCG(seed, 99))
				// Sizes around the slot and ring sizes, one not a multiple of
				// a block (a truncated segment).
				unit := int64(g.slotBytes)
				sizes := []int64{unit*int64(g.slots)*3 + 4096, unit + 8192, 5*4096 + 1536, 0, unit * 2}
				files, data := raFiles(t, vfs.NewCrashFS(seed), rng, sizes)
				w := newReadAhead()
				cur, next := 0, -1
				w.reset(files[cur], sizes[cur])
				var pos int64
				for op := range 400 {
					what := fmt.Sprintf("seed %d op %d", seed, op)
					switch k := rng.IntN(20); {
					case k < 14: // forward, as frames are read
						n := 1 + rng.IntN(3*g.headroomBytes)
						if k < 4 {
							n = BlockSize
						}
						b, err := w.at(pos, n)
						if err != nil {
							t.Fatalf("%s: at(%d, %d) in file %d: %v", what, pos, n, cur, err)
						}
						want := data[cur][min(pos, sizes[cur]):min(pos+int64(n), sizes[cur])]
						if !bytes.Equal(b, want) {
							t.Fatalf("%s: at(%d, %d) in file %d of %d bytes: got %d bytes, want %d (or different content)", what, pos, n, cur, sizes[cur], len(b), len(want))
						}
						pos += alignBlock(int64(1 + rng.IntN(n)))
						if rng.IntN(8) == 0 {
							pos += int64(rng.IntN(BlockSize)) // unaligned offsets too
						}
					case k < 15: // jump ahead
						pos += int64(rng.IntN(4*g.slotBytes*g.slots)) &^ (BlockSize - 1)
					case k < 16: // step back
						pos = int64(rng.Int64N(sizes[cur]+1)) &^ (BlockSize - 1)
					case k < 17:
						w.drop()
					case k < 18: // announce the next file
						if next < 0 {
							next = (cur + 1 + rng.IntN(len(files)-1)) % len(files)
							w.setNext(files[next], sizes[next])
						}
					default: // move on: to the announced file, or another
						to := rng.IntN(len(files))
						if next >= 0 && rng.IntN(3) > 0 {
							to = next
						}
						if to == next || to != cur {
							w.reset(files[to], sizes[to])
							cur, next, pos = to, -1, 0
						}
					}
				}
				w.close()
			}
		})
	}
}

// TestReadAheadReadErrors fails each read (and open) in turn: a failed read
// the caller needs is reported as an error naming the file and offset,
// never returned as data; bytes returned before it are the file's.
func TestReadAheadReadErrors(t *testing.T) {
	for name, g := range testGeometries() {
		t.Run(name, func(t *testing.T) {
			withReadAhead(t, g)
			rng := rand.New(rand.NewPCG(1, 2))
			inner := vfs.NewCrashFS(1)
			sizes := []int64{int64(g.slotBytes*g.slots) * 2, 3 * 4096}
			_, data := raFiles(t, inner, rng, sizes)
			for n := int64(0); ; n++ {
				efs := vfs.NewErrorFS(inner, n)
				var files []vfs.File
				var openErr error
				for i := range sizes {
					f, err := efs.Open(fmt.Sprintf("/ra/f%d", i), vfs.FlagDirect)
					if err != nil {
						openErr = err
						break
					}
					files = append(files, f)
				}
				if openErr != nil {
					if !errors.Is(openErr, vfs.ErrInjected) {
						t.Fatal(openErr)
					}
					continue
				}
				w := newReadAhead()
				w.reset(files[0], sizes[0])
				w.setNext(files[1], sizes[1])
				failed := false
				for i := range files {
					if i > 0 {
						w.reset(files[i], sizes[i])
					}
					for pos := int64(0); pos < sizes[i] && !failed; pos += 4096 {
						b, err := w.at(pos, 2*BlockSize)
						if err != nil {
							if !errors.Is(err, vfs.ErrInjected) {
								t.Fatalf("n=%d: %v, want the injected error", n, err)
							}
							failed = true
							break
						}
						if !bytes.Equal(b, data[i][pos:min(pos+2*BlockSize, sizes[i])]) {
							t.Fatalf("n=%d: file %d at %d: wrong bytes", n, i, pos)
						}
					}
				}
				w.close()
				for _, f := range files {
					f.Close()
				}
				if !efs.Injected() {
					return // a run that reached no failure: every operation was swept
				}
				if !failed {
					// The failed read was read-ahead nobody needed: fine,
					// as long as nothing wrong was returned.
					continue
				}
			}
		})
	}
}

// TestForgottenReaderStopsReadAhead: a Reader dropped without Close does
// not leave its read-ahead goroutines behind.
func TestForgottenReaderStopsReadAhead(t *testing.T) {
	fs := vfs.NewCrashFS(3)
	l, err := Open("/wal", crashOptions(fs))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range 50 {
		if _, err := l.Append(context.Background(), []Record{{Payload: payloadFor(1, i)}}); err != nil {
			t.Fatal(err)
		}
	}
	before := runtime.NumGoroutine()
	func() {
		r, err := l.NewReader(1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
		if runtime.NumGoroutine() <= before {
			t.Fatal("the reader started no read-ahead")
		}
	}()
	for range 100 {
		runtime.GC()
		if runtime.NumGoroutine() <= before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d goroutines after the reader was dropped, %d before it", runtime.NumGoroutine(), before)
}
