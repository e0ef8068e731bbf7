package wal

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tapewire/tapewire/vfs"
)

// validFrame returns the bytes of a frame of count records at off in segment id.
func validFrame(id uint64, off int64, first LSN, count int) []byte {
	b := make([]byte, 64<<10)
	n := FrameHeaderSize
	for i := range count {
		n += encodeRecord(b[n:], first+LSN(i), &Record{Type: uint16(i), Payload: payloadFor(i, count)})
	}
	putFrameHeader(b, FrameHeader{SegmentID: id, FirstLSN: first, Count: uint32(count), Length: uint32(n), DurableThrough: first - 1, LogTag: 42}, off)
	return b[:alignBlock(int64(n))]
}

// FuzzFrameDecode feeds arbitrary bytes to the frame decoder: it must never
// panic, and whatever it accepts must re-encode to the same bytes and hold
// records that decode within the frame.
func FuzzFrameDecode(f *testing.F) {
	f.Add(validFrame(3, 8192, 100, 3), uint64(3), int64(8192))
	f.Add(validFrame(1, 4096, 1, 0), uint64(1), int64(4096))
	f.Add(make([]byte, 4096), uint64(1), int64(4096))
	f.Fuzz(func(t *testing.T, b []byte, id uint64, off int64) {
		h, st := peekFrame(b, id, off, int64(len(b)))
		if st != stateValid {
			return
		}
		if int(h.Length) > len(b) {
			t.Fatalf("peek accepted length %d beyond %d bytes", h.Length, len(b))
		}
		if !checkFrame(b, h, off) {
			return
		}
		again := append([]byte(nil), b[:h.Length]...)
		putFrameHeader(again, h, off)
		if string(again[:FrameHeaderSize]) != string(b[:FrameHeaderSize]) && binary.LittleEndian.Uint64(b[48:]) == 0 && binary.LittleEndian.Uint32(b[56:]) == 0 {
			t.Fatalf("accepted header does not re-encode identically")
		}
		pos := FrameHeaderSize
		for i := range h.Count {
			_, n, err := decodeRecord(b, pos, int(h.Length), h.FirstLSN+LSN(i))
			if err != nil {
				return
			}
			if n <= 0 || pos+n > int(h.Length) {
				t.Fatalf("record %d: size %d at %d overruns frame of %d", i, n, pos, h.Length)
			}
			pos += n
		}
	})
}

// FuzzSegmentHeaderDecode: never panics; an accepted header re-encodes to
// the same 64 bytes.
func FuzzSegmentHeaderDecode(f *testing.F) {
	good := make([]byte, SegmentHeaderSize)
	encodeSegmentHeader(good, SegmentHeader{LogUUID: [16]byte{1, 2, 3}, SegmentID: 9, FirstLSN: 77, SegmentSizeBytes: 1 << 20})
	f.Add(good, uint64(9))
	f.Add(make([]byte, 64), uint64(1))
	f.Fuzz(func(t *testing.T, b []byte, id uint64) {
		h, st, _ := decodeSegmentHeader(b, id)
		if st != stateValid {
			return
		}
		again := make([]byte, 64)
		encodeSegmentHeader(again, h)
		if string(again) != string(b[:64]) && binary.LittleEndian.Uint16(b[10:]) == 0 && binary.LittleEndian.Uint32(b[56:]) == 0 {
			t.Fatalf("accepted header does not re-encode identically")
		}
	})
}

// FuzzClassify: the decision table answers every evidence and keeps its
// safety properties: lost promises, continuation and truncation are never
// recovered from.
func FuzzClassify(f *testing.F) {
	for i := range 64 {
		f.Add(uint8(i))
	}
	f.Fuzz(func(t *testing.T, bits uint8) {
		e := TailEvidence{End: EndKind(bits >> 4 & 3), LastIsClose: bits&8 != 0, OutsideFrames: bits&4 != 0, PromiseBeyondEnd: bits&2 != 0, OutsideContinues: bits&1 != 0}
		d := Classify(e)
		if (e.PromiseBeyondEnd || e.OutsideContinues || e.End == EndShort) != (d.Verdict == Corrupt) {
			t.Fatalf("%+v classified %v", e, d.Verdict)
		}
		if d.Verdict == Clean && (!e.LastIsClose || e.OutsideFrames || e.End == EndTorn) {
			t.Fatalf("%+v classified clean", e)
		}
	})
}

var (
	fuzzLogOnce  sync.Once
	fuzzLogFiles map[string][]byte
)

