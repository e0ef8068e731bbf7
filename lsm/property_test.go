package lsm

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"testing"

	"pgregory.net/rapid"

	"github.com/tapewire/tapewire/vfs"
)

// modelSnapshot pairs a database snapshot with the model's state when it was
// taken.
type modelSnapshot struct {
	snap  *Snapshot
	state map[string]string
}

// TestPropertyMatchesMapModel drives the database with random operations and
// checks every read against a map: the latest state, snapshots, and bounded
// scans in both directions, across flushes, compactions and reopens.
func TestPropertyMatchesMapModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		fs := vfs.NewCrashFS(1)
		o := crashOptions(fs, Standalone)
		// Tiny level targets so that a few hundred bytes spread over
		// several levels and tombstones meet older values deeper down.
		o.BaseLevelBytes, o.TargetFileSizeBytes, o.L0CompactionTrigger = 256, 512, 1
		if rapid.Bool().Draw(rt, "partitioned") {
			// Not monotonic ("a" 1, "ab" 2, "b" 1): tables get cut more
			// often, answers must not change.
			o.Partition = func(k []byte) uint64 { return uint64(len(k)) }
		}
		d, err := Open("/db", o)
		if err != nil {
			rt.Fatal(err)
		}
		defer func() { d.Close() }()
		model := map[string]string{}
		var snaps []modelSnapshot
		keyGen := rapid.StringMatching(`[a-d]{0,3}`) // the empty key included
		valGen := rapid.StringMatching(`[a-z]{0,12}`)
		check := func(label string, got []byte, err error, want string, wantOK bool) {
			if errors.Is(err, ErrNotFound) {
				if wantOK {
					rt.Fatalf("%s: not found, want %q", label, want)
				}
				return
			}
			if err != nil {
				rt.Fatalf("%s: %v", label, err)
			}
			if !wantOK || string(got) != want {
				rt.Fatalf("%s: got %q, want %q (present=%v)", label, got, want, wantOK)
			}
		}
		rt.Repeat(map[string]func(*rapid.T){
			"set": func(rt *rapid.T) {
				k, v := keyGen.Draw(rt, "k"), valGen.Draw(rt, "v")
				if err := d.Set([]byte(k), []byte(v), NoSync); err != nil {
					rt.Fatal(err)
				}
				model[k] = v
			},
			"delete": func(rt *rapid.T) {
				k := keyGen.Draw(rt, "k")
				if err := d.Delete([]byte(k), NoSync); err != nil {
					rt.Fatal(err)
				}
				delete(model, k)
			},
			"batch": func(rt *rapid.T) {
				var b Batch
				for i, n := 0, rapid.IntRange(1, 6).Draw(rt, "n"); i < n; i++ {
					k := keyGen.Draw(rt, "k")
					if rapid.IntRange(0, 3).Draw(rt, "op") == 0 {
						b.Delete([]byte(k))
						delete(model, k)
					} else {
						v := valGen.Draw(rt, "v")
						b.Set([]byte(k), []byte(v))
						model[k] = v
					}
				}
				if err := d.Apply(&b, Sync); err != nil {
					rt.Fatal(err)
				}
			},
			"get": func(rt *rapid.T) {
				k := keyGen.Draw(rt, "k")
				v, c, err := d.Get([]byte(k))
				want, ok := model[k]
				check("get "+k, v, err, want, ok)
				if c != nil {
					c.Close()
				}
			},
			"snapshot": func(rt *rapid.T) {
				if len(snaps) >= 3 {
					snaps[0].snap.Close()
					snaps = snaps[1:]
				}
				state := make(map[string]string, len(model))
				for k, v := range model {
					state[k] = v
				}
				snaps = append(snaps, modelSnapshot{d.NewSnapshot(), state})
			},
			"snapshotGet": func(rt *rapid.T) {
				if len(snaps) == 0 {
					return // no snapshot to read through yet
				}
				s := snaps[rapid.IntRange(0, len(snaps)-1).Draw(rt, "snap")]
				k := keyGen.Draw(rt, "k")
				v, c, err := s.snap.Get([]byte(k))
				want, ok := s.state[k]
				check("snapshot get "+k, v, err, want, ok)
				if c != nil {
					c.Close()
				}
			},
			"scan": func(rt *rapid.T) {
				lo, hi := keyGen.Draw(rt, "lo"), keyGen.Draw(rt, "hi")
				if lo > hi {
					lo, hi = hi, lo
				}
				state, it := model, d.NewIter(&IterOptions{LowerBound: []byte(lo), UpperBound: []byte(hi)})
				if len(snaps) > 0 && rapid.Bool().Draw(rt, "atSnapshot") {
					s := snaps[len(snaps)-1]
					it.Close()
					state, it = s.state, s.snap.NewIter(&IterOptions{LowerBound: []byte(lo), UpperBound: []byte(hi)})
				}
				defer it.Close()
				var want []string
				for k := range state {
					if k >= lo && k < hi {
						want = append(want, k)
					}
				}
				sort.Strings(want)
				var got []string
				if rapid.Bool().Draw(rt, "reverse") {
					for ok := it.Last(); ok; ok = it.Prev() {
						got = append([]string{string(it.Key())}, got...)
						if string(it.Value()) != state[string(it.Key())] {
							rt.Fatalf("reverse scan: %s = %q, want %q", it.Key(), it.Value(), state[string(it.Key())])
						}
					}
				} else {
					for ok := it.First(); ok; ok = it.Next() {
						got = append(got, string(it.Key()))
						if !bytes.Equal(it.Value(), []byte(state[string(it.Key())])) {
							rt.Fatalf("scan: %s = %q, want %q", it.Key(), it.Value(), state[string(it.Key())])
						}
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					rt.Fatalf("scan [%s,%s): got %v, want %v", lo, hi, got, want)
				}
			},
			"flush": func(rt *rapid.T) {
				if err := d.Flush(); err != nil {
					rt.Fatal(err)
				}
			},
			"compact": func(rt *rapid.T) {
				lo, hi := keyGen.Draw(rt, "lo"), keyGen.Draw(rt, "hi")
				if lo > hi {
					lo, hi = hi, lo
				}
				if err := d.Compact([]byte(lo), []byte(hi)); err != nil {
					rt.Fatal(err)
				}
			},
			"reopen": func(rt *rapid.T) {
				for _, s := range snaps {
					s.snap.Close()
				}
				snaps = nil
				if err := d.Close(); err != nil {
					rt.Fatal(err)
				}
				if d, err = Open("/db", o); err != nil {
					rt.Fatal(err)
				}
			},
		})
	})
}
