package wal

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/tapewire/tapewire/vfs"
)

const segmentSuffix = ".wal"

// SegmentName is the file name of segment id.
func SegmentName(id uint64) string { return fmt.Sprintf("%016d%s", id, segmentSuffix) }

func parseSegmentName(name string) (uint64, bool) {
	if !strings.HasSuffix(name, segmentSuffix) || len(name) != 16+len(segmentSuffix) {
		return 0, false
	}
	id, err := strconv.ParseUint(strings.TrimSuffix(name, segmentSuffix), 10, 64)
	return id, err == nil && id > 0
}

// CorruptionError is returned by Open (and by a Reader) when acknowledged
// data is damaged or missing. It names the segment and the byte offset in it.
type CorruptionError struct {
	Dir     string
	Segment uint64
	Offset  int64
	Reason  string
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("wal: corruption in %s segment %d (%s) at offset %d: %s; the log cannot be opened as is (inspect with `appliance wal verify %s`)",
		e.Dir, e.Segment, SegmentName(e.Segment), e.Offset, e.Reason, e.Dir)
}

// SegmentInfo describes one segment file as recovery found it.
type SegmentInfo struct {
	ID        uint64 `json:"id"`
	Name      string `json:"name"`
	SizeBytes int64  `json:"size_bytes"`
	Header    string `json:"header"` // valid, zero, torn, foreign, short
	FirstLSN  LSN    `json:"first_lsn,omitempty"`
	LastLSN   LSN    `json:"last_lsn,omitempty"`
	Frames    int    `json:"frames"`         // frames in the recovered log
	Outside   int    `json:"outside_frames"` // valid frames not in the recovered log
	InLog     bool   `json:"in_log"`
	EndOffset int64  `json:"end_offset,omitempty"` // first byte after its last frame in the log
	// Deferred: Open read only the header (Options.DeferSealedVerification):
	// the segment is sealed and its records were promised durable by a
	// verified later frame; a Reader verifies its frames as it reads them.
	// Frames and EndOffset are then unknown (0); LastLSN is the one before
	// the next segment's first.
	Deferred bool `json:"deferred,omitempty"`
}

// Report is the result of Inspect: the recovered log, the evidence about what
// follows it, and the decision table's verdict.
type Report struct {
	Dir      string       `json:"dir"`
	LogUUID  string       `json:"log_uuid,omitempty"`
	Decision Decision     `json:"decision"`
	Evidence TailEvidence `json:"evidence"`
	// The recovered log holds LSNs [FirstLSN, LastLSN]; empty when
	// LastLSN < FirstLSN.
	FirstLSN LSN `json:"first_lsn"`
	LastLSN  LSN `json:"last_lsn"`
	// EndSegment and EndOffset: where the recovered log ends (the next frame
	// would start there).
	EndSegment uint64 `json:"end_segment"`
	EndOffset  int64  `json:"end_offset"`
	// For Corrupt: the place that proves the damage and what it is.
	ProblemSegment uint64 `json:"problem_segment,omitempty"`
	ProblemOffset  int64  `json:"problem_offset,omitempty"`
	Problem        string `json:"problem,omitempty"`

	Frames  int64 `json:"frames"`
	Records int64 `json:"records"`
	Bytes   int64 `json:"bytes_scanned"`
	// DeferredSegments is how many segments were not scanned
	// (Options.DeferSealedVerification): their frames are verified by the
	// Readers that read them. Frames counts only scanned segments.
	DeferredSegments int           `json:"deferred_segments,omitempty"`
	Segments         []SegmentInfo `json:"segments"`

	uuid     [16]byte
	scans    []*segScan
	chainLen int        // segments [0, chainLen) hold the recovered log
	orphans  []frameLoc // outside frames in or after the end segment
}

// Err returns a *CorruptionError for a Corrupt verdict, nil otherwise.
func (r *Report) Err() error {
	if r.Decision.Verdict != Corrupt {
		return nil
	}
	return &CorruptionError{Dir: r.Dir, Segment: r.ProblemSegment, Offset: r.ProblemOffset,
		Reason: r.Problem + " [rule " + strconv.Itoa(r.Decision.Rule) + ": " + r.Decision.Reason + "]"}
}

type frameLoc struct {
	seg  int // index into scans
	off  int64
	h    FrameHeader
	next headerState // what the block after the frame holds
}

