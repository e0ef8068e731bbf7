package base

import (
	"errors"
	"fmt"
)

// ErrCorruption is the sentinel every corruption error wraps, so callers can
// test with errors.Is(err, base.ErrCorruption).
var ErrCorruption = errors.New("lsm: corruption")

// CorruptionError reports damaged stored data at a known place: the file and
// the byte offset where the damaged unit (block, footer, record) starts.
type CorruptionError struct {
	File   string
	Offset int64
	Reason string
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("lsm: corruption in %s at offset %d: %s", e.File, e.Offset, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorruption) true.
func (e *CorruptionError) Unwrap() error { return ErrCorruption }

// Corruptf builds a CorruptionError.
func Corruptf(file string, offset int64, format string, args ...any) error {
	return &CorruptionError{File: file, Offset: offset, Reason: fmt.Sprintf(format, args...)}
}
