package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/vfs"
	"github.com/tapewire/tapewire/wal"
)

// makeLog writes 200 records (Tapewire frames with seq = i) over several
// segments and closes the log cleanly.
func makeLog(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	l, err := wal.Open(dir, wal.Options{FS: vfs.Default, SegmentSizeBytes: 64 << 10, MaxGroupBytes: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		frame := make([]byte, schema.HeaderSize+40)
		schema.EncodeHeader(frame, schema.Header{Length: uint32(len(frame)), Type: schema.TypeTick, Seq: uint64(i)})
		if _, err := l.Append(context.Background(), []wal.Record{{Type: 7, Payload: frame}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestWALVerifyClean(t *testing.T) {
	dir := makeLog(t)
	code, out, errs := runCLI("wal", "verify", dir)
	if code != 0 || !strings.Contains(out, ": clean") || !strings.Contains(out, "LSNs 1..200 (200 records read back") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = runCLI("wal", "verify", "--json", dir)
	var doc struct {
		Decision struct{ Verdict string }
		LastLSN  uint64 `json:"last_lsn"`
		Records  int64  `json:"records_read"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 0 || doc.Decision.Verdict != "clean" || doc.LastLSN != 200 || doc.Records != 200 {
		t.Fatalf("exit %d, %+v, %v\n%s", code, doc, err, out)
	}
}

func TestWALDump(t *testing.T) {
	dir := makeLog(t)
	code, out, errs := runCLI("wal", "dump", "--from", "150", "--limit", "3", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || lines[0] != "lsn=150 type=7 bytes=64 frame_type=10 frame_seq=149" {
		t.Fatalf("dump:\n%s", out)
	}
	code, out, _ = runCLI("wal", "dump", "--json", "--from", "200", dir)
	var rec struct {
		LSN      uint64 `json:"lsn"`
		FrameSeq uint64 `json:"frame_seq"`
	}
	if err := json.Unmarshal([]byte(strings.Split(out, "\n")[0]), &rec); err != nil || code != 0 || rec.LSN != 200 || rec.FrameSeq != 199 {
		t.Fatalf("json dump: %v %+v\n%s", err, rec, out)
	}
}

// damage edits segment id of dir.
func damage(t *testing.T, dir string, id uint64, edit func(b []byte) []byte) {
	t.Helper()
	p := filepath.Join(dir, wal.SegmentName(id))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, edit(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWALVerifyDamage(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(b []byte) []byte
		code    int
		verdict string
		want    string
	}{
		{"bit flip mid-log", func(b []byte) []byte { b[2*4096+100] ^= 4; return b }, 3, "corrupt", "CORRUPT: segment 1 (0000000000000001.wal) offset 8192"},
		{"truncated", func(b []byte) []byte { return b[:5*4096] }, 3, "corrupt", "CORRUPT: segment 1 (0000000000000001.wal) offset 20480"},
		{"zeroed tail of last segment", nil, 0, "torn-tail", "end: segment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := makeLog(t)
			if tc.edit != nil {
				damage(t, dir, 1, tc.edit)
			} else {
				// Zero the last frames of the last segment holding data
				// (the close frame and the one before): a crash-like tail.
				rep, _ := wal.Inspect(vfs.Default, dir)
				end := rep.EndOffset
				damage(t, dir, rep.EndSegment, func(b []byte) []byte { clear(b[end-2*4096 : end]); return b })
			}
			code, out, errs := runCLI("wal", "verify", dir)
			if code != tc.code || !strings.Contains(out, ": "+tc.verdict+" ") || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errs)
			}
			code, out, _ = runCLI("wal", "verify", "--json", dir)
			var doc struct {
				Decision       struct{ Verdict string }
				ProblemSegment uint64 `json:"problem_segment"`
				ProblemOffset  int64  `json:"problem_offset"`
			}
			if err := json.Unmarshal([]byte(out), &doc); err != nil || code != tc.code || doc.Decision.Verdict != tc.verdict {
				t.Fatalf("json: exit %d %+v %v\n%s", code, doc, err, out)
			}
			if tc.verdict == "corrupt" && doc.ProblemSegment != 1 {
				t.Fatalf("json names segment %d", doc.ProblemSegment)
			}
		})
	}
}

func TestUnknownCommandFails(t *testing.T) {
	if code, _, _ := runCLI("wal", "verify"); code != 1 {
		t.Fatalf("verify without DIR: exit %d", code)
	}
}
