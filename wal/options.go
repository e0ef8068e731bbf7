package wal

import (
	"fmt"

	"github.com/tapewire/tapewire/vfs"
)

// Defaults of Options. Each limit is documented in doc.go.
const (
	DefaultSegmentSizeBytes = 64 << 20
	DefaultMaxGroupBytes    = 1 << 20
	// DefaultMaxInFlightFrames and DefaultPipelineFillBytes were chosen by
	// measurement (bench/results/wal.md): with groups formed by cohort
	// (doc.go, Commit pipeline) the frames in flight settle at the number
	// of cohorts, so the cap only has to leave room for them; 8 and 8 KiB
	// did best at 64 and 256 synchronous writers and no worse at 1 and 16.
	DefaultMaxInFlightFrames = 8
	DefaultMaxWaiters        = 4096
	DefaultPipelineFillBytes = 2 * BlockSize
	DefaultPreparedSegments  = 1
	DefaultRecycledSegments  = 2

	// MaxInFlightFramesLimit caps Options.MaxInFlightFrames.
	MaxInFlightFramesLimit = 16
)

// Options configures a Log. The zero value of every field means its default.
type Options struct {
	// FS is the file system; nil means the OS file system, logging through
	// Logf.
	FS vfs.FS
	// SegmentSizeBytes is the size every new segment is preallocated to.
	// A multiple of 4096, at least 2 blocks more than MaxGroupBytes.
	SegmentSizeBytes int64
	// MaxGroupBytes bounds one frame (one commit group): header, record
	// headers and payloads. An Append whose records need more is refused.
	MaxGroupBytes int
	// MaxRecordBytes bounds one record's payload. Default: whatever fits in
	// a frame of MaxGroupBytes on its own.
	MaxRecordBytes int
	// MaxInFlightFrames bounds frames written but not yet acknowledged
	// (1..16): the pipelining depth. Appends beyond wait for a slot.
	MaxInFlightFrames int
	// PipelineFillBytes is the size a commit group must reach before it is
	// written while other frames are in flight; with none in flight a
	// group is written at once, whatever its size. Every frame costs at
	// least one 4 KiB write, so starting tiny frames in parallel spends the
	// device's write rate on padding. Negative means 0 (always pipeline).
	PipelineFillBytes int
	// MaxWaiters bounds callers blocked in Append or WaitDurable at once;
	// one more gets an error naming the limit.
	MaxWaiters int
	// PreparedSegments is how many zeroed segments the background preparer
	// keeps ready ahead of the active one.
	PreparedSegments int
	// RecycledSegments is how many segments removed by TruncateBefore are
	// kept for reuse instead of being deleted (reuse skips zeroing).
	// Negative means none.
	RecycledSegments int
	// Notify, if set, is called with the durable LSN each time it advances,
	// in LSN order, and once with a non-nil error when the log fails. It is
	// called with the log's lock held from the commit path: it must return
	// quickly and must not call the Log.
	Notify func(durable LSN, err error)
	// Logf receives rare notices (recovery outcome, O_DIRECT fallback).
	Logf func(format string, args ...any)
	// DeferSealedVerification makes Open scan only the tail of the log:
	// segments whose every record a verified later frame promised durable
	// are taken from their headers, and a Reader verifies their frames as
	// it reads them (a damaged one is a *CorruptionError from Next naming
	// the segment and the offset). For an owner that reads the log from
	// where it left off right after Open (the appliance's replay), this
	// saves a whole read of the log. Damage in a segment no Reader reads
	// is found only by Inspect (`appliance wal verify`). See doc.go,
	// Recovery.
	DeferSealedVerification bool
}

func (o *Options) withDefaults() (Options, error) {
	r := *o
	if r.Logf == nil {
		r.Logf = func(string, ...any) {}
	}
	if r.FS == nil {
		r.FS = &vfs.OS{Logf: r.Logf}
	}
	if r.SegmentSizeBytes == 0 {
		r.SegmentSizeBytes = DefaultSegmentSizeBytes
	}
	if r.MaxGroupBytes == 0 {
		r.MaxGroupBytes = DefaultMaxGroupBytes
	}
	if r.MaxInFlightFrames == 0 {
		r.MaxInFlightFrames = DefaultMaxInFlightFrames
	}
	if r.PipelineFillBytes == 0 {
		r.PipelineFillBytes = DefaultPipelineFillBytes
	} else if r.PipelineFillBytes < 0 {
		r.PipelineFillBytes = 0
	}
	if r.MaxWaiters == 0 {
		r.MaxWaiters = DefaultMaxWaiters
	}
	if r.PreparedSegments == 0 {
		r.PreparedSegments = DefaultPreparedSegments
	}
	if r.RecycledSegments == 0 {
		r.RecycledSegments = DefaultRecycledSegments
	} else if r.RecycledSegments < 0 {
		r.RecycledSegments = 0
	}
	if r.MaxGroupBytes < FrameHeaderSize+RecordHeaderSize || r.MaxGroupBytes > MaxFrameBytes {
		return r, fmt.Errorf("wal: MaxGroupBytes %d out of range [%d, %d]", r.MaxGroupBytes, FrameHeaderSize+RecordHeaderSize, MaxFrameBytes)
	}
	if r.MaxRecordBytes == 0 {
		r.MaxRecordBytes = r.MaxGroupBytes - FrameHeaderSize - RecordHeaderSize
	}
	if r.MaxRecordBytes < 0 || recordSize(r.MaxRecordBytes)+FrameHeaderSize > r.MaxGroupBytes {
		return r, fmt.Errorf("wal: MaxRecordBytes %d does not fit in a frame of MaxGroupBytes %d", r.MaxRecordBytes, r.MaxGroupBytes)
	}
	if r.SegmentSizeBytes%BlockSize != 0 || r.SegmentSizeBytes < SegmentHeaderSize+alignBlock(int64(r.MaxGroupBytes))+BlockSize {
		return r, fmt.Errorf("wal: SegmentSizeBytes %d must be a multiple of %d and at least MaxGroupBytes (%d) rounded up plus %d",
			r.SegmentSizeBytes, BlockSize, r.MaxGroupBytes, 2*BlockSize)
	}
	if r.MaxInFlightFrames < 1 || r.MaxInFlightFrames > MaxInFlightFramesLimit {
		return r, fmt.Errorf("wal: MaxInFlightFrames %d out of range [1, %d]", r.MaxInFlightFrames, MaxInFlightFramesLimit)
	}
	if r.MaxWaiters < 1 || r.PreparedSegments < 1 || r.RecycledSegments < 0 {
		return r, fmt.Errorf("wal: MaxWaiters %d and PreparedSegments %d must be at least 1, RecycledSegments %d at least 0",
			r.MaxWaiters, r.PreparedSegments, r.RecycledSegments)
	}
	return r, nil
}
