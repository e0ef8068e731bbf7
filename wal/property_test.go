package wal

import (
	"context"
	"testing"

	"github.com/tapewire/tapewire/vfs"
	"pgregory.net/rapid"
)

// TestPropertyLogMatchesModel runs random sequences of appends (sync, async,
// batched), reads from random LSNs, truncations, clean reopens and crashes
// against a model: the list of acknowledged records. After every step a
// reader from any retained LSN returns exactly the model's suffix.
func TestPropertyLogMatchesModel(t *testing.T) {
	forGeometries(t, []string{"default", "ring"}, func(t *testing.T) {
		rapid.Check(t, func(rt *rapid.T) {
			fs := vfs.NewCrashFS(rapid.Uint64().Draw(rt, "seed"))
			opts := crashOptions(fs)
			opts.MaxInFlightFrames = rapid.IntRange(1, 4).Draw(rt, "inflight")
			l, err := Open("/wal", opts)
			if err != nil {
				rt.Fatal(err)
			}
			var model [][]byte // model[i] is LSN i+1
			start := LSN(1)    // the log may be truncated below this
			defer func() { l.Close() }()
			for step := range rapid.IntRange(1, 30).Draw(rt, "steps") {
				switch rapid.IntRange(0, 9).Draw(rt, "op") {
				case 0, 1, 2: // synced append
					n := rapid.IntRange(1, 6).Draw(rt, "n")
					recs := make([]Record, n)
					for i := range recs {
						recs[i] = Record{Payload: rapid.SliceOfN(rapid.Byte(), 0, 700).Draw(rt, "payload")}
					}
					lsn, err := l.Append(context.Background(), recs)
					if err != nil {
						rt.Fatal(err)
					}
					for _, r := range recs {
						model = append(model, r.Payload)
					}
					if lsn != LSN(len(model)) {
						rt.Fatalf("step %d: append returned LSN %d, model has %d records", step, lsn, len(model))
					}
				case 3, 4: // async append, then wait
					recs := []Record{{Payload: rapid.SliceOfN(rapid.Byte(), 1, 300).Draw(rt, "payload")}}
					lsn, err := l.AppendAsync(recs)
					if err != nil {
						rt.Fatal(err)
					}
					model = append(model, recs[0].Payload)
					if err := l.WaitDurable(context.Background(), lsn); err != nil {
						rt.Fatal(err)
					}
					if l.DurableLSN() < lsn {
						rt.Fatalf("WaitDurable(%d) returned with durable LSN %d", lsn, l.DurableLSN())
					}
				case 5: // truncate
					if len(model) > 0 {
						to := LSN(rapid.IntRange(int(start), len(model)+1).Draw(rt, "truncate"))
						if err := l.TruncateBefore(to); err != nil {
							rt.Fatal(err)
						}
						start = to
					}
				case 6: // clean reopen
					if err := l.Close(); err != nil {
						rt.Fatal(err)
					}
					if l, err = Open("/wal", opts); err != nil {
						rt.Fatal(err)
					}
					if l.Recovery().Decision.Verdict != Clean {
						rt.Fatalf("reopen after Close: %v", l.Recovery().Decision)
					}
				case 7: // power cut with nothing in flight: everything acknowledged survives
					fs.Crash()
					l.Close()
					fs = fs.Image()
					opts.FS = fs
					if l, err = Open("/wal", opts); err != nil {
						rt.Fatal(err)
					}
				default: // read from a random retained LSN
				}
				from := LSN(rapid.IntRange(int(start), len(model)+1).Draw(rt, "from"))
				r, err := l.NewReader(from)
				if err != nil {
					rt.Fatalf("step %d: reader from %d: %v", step, from, err)
				}
				got, err := readAllErr(r)
				r.Close()
				if err != nil {
					rt.Fatalf("step %d: read from %d: %v", step, from, err)
				}
				if len(got) != len(model)-int(from)+1 {
					rt.Fatalf("step %d: reader from %d returned %d records, model has %d", step, from, len(got), len(model)-int(from)+1)
				}
				for i, rec := range got {
					if rec.LSN != from+LSN(i) || string(rec.Payload) != string(model[int(from)-1+i]) {
						rt.Fatalf("step %d: record %d differs from the model", step, rec.LSN)
					}
				}
			}
		})
	})
}