type segScan struct {
	id        uint64
	path      string
	size      int64
	hdr       SegmentHeader
	hdrState  headerState
	frames    []frameLoc  // valid frames, offset order
	firstNext headerState // what the block at SegmentHeaderSize holds if no frame
	// deferred: only the header was read (see inspect); the segment is
	// taken to hold LSNs hdr.FirstLSN up to the next segment's first - 1.
	deferred bool
}

// scanSegment classifies every block of the segment the read-ahead's
// current file holds (size bytes).
func scanSegment(buf *readAhead, path string, id uint64, size int64) (*segScan, error) {
	s := &segScan{id: id, path: path, size: size, firstNext: stateShort}
	hb, err := buf.at(0, SegmentHeaderSize)
	if err != nil {
		return nil, err
	}
	if len(hb) < SegmentHeaderSize {
		s.hdrState = stateShort
		if len(hb) >= 64 && isZero(hb) {
			s.hdrState = stateZero
		}
	} else {
		s.hdr, s.hdrState, _ = decodeSegmentHeader(hb, id)
	}
	prevEnded := true // the block at off follows a valid frame (or the header)
	setNext := func(st headerState) {
		if !prevEnded {
			return
		}
		if n := len(s.frames); n > 0 {
			s.frames[n-1].next = st
		} else {
			s.firstNext = st
		}
		prevEnded = false
	}
	off := int64(SegmentHeaderSize)
	for off < s.size {
		b, err := buf.at(off, BlockSize)
		if err != nil {
			return nil, err
		}
		h, state := peekFrame(b, id, off, s.size-off)
		if state == stateValid {
			fb, err := buf.at(off, int(h.Length))
			if err != nil {
				return nil, err
			}
			if len(fb) == int(h.Length) && checkFrame(fb, h, off) {
				if prevEnded {
					setNext(stateValid)
				}
				s.frames = append(s.frames, frameLoc{off: off, h: h, next: stateShort})
				prevEnded = true
				off += alignBlock(int64(h.Length))
				continue
			}
			state = stateTorn
		}
		setNext(state)
		off += BlockSize
	}
	// The block after the last frame lies at or past the end of the file:
	// "zero" when the segment is full size (no room), "short" otherwise.
	if prevEnded {
		st := stateShort
		if s.hdrState == stateValid && s.size >= s.hdr.SegmentSizeBytes {
			st = stateZero
		}
		setNext(st)
	}
	return s, nil
}

