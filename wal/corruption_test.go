package wal

import (
	"context"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"sort"
	"testing"

	"github.com/tapewire/tapewire/vfs"
)

// pristineLog builds a cleanly closed log over several segments with frames
// of one and of many records, and returns its files' bytes.
func pristineLog(t *testing.T) map[string][]byte {
	t.Helper()
	fs := vfs.NewCrashFS(7)
	opts := crashOptions(fs)
	opts.PreparedSegments = 1
	l, err := Open("/wal", opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		recs := make([]Record, 1+i%5)
		for j := range recs {
			recs[j] = Record{Type: 1, Payload: payloadFor(i, j)}
		}
		if _, err := l.Append(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	names, _ := fs.List("/wal")
	for _, n := range names {
		if _, ok := parseSegmentName(n); !ok {
			continue
		}
		f, _ := fs.Open(filepath.Join("/wal", n), 0)
		st, _ := f.Stat()
		b := make([]byte, st.Size)
		if _, err := f.ReadAt(b, 0); err != nil {
			t.Fatal(err)
		}
		files[n] = b
	}
	return files
}

func fsWith(t *testing.T, files map[string][]byte) vfs.FS {
	fs := vfs.NewCrashFS(1)
	if err := fs.MkdirAll("/wal"); err != nil {
		t.Fatal(err)
	}
	for n, b := range files {
		f, err := fs.Open(filepath.Join("/wal", n), vfs.FlagWrite|vfs.FlagCreate)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(b, 0); err != nil {
			t.Fatal(err)
		}
	}
	return fs
}

// unit is a byte range whose damage the oracle understands.
type unit struct {
	file       string
	start, end int64 // CRC-covered bytes
	records    bool  // the unit carries acknowledged records
}

// units lists the CRC-covered ranges of the pristine log: segment headers
// (which hold records when any frame of their segment does) and frames.
func units(t *testing.T, files map[string][]byte) []unit {
	rep, err := Inspect(fsWith(t, files), "/wal")
	if err != nil || rep.Decision.Verdict != Clean {
		t.Fatalf("pristine log: %v %+v", err, rep)
	}
	var us []unit
	for i := 0; i < rep.chainLen; i++ {
		s := rep.scans[i]
		name := filepath.Base(s.path)
		hasRecords := false
		for _, f := range s.frames {
			us = append(us, unit{name, f.off, f.off + int64(f.h.Length), f.h.Count > 0})
			hasRecords = hasRecords || f.h.Count > 0
		}
		us = append(us, unit{name, 0, 64, hasRecords})
	}
	return us
}

// expect is the oracle: damage to a unit holding records must be Corrupt;
// damage only to the close frame (or a header holding nothing else) loses
// the clean-shutdown mark but no data; damage elsewhere changes nothing.
func expect(us []unit, file string, changed func(start, end int64) bool) Verdict {
	v := Clean
	for _, u := range us {
		if u.file != file || !changed(u.start, u.end) {
			continue
		}
		if u.records {
			return Corrupt
		}
		v = TornTail
	}
	return v
}

func copyFiles(files map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for n, b := range files {
		out[n] = append([]byte(nil), b...)
	}
	return out
}

func sortedNames(files map[string][]byte) []string {
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func checkVerdict(t *testing.T, files map[string][]byte, want Verdict, what string) {
	t.Helper()
	rep, err := Inspect(fsWith(t, files), "/wal")
	if err != nil {
		t.Fatalf("%s: inspect: %v", what, err)
	}
	if rep.Decision.Verdict != want {
		t.Fatalf("%s: verdict %v (rule %d: %s; %s), want %v", what, rep.Decision.Verdict, rep.Decision.Rule, rep.Decision.Reason, rep.Problem, want)
	}
	if want == Corrupt {
		err := rep.Err()
		if !IsCorruption(err) || rep.Problem == "" {
			t.Fatalf("%s: corrupt without an error naming the place: %v", what, err)
		}
	}
}

func TestCorruptionSweepBitFlips(t *testing.T) {
	forGeometries(t, []string{"default", "ring"}, func(t *testing.T) {
		files := pristineLog(t)
		us := units(t, files)
		for _, name := range sortedNames(files) {
			for sector := int64(0); sector < int64(len(files[name])); sector += vfs.SectorSize {
				pos := sector + (sector*7919)%vfs.SectorSize
				d := copyFiles(files)
				d[name][pos] ^= 1 << (pos % 8)
				want := expect(us, name, func(s, e int64) bool { return pos >= s && pos < e })
				checkVerdict(t, d, want, fmt.Sprintf("bit flip in %s at %d", name, pos))
			}
		}
	})
}

func TestCorruptionSweepZeroedSectors(t *testing.T) {
	forGeometries(t, []string{"default", "ring"}, func(t *testing.T) {
		files := pristineLog(t)
		us := units(t, files)
		for _, name := range sortedNames(files) {
			orig := files[name]
			for sector := int64(0); sector < int64(len(orig)); sector += vfs.SectorSize {
				d := copyFiles(files)
				clear(d[name][sector : sector+vfs.SectorSize])
				want := expect(us, name, func(s, e int64) bool {
					lo, hi := max(s, sector), min(e, sector+vfs.SectorSize)
					return lo < hi && !isZero(orig[lo:hi])
				})
				checkVerdict(t, d, want, fmt.Sprintf("zeroed sector %s at %d", name, sector))
			}
		}
	})
}

func TestCorruptionSweepTruncation(t *testing.T) {
	forGeometries(t, []string{"default", "ring"}, func(t *testing.T) {
		files := pristineLog(t)
		us := units(t, files)
		for _, name := range sortedNames(files) {
			holds := false
			for _, u := range us {
				holds = holds || u.file == name
			}
			if !holds {
				continue // a prepared spare: holds no log data
			}
			for size := int64(0); size < int64(len(files[name])); size += vfs.SectorSize {
				d := copyFiles(files)
				d[name] = d[name][:size]
				checkVerdict(t, d, Corrupt, fmt.Sprintf("%s truncated to %d", name, size))
			}
		}
	})
}

func TestCorruptionSweepSwappedFrames(t *testing.T) {
	forGeometries(t, []string{"default", "ring"}, func(t *testing.T) {
		files := pristineLog(t)
		us := units(t, files)
		var frames []unit
		for _, u := range us {
			if u.start >= SegmentHeaderSize {
				frames = append(frames, u)
			}
		}
		swaps := 0
		for i := 0; i < len(frames); i += 3 {
			for j := i + 1; j < len(frames); j += 5 {
				a, b := frames[i], frames[j]
				if a.file == b.file {
					continue
				}
				span := alignBlock(max(a.end-a.start, b.end-b.start))
				d := copyFiles(files)
				if a.start+span > int64(len(d[a.file])) || b.start+span > int64(len(d[b.file])) {
					continue
				}
				tmp := append([]byte(nil), d[a.file][a.start:a.start+span]...)
				copy(d[a.file][a.start:], d[b.file][b.start:b.start+span])
				copy(d[b.file][b.start:], tmp)
				want := TornTail
				if a.records || b.records {
					want = Corrupt
				}
				checkVerdict(t, d, want, fmt.Sprintf("frames swapped: %s@%d <-> %s@%d", a.file, a.start, b.file, b.start))
				swaps++
			}
		}
		if swaps < 10 {
			t.Fatalf("only %d swaps exercised", swaps)
		}
	})
}

// TestFirstSegmentUnwritten covers a crash of a new log with frames of
// several segments in flight: the first segment's header (written with its
// first frame) never landed while a later segment's did. Nothing was
// acknowledged unless a promise says so; the later segment belongs to the
// same log (its UUID is the log's: no earlier valid header says otherwise).
func TestFirstSegmentUnwritten(t *testing.T) {
	const segSize = 32 << 10
	uuid := [16]byte{7, 7, 7}
	second := func(first, promise LSN) []byte {
		b := make([]byte, segSize)
		encodeSegmentHeader(b, SegmentHeader{LogUUID: uuid, SegmentID: 2, FirstLSN: first, SegmentSizeBytes: segSize})
		f := make([]byte, BlockSize)
		n := FrameHeaderSize
		for i := range 3 {
			n += encodeRecord(f[n:], first+LSN(i), &Record{Payload: payloadFor(i, 3)})
		}
		putFrameHeader(f, FrameHeader{SegmentID: 2, FirstLSN: first, Count: 3, Length: uint32(n), DurableThrough: promise, LogTag: logTag(uuid)}, SegmentHeaderSize)
		copy(b[SegmentHeaderSize:], f)
		return b
	}
	for _, c := range []struct {
		name    string
		first   LSN
		promise LSN
		want    Verdict
	}{
		{"nothing acknowledged", 40, 0, TornTail},
		{"a promise names LSNs the log lacks", 40, 12, Corrupt},
		{"the later segment starts the log", 1, 0, Corrupt},
	} {
		t.Run(c.name, func(t *testing.T) {
			files := map[string][]byte{
				SegmentName(1): make([]byte, segSize),
				SegmentName(2): second(c.first, c.promise),
			}
			checkVerdict(t, files, c.want, c.name)
			if c.want != TornTail {
				return
			}
			fs := fsWith(t, files)
			l, err := Open("/wal", crashOptions(fs))
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer l.Close()
			if rep := l.Recovery(); rep.LastLSN != 0 || hex.EncodeToString(uuid[:]) != rep.LogUUID {
				t.Fatalf("recovered LSNs to %d, UUID %s", rep.LastLSN, rep.LogUUID)
			}
			if lsn, err := l.Append(context.Background(), []Record{{Payload: []byte("first")}}); err != nil || lsn != 1 {
				t.Fatalf("first append after recovery: LSN %d, %v", lsn, err)
			}
		})
	}
}