// FuzzRecovery damages a small real log with fuzzer-chosen byte edits and
// runs recovery: it must not panic, and whenever it does not report
// corruption the recovered log must read back completely.
func FuzzRecovery(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 16, 1, 0x80})   // flip a bit in the first frame
	f.Add([]byte{0, 0, 8, 0xff})    // damage the first segment header
	f.Add([]byte{1, 32, 0, 0x01})   // damage a frame in the second segment
	f.Add([]byte{0, 0x7f, 0xf0, 1}) // near the end of the first segment
	f.Fuzz(func(t *testing.T, edits []byte) {
		fuzzLogOnce.Do(func() { fuzzLogFiles = pristineLog(t) })
		files := copyFiles(fuzzLogFiles)
		names := sortedNames(files)
		if len(names) == 0 {
			t.Fatal("no pristine log")
		}
		// Each edit: segment index, 16-bit offset in 16-byte units, xor value.
		for i := 0; i+3 < len(edits); i += 4 {
			name := names[int(edits[i])%len(names)]
			off := (int(edits[i+1])<<8 | int(edits[i+2])) * 16 % len(files[name])
			files[name][off] ^= edits[i+3]
		}
		fs := fsWith(t, files)
		rep, err := Inspect(fs, "/wal")
		if err != nil {
			t.Fatal(err)
		}
		if rep.Decision.Verdict == Corrupt {
			if rep.Err() == nil {
				t.Fatal("corrupt verdict without an error")
			}
			return
		}
		r, err := rep.NewReader(fs, rep.FirstLSN)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := readAllErr(r)
		if err != nil {
			t.Fatalf("%s log does not read back: %v", rep.Decision.Verdict, err)
		}
		if want := int(rep.LastLSN - rep.FirstLSN + 1); len(recs) != want {
			t.Fatalf("read %d records, report says %d", len(recs), want)
		}
	})
}

// TestWriteFuzzSeeds regenerates the committed seed corpus under
// testdata/fuzz when TAPEWIRE_WRITE_FUZZ_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("TAPEWIRE_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("writes testdata/fuzz only when TAPEWIRE_WRITE_FUZZ_SEEDS=1")
	}
	write := func(fuzz, name string, args ...any) {
		dir := filepath.Join("testdata", "fuzz", fuzz)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		s := "go test fuzz v1\n"
		for _, a := range args {
			switch v := a.(type) {
			case []byte:
				s += fmt.Sprintf("[]byte(%q)\n", v)
			case uint64:
				s += fmt.Sprintf("uint64(%d)\n", v)
			case int64:
				s += fmt.Sprintf("int64(%d)\n", v)
			case uint8:
				s += fmt.Sprintf("byte(%d)\n", v)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	torn := validFrame(2, 12288, 50, 4)
	clear(torn[2048:])
	write("FuzzFrameDecode", "valid-4-records", validFrame(2, 12288, 50, 4), uint64(2), int64(12288))
	write("FuzzFrameDecode", "torn-frame", torn, uint64(2), int64(12288))
	write("FuzzFrameDecode", "wrong-offset", validFrame(2, 12288, 50, 4), uint64(2), int64(16384))
	write("FuzzFrameDecode", "close-frame", validFrame(5, 4096, 9, 0), uint64(5), int64(4096))
	hdr := make([]byte, SegmentHeaderSize)
	encodeSegmentHeader(hdr, SegmentHeader{LogUUID: [16]byte{9}, SegmentID: 4, FirstLSN: 1000, SegmentSizeBytes: 64 << 20})
	write("FuzzSegmentHeaderDecode", "valid", hdr, uint64(4))
	write("FuzzSegmentHeaderDecode", "wrong-id", hdr, uint64(5))
	bad := append([]byte(nil), hdr...)
	bad[41] ^= 1
	write("FuzzSegmentHeaderDecode", "bad-crc", bad, uint64(4))
	for _, v := range []uint8{0x00, 0x08, 0x1c, 0x22, 0x31, 0x3f} {
		write("FuzzClassify", fmt.Sprintf("evidence-%02x", v), v)
	}
	write("FuzzRecovery", "no-damage", []byte{})
	write("FuzzRecovery", "mid-log-flip", []byte{0, 1, 0, 0x10})
	write("FuzzRecovery", "header-and-tail", []byte{1, 0, 2, 0xff, 2, 3, 0, 0x01})
	_ = vfs.BlockSize
}
