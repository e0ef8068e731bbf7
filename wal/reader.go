package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"

	"github.com/tapewire/tapewire/vfs"
)

// Reader iterates over records in LSN order from a starting LSN. Next returns
// io.EOF when it has returned everything durable (a Reader of a live Log can
// be called again later to continue). A Reader is used by one goroutine.
type Reader struct {
	fs    vfs.FS
	log   *Log // nil for a Reader over an inspected directory
	segs  []segRef
	limit LSN // last LSN that may be returned

	from  LSN
	next  LSN    // LSN of the next record in the log (not necessarily returned)
	seg   int    // index in segs of the open segment, -1 before the first
	segID uint64 // its id (segs may shift when a live log is truncated)
	file  vfs.File
	win   *readAhead
	pos   int64 // offset of the next frame in the open segment

	// The segment after the open one, opened in advance so the read-ahead
	// runs on into it.
	nextFile vfs.File
	nextID   uint64
	nextSize int64

	lost error // the open segment was truncated away

	frame  []byte // current frame; records in [recPos, frameLen)
	recPos int
	recEnd int
	left   uint32 // records left in the current frame
}

type segRef struct {
	id       uint64
	path     string
	firstLSN LSN
}

// NewReader returns a Reader of l's records from LSN from (inclusive).
func (l *Log) NewReader(from LSN) (*Reader, error) {
	r := &Reader{fs: l.fs, log: l, from: max(from, 1), seg: -1}
	r.refresh()
	return r, r.seek()
}

// NewReader returns a Reader of the records of the recovered log the report
// describes, from LSN from. It reads files, so the directory must not change
// meanwhile (it is meant for tools working on a stopped appliance).
func (rep *Report) NewReader(fs vfs.FS, from LSN) (*Reader, error) {
	r := &Reader{fs: fs, from: max(from, 1), seg: -1, limit: rep.LastLSN}
	for i := 0; i < rep.chainLen; i++ {
		s := rep.scans[i]
		r.segs = append(r.segs, segRef{id: s.id, path: s.path, firstLSN: s.hdr.FirstLSN})
	}
	return r, r.seek()
}

func (r *Reader) refresh() {
	if r.log == nil {
		return
	}
	r.log.mu.Lock()
	r.segs = r.segs[:0]
	for _, s := range r.log.segments {
		if s.firstLSN != 0 {
			r.segs = append(r.segs, segRef{id: s.id, path: s.path, firstLSN: s.firstLSN})
		}
	}
	r.limit = LSN(r.log.durable.Load())
	r.log.mu.Unlock()
	if r.seg >= 0 {
		// Truncation may have removed segments before the open one.
		found := false
		for i, s := range r.segs {
			if s.id == r.segID {
				r.seg, found = i, true
			}
		}
		if !found {
			r.segs = append(r.segs[:0], segRef{id: r.segID})
			r.seg = 0
			r.lost = fmt.Errorf("wal: reader: segment %d was removed by TruncateBefore while the reader was in it (at LSN %d)", r.segID, r.next)
		}
	}
}

// seek opens the segment holding r.from.
func (r *Reader) seek() error {
	idx := -1
	for i, s := range r.segs {
		if s.firstLSN <= r.from {
			idx = i
		}
	}
	if len(r.segs) > 0 && idx < 0 {
		return fmt.Errorf("wal: reader from LSN %d: the log starts at LSN %d (truncated)", r.from, r.segs[0].firstLSN)
	}
	if idx < 0 {
		r.next = r.from
		return nil
	}
	return r.open(idx)
}

func (r *Reader) open(idx int) error {
	s := r.segs[idx]
	f, size := r.nextFile, r.nextSize
	if f == nil || r.nextID != s.id {
		var err error
		if f, size, err = openSegment(r.fs, s.path); err != nil {
			return fmt.Errorf("wal: reader: %w", err)
		}
	}
	if r.win == nil {
		r.win = newReadAhead()
		// A Reader dropped without Close still stops its read-ahead.
		runtime.AddCleanup(r, func(w *readAhead) { w.close() }, r.win)
	}
	r.win.reset(f, size) // no read of the files closed below is in flight
	if r.file != nil {
		_ = r.file.Close()
	}
	if r.nextFile != nil && r.nextFile != f {
		_ = r.nextFile.Close()
	}
	r.file, r.nextFile = f, nil
	r.seg, r.segID, r.pos, r.next, r.left = idx, s.id, SegmentHeaderSize, s.firstLSN, 0
	if idx+1 < len(r.segs) {
		// Best effort: if the next segment cannot be opened now, moving to
		// it later reports why.
		n := r.segs[idx+1]
		if nf, nsize, err := openSegment(r.fs, n.path); err == nil {
			r.nextFile, r.nextID, r.nextSize = nf, n.id, nsize
			r.win.setNext(nf, nsize)
		}
	}
	return nil
}