// listSegments returns the segment ids in dir, ascending.
func listSegments(fs vfs.FS, dir string) ([]uint64, error) {
	names, err := fs.List(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: list %s: %w", dir, err)
	}
	var ids []uint64
	for _, n := range names {
		if id, ok := parseSegmentName(n); ok {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// Inspect reads every segment in dir and classifies the log without changing
// anything. I/O errors are returned; damage is reported in the Report (see
// Report.Err).
func Inspect(fs vfs.FS, dir string) (*Report, error) {
	ids, err := listSegments(fs, dir)
	if err != nil {
		return nil, err
	}
	return scanAll(fs, dir, ids)
}

// scanAll reads every segment of ids and classifies the log.
func scanAll(fs vfs.FS, dir string, ids []uint64) (*Report, error) {
	var err error
	r := &Report{Dir: dir, FirstLSN: 1}
	// One read-ahead runs through all segments: while segment i is parsed,
	// the reads of its end and of segment i+1's start are in flight.
	ra := newReadAhead()
	var cur, next vfs.File
	var curSize, nextSize int64
	defer func() {
		ra.close() // no read in flight before the files close
		for _, f := range []vfs.File{cur, next} {
			if f != nil {
				f.Close()
			}
		}
	}()
	for i, id := range ids {
		path := filepath.Join(dir, SegmentName(id))
		if i == 0 {
			if cur, curSize, err = openSegment(fs, path); err != nil {
				return nil, err
			}
			ra.reset(cur, curSize)
		} else {
			prev := cur
			cur, curSize, next = next, nextSize, nil
			ra.reset(cur, curSize) // keeps what was read of it ahead
			prev.Close()
		}
		if i+1 < len(ids) {
			if next, nextSize, err = openSegment(fs, filepath.Join(dir, SegmentName(ids[i+1]))); err != nil {
				return nil, err
			}
			ra.setNext(next, nextSize)
		}
		s, err := scanSegment(ra, path, id, curSize)
		if err != nil {
			return nil, err
		}
		r.Bytes += s.size
		r.scans = append(r.scans, s)
	}
	r.analyze()
	return r, nil
}

// inspectDeferred is Inspect for Open with Options.DeferSealedVerification:
// it scans segments from the newest backwards, each in full, until every
// older segment is sealed and promised durable — then it reads only their
// headers and leaves the check of their frames to the Readers.
//
// Segment i (of the oldest p) is sealed when its header and its
// successor's are valid, of the same log, the ids consecutive, the
// successor starting at a higher LSN, and the file full size: the log then
// claims that segment i holds exactly LSNs FirstLSN(i) .. FirstLSN(i+1)-1.
// The older segments are left unscanned once a valid frame of the log in
// the scanned ones promises durable-through ≥ FirstLSN(k)-1, k the oldest
// scanned. Then every record of the unscanned segments was acknowledged,
// so any damage to them is corruption by the decision table (row 2: that
// promise would lie beyond the end of a chain broken there); no torn write
// can live in them. The scan of the tail gives the verdict as Inspect
// would for every case but that one, which a Reader reports instead, as a
// *CorruptionError naming the segment and the offset, when it reaches the
// damage (a missing or invalid frame where the next LSN should be).
//
// What this does not look at: blocks of a sealed segment after its last
// frame (a stray valid frame there, which Inspect would count as outside
// the log, is never read by a Reader either). `appliance wal verify`
// (Inspect) still reads everything.
func inspectDeferred(fs vfs.FS, dir string) (*Report, error) {
	ids, err := listSegments(fs, dir)
	if err != nil {
		return nil, err
	}
	if len(ids) < 2 {
		return scanAll(fs, dir, ids)
	}
	heads := make([]*segScan, len(ids))
	hb := vfs.AlignedBuffer(SegmentHeaderSize)
	for i, id := range ids {
		path := filepath.Join(dir, SegmentName(id))
		f, size, err := openSegment(fs, path)
		if err != nil {
			return nil, err
		}
		s := &segScan{id: id, path: path, size: size, hdrState: stateShort}
		if size >= SegmentHeaderSize {
			if _, err := f.ReadAt(hb, 0); err != nil && !errors.Is(err, io.EOF) {
				f.Close()
				return nil, fmt.Errorf("wal: read segment header %s: %w", path, err)
			}
			s.hdr, s.hdrState, _ = decodeSegmentHeader(hb, id)
		}
		f.Close()
		heads[i] = s
	}
	// sealed: segments [0, sealed) each continue into their successor.
	sealed := 0
	for i := 0; i+1 < len(heads); i++ {
		a, b := heads[i], heads[i+1]
		if a.hdrState != stateValid || b.hdrState != stateValid || a.hdr.LogUUID != heads[0].hdr.LogUUID ||
			b.hdr.LogUUID != a.hdr.LogUUID || b.id != a.id+1 || b.hdr.FirstLSN <= a.hdr.FirstLSN || a.size < a.hdr.SegmentSizeBytes {
			break
		}
		sealed = i + 1
	}
	tag := logTag(heads[0].hdr.LogUUID)
	scans := make([]*segScan, len(ids))
	ra := newReadAhead()
	defer ra.close()
	var promised LSN
	k := len(ids)
	for k > 0 && (k > sealed || heads[k].hdr.FirstLSN-1 > promised) {
		k--
		s := heads[k]
		f, size, err := openSegment(fs, s.path)
		if err != nil {
			return nil, err
		}
		ra.reset(f, size)
		scan, err := scanSegment(ra, s.path, s.id, size)
		ra.reset(nil, 0)
		f.Close()
		if err != nil {
			return nil, err
		}
		for _, fr := range scan.frames {
			if fr.h.LogTag == tag {
				promised = max(promised, fr.h.DurableThrough)
			}
		}
		scans[k] = scan
	}
	r := &Report{Dir: dir, FirstLSN: 1}
	for i := range k {
		s := heads[i]
		s.deferred = true
		s.firstNext = stateValid
		scans[i] = s
		r.Bytes += SegmentHeaderSize
		r.DeferredSegments++
	}
	for _, s := range scans[k:] {
		r.Bytes += s.size
	}
	r.scans = scans
	r.analyze()
	return r, nil
}

// openSegment opens a segment file for reading with O_DIRECT.
func openSegment(fs vfs.FS, path string) (vfs.File, int64, error) {
	f, err := fs.Open(path, vfs.FlagDirect)
	if err != nil {
		return nil, 0, fmt.Errorf("wal: open segment %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("wal: stat segment %s: %w", path, err)
	}
	return f, st.Size, nil
}

// analyze builds the recovered chain, gathers the evidence and classifies.
func (r *Report) analyze() {
	var (
		expected    LSN = 1
		tag         uint64
		haveUUID    bool
		inChain     = map[[2]int64]bool{} // (segment index, offset) of chain frames
		endSeg      = -1                  // index of the segment holding the end position
		endOff      int64
		endState    = stateZero
		lastIsClose bool
		badHeader   = -1 // segment whose invalid header is part of the end unit
	)
	ev := TailEvidence{}
	// The log's UUID is the one in its first valid segment header, even
	// when that segment does not start the recovered log: a crash while
	// the log's first frames were in flight can leave the first segment's
	// header unwritten and a later one's written (the decision table then
	// judges that later segment like any other, by LSNs and promises).
	for _, s := range r.scans {
		if s.hdrState == stateValid {
			r.uuid, haveUUID = s.hdr.LogUUID, true
			tag = logTag(r.uuid)
			break
		}
	}
	for i, s := range r.scans {
		if i == 0 && s.hdrState == stateValid {
			expected = s.hdr.FirstLSN
			r.FirstLSN = expected
		}
		if s.hdrState != stateValid || s.hdr.FirstLSN != expected || s.hdr.LogUUID != r.uuid {
			if i == 0 || r.chainLen == i {
				badHeader = i
			}
			if endSeg < 0 {
				// No chain segment yet: the end is this header itself.
				endSeg, endOff, endState = i, 0, s.hdrState
				if endState == stateValid {
					endState = stateForeign // valid header that does not continue the log
				}
			}
			break
		}
		r.chainLen = i + 1
		pos := int64(SegmentHeaderSize)
		next := s.firstNext
		if s.deferred {
			// Sealed and promised (inspectDeferred): up to the next
			// segment's first LSN, which is valid and of this log.
			n := r.scans[i+1].hdr.FirstLSN
			r.Records += int64(n - expected)
			expected = n
		}
		for _, f := range s.frames {
			if f.off != pos || f.h.FirstLSN != expected || f.h.LogTag != tag {
				break
			}
			inChain[[2]int64{int64(i), f.off}] = true
			expected += LSN(f.h.Count)
			lastIsClose = f.h.IsClose()
			pos = f.off + alignBlock(int64(f.h.Length))
			next = f.next
			r.Frames++
			r.Records += int64(f.h.Count)
		}
		endSeg, endOff, endState = i, pos, next
		if i+1 < len(r.scans) {
			n := r.scans[i+1]
			if n.hdrState == stateValid && n.hdr.FirstLSN == expected && n.hdr.LogUUID == r.uuid {
				continue // the log goes on in the next segment
			}
			badHeader = i + 1
		}
		break
	}
	r.LastLSN = expected - 1
	last := r.LastLSN

	// Evidence from everything outside the chain.
	problemSeg, problemOff, problem := -1, int64(0), ""
	note := func(seg int, off int64, what string) {
		if problemSeg < 0 {
			problemSeg, problemOff, problem = seg, off, what
		}
	}
	var declared int64
	for _, s := range r.scans {
		if s.hdrState == stateValid {
			declared = s.hdr.SegmentSizeBytes
			break
		}
	}
	for i, s := range r.scans {
		info := SegmentInfo{ID: s.id, Name: SegmentName(s.id), SizeBytes: s.size, Header: s.hdrState.String(), InLog: i < r.chainLen, Deferred: s.deferred}
		if s.deferred && i+1 < len(r.scans) {
			info.LastLSN = r.scans[i+1].hdr.FirstLSN - 1
		}
		if s.hdrState == stateValid {
			info.FirstLSN = s.hdr.FirstLSN
			if s.hdr.LogUUID != r.uuid {
				ev.OutsideContinues = true
				note(i, 0, fmt.Sprintf("segment header belongs to another log (UUID %s, this log %s)", hex.EncodeToString(s.hdr.LogUUID[:]), hex.EncodeToString(r.uuid[:])))
			} else if i >= r.chainLen && s.hdr.FirstLSN <= last+1 && s.hdr.FirstLSN >= r.FirstLSN {
				ev.OutsideContinues = true
				note(i, 0, fmt.Sprintf("segment header starts at LSN %d, inside or right after the recovered log (last LSN %d), but the segment does not continue it", s.hdr.FirstLSN, last))
			}
		}
		if (s.hdrState == stateValid && s.size < s.hdr.SegmentSizeBytes) || (i < r.chainLen+1 && declared > 0 && s.size < declared && s.hdrState != stateZero) {
			ev.End = EndShort
			note(i, s.size, fmt.Sprintf("segment file is %d bytes, preallocated size is %d", s.size, max(declared, s.hdr.SegmentSizeBytes)))
		}
		for _, f := range s.frames {
			if f.h.DurableThrough > last {
				ev.PromiseBeyondEnd = true
				note(endSeg, endOff, fmt.Sprintf("frame at segment %d offset %d promises LSNs through %d durable, but the log ends at LSN %d", s.id, f.off, f.h.DurableThrough, last))
			}
			if inChain[[2]int64{int64(i), f.off}] {
				info.Frames++
				if f.h.Count > 0 {
					info.LastLSN = f.h.LastLSN()
				}
				continue
			}
			info.Outside++
			ev.OutsideFrames = true
			if f.h.LogTag != tag {
				continue // a frame of another log: its promise means nothing here
			}
			if f.h.FirstLSN <= last+1 && !(i == badHeader && f.off == SegmentHeaderSize) {
				ev.OutsideContinues = true
				note(endSeg, endOff, fmt.Sprintf("frame at segment %d offset %d holds LSNs from %d, continuing a log that ends at LSN %d", s.id, f.off, f.h.FirstLSN, last))
			}
			if i >= max(endSeg, 0) {
				f.seg = i
				r.orphans = append(r.orphans, f)
			}
		}
		if i < r.chainLen {
			if i == endSeg {
				info.EndOffset = endOff
			} else if len(s.frames) > 0 {
				info.EndOffset = -1
			}
		}
		r.Segments = append(r.Segments, info)
	}
	// Fix up end offsets of full chain segments.
	for i := range r.Segments {
		if r.Segments[i].EndOffset == -1 {
			r.Segments[i].EndOffset = 0
			for _, f := range r.scans[i].frames {
				if inChain[[2]int64{int64(i), f.off}] {
					r.Segments[i].EndOffset = f.off + alignBlock(int64(f.h.Length))
				}
			}
		}
	}
	switch endState {
	case stateZero, stateValid:
		if ev.End != EndShort {
			ev.End = EndZero
		}
	case stateTorn:
		if ev.End != EndShort {
			ev.End = EndTorn
		}
	case stateForeign:
		if ev.End != EndShort {
			ev.End = EndForeign
		}
	case stateShort:
		ev.End = EndShort
		if endSeg >= 0 {
			note(endSeg, endOff, fmt.Sprintf("segment file ends at %d bytes, before the end of the log", r.scans[endSeg].size))
		}
	}
	if r.chainLen == 0 && len(r.scans) > 0 && endState == stateShort && r.scans[0].size == 0 {
		// An empty file where a segment is being created: nothing there.
		ev.End = EndZero
		problemSeg = -1
	}
	ev.LastIsClose = lastIsClose
	r.Evidence = ev
	r.Decision = Classify(ev)
	if haveUUID {
		r.LogUUID = hex.EncodeToString(r.uuid[:])
	}
	if endSeg >= 0 {
		r.EndSegment, r.EndOffset = r.scans[endSeg].id, endOff
	}
	if r.Decision.Verdict == Corrupt {
		if problemSeg < 0 {
			problemSeg, problemOff, problem = max(endSeg, 0), endOff, "damage at the end of the log"
		}
		if problemSeg < len(r.scans) {
			r.ProblemSegment = r.scans[problemSeg].id
		}
		r.ProblemOffset, r.Problem = problemOff, problem
	}
}
