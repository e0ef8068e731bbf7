package wal

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/tapewire/tapewire/vfs"
)

// deferredOutcome is what an owner using Options.DeferSealedVerification
// learns about a log: the tail scan's verdict, or Corrupt when a Reader
// of the whole log hits damage in a segment left unscanned.
func deferredOutcome(t *testing.T, fs vfs.FS, what string) (Verdict, *Report, error) {
	t.Helper()
	rep, err := inspectDeferred(fs, "/wal")
	if err != nil {
		t.Fatalf("%s: deferred inspect: %v", what, err)
	}
	if err := rep.Err(); err != nil {
		return Corrupt, rep, err
	}
	if rep.LastLSN < rep.FirstLSN {
		return rep.Decision.Verdict, rep, nil
	}
	r, err := rep.NewReader(fs, rep.FirstLSN)
	if err != nil {
		t.Fatalf("%s: reader: %v", what, err)
	}
	defer r.Close()
	n := LSN(0)
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if !IsCorruption(err) {
				t.Fatalf("%s: reader: %v", what, err)
			}
			return Corrupt, rep, err
		}
		n = rec.LSN
	}
	if n != rep.LastLSN {
		t.Fatalf("%s: reader ended at LSN %d, the log at %d", what, n, rep.LastLSN)
	}
	return rep.Decision.Verdict, rep, nil
}

// checkDeferredAgrees: the deferred scan and the Readers together reach
// the verdict the full scan reaches, with the same recovered log.
func checkDeferredAgrees(t *testing.T, fs vfs.FS, what string) {
	t.Helper()
	if _, err := fs.Stat("/wal"); err != nil {
		return // crashed before the directory existed: nothing to compare
	}
	full, err := Inspect(fs, "/wal")
	if err != nil {
		t.Fatalf("%s: inspect: %v", what, err)
	}
	got, rep, err := deferredOutcome(t, fs, what)
	if got != full.Decision.Verdict {
		t.Fatalf("%s: deferred verification says %v (%v), the full scan %v (%s)", what, got, err, full.Decision.Verdict, full.Problem)
	}
	if got != Corrupt && (rep.LastLSN != full.LastLSN || rep.FirstLSN != full.FirstLSN || rep.EndSegment != full.EndSegment || rep.EndOffset != full.EndOffset) {
		t.Fatalf("%s: deferred scan recovered LSNs %d..%d ending at %d/%d, full scan %d..%d ending at %d/%d", what,
			rep.FirstLSN, rep.LastLSN, rep.EndSegment, rep.EndOffset, full.FirstLSN, full.LastLSN, full.EndSegment, full.EndOffset)
	}
}

// TestDeferredVerificationSweep damages every sector of a clean
// multi-segment log (a bit flip, then zeros) and checks that Open's
// deferred scan plus a Reader of the whole log decide exactly as the full
// scan does: a sealed segment's damage, which the tail scan does not see,
// is a *CorruptionError from the Reader naming that segment and an offset
// in it.
func TestDeferredVerificationSweep(t *testing.T) {
	files := pristineLog(t)
	rep, err := inspectDeferred(fsWith(t, files), "/wal")
	if err != nil || rep.Decision.Verdict != Clean || rep.DeferredSegments == 0 {
		t.Fatalf("pristine log: deferred scan left %d segments unscanned, verdict %v, err %v", rep.DeferredSegments, rep.Decision.Verdict, err)
	}
	sealed := map[string]bool{}
	for _, s := range rep.Segments {
		if s.Deferred {
			sealed[s.Name] = true
		}
	}
	fromReader := 0
	for _, name := range sortedNames(files) {
		for sector := int64(0); sector < int64(len(files[name])); sector += vfs.SectorSize {
			for _, zero := range []bool{false, true} {
				d := copyFiles(files)
				what := fmt.Sprintf("bit flip in %s at %d", name, sector)
				if zero {
					clear(d[name][sector : sector+vfs.SectorSize])
					what = fmt.Sprintf("zeroed sector %s at %d", name, sector)
				} else {
					pos := sector + (sector*7919)%vfs.SectorSize
					d[name][pos] ^= 1 << (pos % 8)
				}
				fs := fsWith(t, d)
				checkDeferredAgrees(t, fs, what)
				v, drep, err := deferredOutcome(t, fs, what)
				var ce *CorruptionError
				if v == Corrupt && drep.Err() == nil && sealed[name] && errors.As(err, &ce) {
					fromReader++
					if SegmentName(ce.Segment) != name || ce.Offset < SegmentHeaderSize || ce.Offset > sector+vfs.SectorSize {
						t.Fatalf("%s: reader names segment %d offset %d", what, ce.Segment, ce.Offset)
					}
				}
			}
		}
	}
	if fromReader == 0 {
		t.Fatal("no damage was left to the reader: the sweep does not exercise deferred verification")
	}
}

// TestOpenDeferredRefusesDamagedSealedSegment: Open with
// DeferSealedVerification succeeds over a log whose sealed segment is
// damaged (it reads only the tail), and the Reader that reaches the damage
// returns a *CorruptionError naming the segment and the offset.
func TestOpenDeferredRefusesDamagedSealedSegment(t *testing.T) {
	files := pristineLog(t)
	names := sortedNames(files)
	us := units(t, files)
	var victim unit
	for _, u := range us {
		if u.file == names[1] && u.records && u.start > 0 {
			victim = u
			break
		}
	}
	if victim.file == "" {
		t.Fatalf("no frame with records in %s", names[1])
	}
	files[victim.file][victim.start+FrameHeaderSize+3] ^= 0x40
	opts := crashOptions(fsWith(t, files))
	opts.DeferSealedVerification = true
	l, err := Open("/wal", opts)
	if err != nil {
		t.Fatalf("open with deferred verification: %v", err)
	}
	defer l.Close()
	if l.Recovery().DeferredSegments < 2 {
		t.Fatalf("%d segments deferred, want at least 2", l.Recovery().DeferredSegments)
	}
	r, err := l.NewReader(1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = readAllErr(r)
	var ce *CorruptionError
	if !errors.As(err, &ce) || SegmentName(ce.Segment) != victim.file || ce.Offset != victim.start {
		t.Fatalf("reading over the damaged frame (%s offset %d): %v", victim.file, victim.start, err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("offset %d", victim.start)) {
		t.Fatalf("error does not name the offset: %v", err)
	}
	// The full scan agrees.
	opts.DeferSealedVerification = false
	l.Close()
	if _, err := Open("/wal", opts); !IsCorruption(err) {
		t.Fatalf("full scan of the same log: %v", err)
	}
}