// Close releases the Reader's files and stops its read-ahead.
func (r *Reader) Close() error {
	if r.win != nil {
		r.win.close()
	}
	var err error
	if r.file != nil {
		err = r.file.Close()
		r.file = nil
	}
	if r.nextFile != nil {
		_ = r.nextFile.Close()
		r.nextFile = nil
	}
	return err
}

// Next returns the next record. Its Payload is valid until the next call.
// Replay path: it does not allocate, and decodes records inline.
func (r *Reader) Next() (Record, error) {
	for {
		if r.left > 0 {
			b, pos := r.frame, r.recPos
			if r.recEnd-pos >= RecordHeaderSize {
				plen := int(binary.LittleEndian.Uint32(b[pos:]))
				lsn := LSN(binary.LittleEndian.Uint64(b[pos+8:]))
				if lsn == r.next && plen <= r.recEnd-pos-RecordHeaderSize {
					start := pos + RecordHeaderSize
					end := start + plen
					r.recPos = min(pos+recordSize(plen), r.recEnd)
					r.left--
					r.next++
					if lsn >= r.from {
						return Record{LSN: lsn, Type: binary.LittleEndian.Uint16(b[pos+4:]), Payload: b[start:end:end]}, nil
					}
					continue
				}
			}
			// Inconsistent record in a CRC-valid frame: let the careful
			// decoder say what is wrong.
			_, _, err := decodeRecord(b, pos, r.recEnd, r.next)
			return Record{}, r.corrupt(fmt.Sprintf("frame before offset %d: %v", r.pos, err))
		}
		if r.next > r.limit {
			r.refresh()
			if r.lost != nil {
				return Record{}, r.lost
			}
			if r.next > r.limit {
				return Record{}, io.EOF
			}
		}
		if r.seg < 0 {
			if err := r.seek(); err != nil {
				return Record{}, err
			}
			if r.seg < 0 {
				return Record{}, io.EOF
			}
		}
		if err := r.nextFrame(); err != nil {
			return Record{}, err
		}
	}
}

// nextFrame loads the frame holding r.next, moving to the next segment when
// the current one has no more.
func (r *Reader) nextFrame() error {
	for retried := false; ; {
		s := r.segs[r.seg]
		b, err := r.win.at(r.pos, BlockSize)
		if err != nil {
			return err
		}
		h, st := peekFrame(b, s.id, r.pos, r.win.cur.size-r.pos)
		if st == stateValid {
			fb, err := r.win.at(r.pos, int(h.Length))
			if err != nil {
				return err
			}
			if len(fb) == int(h.Length) && checkFrame(fb, h, r.pos) && h.FirstLSN == r.next {
				r.frame, r.recPos, r.recEnd, r.left = fb, FrameHeaderSize, int(h.Length), h.Count
				r.pos += alignBlock(int64(h.Length))
				if h.Count == 0 || h.LastLSN() < r.from {
					// Entirely before from (or a close frame): skip it.
					r.next += LSN(h.Count)
					r.left = 0
				}
				return nil
			}
		}
		// No frame for r.next here: the segment ended, or the log moved on.
		if r.seg+1 >= len(r.segs) {
			r.refresh()
			if r.lost != nil {
				return r.lost
			}
		}
		if r.seg+1 < len(r.segs) && r.segs[r.seg+1].firstLSN == r.next {
			if err := r.open(r.seg + 1); err != nil {
				return err
			}
			continue
		}
		if r.log != nil && !retried {
			// A live log may have written this block after we read it.
			r.win.drop()
			retried = true
			continue
		}
		return r.corrupt(fmt.Sprintf("no valid frame with LSN %d at offset %d (found %s)", r.next, r.pos, st))
	}
}

func (r *Reader) corrupt(reason string) error {
	s := r.segs[r.seg]
	return &CorruptionError{Dir: filepath.Dir(s.path), Segment: s.id, Offset: r.pos, Reason: reason}
}

// IsCorruption reports whether err reports damaged log data.
func IsCorruption(err error) bool {
	var c *CorruptionError
	return errors.As(err, &c)
}
