package wal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/tapewire/tapewire/vfs"
)

// smallOptions are options with tiny segments so tests rotate often.
func smallOptions(fs vfs.FS) Options {
	return Options{FS: fs, SegmentSizeBytes: 64 << 10, MaxGroupBytes: 16 << 10, MaxInFlightFrames: 4}
}

// payloadFor is the deterministic payload of writer w's n-th record.
func payloadFor(w, n int) []byte {
	size := 8 + (w*7+n*13)%200
	p := make([]byte, size)
	binary.LittleEndian.PutUint32(p[0:], uint32(w))
	binary.LittleEndian.PutUint32(p[4:], uint32(n))
	for i := 8; i < size; i++ {
		p[i] = byte(w + n + i)
	}
	return p
}

// readAll returns every record r has left.
func readAll(t testing.TB, r *Reader) []Record {
	t.Helper()
	out, err := readAllErr(r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return out
}

func readAllErr(r *Reader) ([]Record, error) {
	var out []Record
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		rec.Payload = append([]byte(nil), rec.Payload...)
		out = append(out, rec)
	}
}

func TestAppendReadReopen(t *testing.T) {
	for _, name := range []string{"crashfs", "ext4"} {
		t.Run(name, func(t *testing.T) {
			var fs vfs.FS = vfs.NewCrashFS(1)
			dir := "/wal"
			if name == "ext4" {
				fs = vfs.Default
				dir = ext4Dir(t)
			}
			l, err := Open(dir, smallOptions(fs))
			if err != nil {
				t.Fatal(err)
			}
			const writers, per = 8, 60
			acked := make([]map[LSN][]byte, writers)
			var wg sync.WaitGroup
			for w := range writers {
				acked[w] = map[LSN][]byte{}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := range per {
						p := payloadFor(w, n)
						lsn, err := l.Append(context.Background(), []Record{{Type: uint16(w), Payload: p}})
						if err != nil {
							t.Errorf("append: %v", err)
							return
						}
						acked[w][lsn] = p
					}
				}()
			}
			wg.Wait()
			if got := l.DurableLSN(); got != writers*per {
				t.Fatalf("durable LSN %d, want %d", got, writers*per)
			}
			r, err := l.NewReader(1)
			if err != nil {
				t.Fatal(err)
			}
			if recs := readAll(t, r); len(recs) != writers*per {
				t.Fatalf("live reader: %d records, want %d", len(recs), writers*per)
			}
			r.Close()
			m := l.Metrics()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			t.Logf("metrics %+v", m)
			l, err = Open(dir, smallOptions(fs))
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if v := l.Recovery().Decision.Verdict; v != Clean {
				t.Fatalf("reopen after Close: verdict %v, want clean (%+v)", v, l.Recovery())
			}
			r, err = l.NewReader(1)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			recs := readAll(t, r)
			if len(recs) != writers*per {
				t.Fatalf("%d records after reopen, want %d", len(recs), writers*per)
			}
			for i, rec := range recs {
				if rec.LSN != LSN(i+1) {
					t.Fatalf("record %d has LSN %d", i, rec.LSN)
				}
				w := int(rec.Type)
				if string(acked[w][rec.LSN]) != string(rec.Payload) {
					t.Fatalf("LSN %d: payload mismatch", rec.LSN)
				}
			}
			// Appends continue after the reopen.
			lsn, err := l.Append(context.Background(), []Record{{Payload: []byte("after")}})
			if err != nil || lsn != writers*per+1 {
				t.Fatalf("append after reopen: %d, %v", lsn, err)
			}
			_ = fmt.Sprint()
		})
	}
}

// TestLiveReaderAcrossTruncation: a Reader of a live log keeps its place
// when TruncateBefore removes segments before the one it is in (the list
// of segments it refreshes then starts later), reads on across rotations,
// and reports an error, not wrong records, if its own segment is removed.
func TestLiveReaderAcrossTruncation(t *testing.T) {
	fs := vfs.NewCrashFS(5)
	l, err := Open("/wal", crashOptions(fs))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	appendN := func(n int) LSN {
		var last LSN
		for i := range n {
			if last, err = l.Append(ctx, []Record{{Payload: payloadFor(2, int(l.DurableLSN())+i)}}); err != nil {
				t.Fatal(err)
			}
		}
		return last
	}
	appendN(400) // several 32 KiB segments
	r, err := l.NewReader(1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	next := LSN(1)
	readTo := func(last LSN) {
		for next <= last {
			rec, err := r.Next()
			if err != nil {
				t.Fatalf("read LSN %d: %v", next, err)
			}
			if rec.LSN != next {
				t.Fatalf("read LSN %d, want %d", rec.LSN, next)
			}
			next++
		}
	}
	readTo(300)
	if err := l.TruncateBefore(290); err != nil {
		t.Fatal(err)
	}
	if l.Metrics().Segments < 3 {
		t.Fatalf("workload too small: %+v", l.Metrics())
	}
	last := appendN(400)
	readTo(last)
	// Now truncate the reader's own segment away: it must say so.
	appendN(400)
	if err := l.TruncateBefore(l.DurableLSN()); err != nil {
		t.Fatal(err)
	}
	for {
		rec, err := r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				t.Fatalf("reader in a removed segment reached the end without error at LSN %d", next)
			}
			break // an error naming the removed segment, or a read error
		}
		if rec.LSN != next {
			t.Fatalf("read LSN %d, want %d", rec.LSN, next)
		}
		next++
	}
}
