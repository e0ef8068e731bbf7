package manifest

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tapewire/tapewire/lsm/internal/base"
)

// NumLevels is the number of levels, L0 to L6.
const NumLevels = 7

// DeletedFile names a file an edit removes from a level.
type DeletedFile struct {
	Level   int
	FileNum uint64
}

// NewFile is a file an edit adds to a level.
type NewFile struct {
	Level int
	Meta  *FileMetadata
}

// VersionEdit is one atomic change to the set of live tables, recorded in
// the manifest. Zero fields are "unchanged".
type VersionEdit struct {
	// NextFileNum is the smallest file number never used.
	NextFileNum uint64
	// LastSeq is the largest sequence number written to any table.
	LastSeq base.SeqNum
	// LastLSN is the highest log position whose writes are all in tables
	// (standalone or external log): recovery replays from LastLSN+1.
	LastLSN uint64
	// HasLastLSN distinguishes LastLSN 0 from "unchanged".
	HasLastLSN bool
	Deleted    []DeletedFile
	Added      []NewFile
}

// Tags of the encoding. Each field is a uvarint tag followed by its value;
// unknown tags are an error (a newer writer wrote a format this reader does
// not know).
const (
	tagNextFileNum = 1
	tagLastSeq     = 2
	tagLastLSN     = 3
	tagDeleted     = 4
	tagAdded       = 5
)

// Encode appends the edit's encoding to dst.
func (e *VersionEdit) Encode(dst []byte) []byte {
	if e.NextFileNum != 0 {
		dst = binary.AppendUvarint(dst, tagNextFileNum)
		dst = binary.AppendUvarint(dst, e.NextFileNum)
	}
	if e.LastSeq != 0 {
		dst = binary.AppendUvarint(dst, tagLastSeq)
		dst = binary.AppendUvarint(dst, uint64(e.LastSeq))
	}
	if e.HasLastLSN {
		dst = binary.AppendUvarint(dst, tagLastLSN)
		dst = binary.AppendUvarint(dst, e.LastLSN)
	}
	for _, d := range e.Deleted {
		dst = binary.AppendUvarint(dst, tagDeleted)
		dst = binary.AppendUvarint(dst, uint64(d.Level))
		dst = binary.AppendUvarint(dst, d.FileNum)
	}
	for _, a := range e.Added {
		m := a.Meta
		dst = binary.AppendUvarint(dst, tagAdded)
		dst = binary.AppendUvarint(dst, uint64(a.Level))
		dst = binary.AppendUvarint(dst, m.FileNum)
		dst = binary.AppendUvarint(dst, m.Size)
		dst = binary.AppendUvarint(dst, uint64(m.SmallestSeq))
		dst = binary.AppendUvarint(dst, uint64(m.LargestSeq))
		dst = binary.AppendUvarint(dst, uint64(len(m.Smallest)))
		dst = append(dst, m.Smallest...)
		dst = binary.AppendUvarint(dst, uint64(len(m.Largest)))
		dst = append(dst, m.Largest...)
	}
	return dst
}

var errTruncated = errors.New("truncated")

type decoder struct{ b []byte }

func (d *decoder) uvarint() (uint64, error) {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		return 0, errTruncated
	}
	d.b = d.b[n:]
	return v, nil
}

func (d *decoder) bytes() ([]byte, error) {
	n, err := d.uvarint()
	if err != nil {
		return nil, err
	}
	if n > uint64(len(d.b)) {
		return nil, errTruncated
	}
	out := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return out, nil
}

func (d *decoder) level() (int, error) {
	l, err := d.uvarint()
	if err != nil {
		return 0, err
	}
	if l >= NumLevels {
		return 0, fmt.Errorf("level %d is outside 0..%d", l, NumLevels-1)
	}
	return int(l), nil
}

// Decode parses an edit. The result owns its memory.
func (e *VersionEdit) Decode(b []byte) error {
	*e = VersionEdit{}
	d := decoder{b}
	for len(d.b) > 0 {
		tag, err := d.uvarint()
		if err != nil {
			return fmt.Errorf("version edit tag: %w", err)
		}
		switch tag {
		case tagNextFileNum:
			e.NextFileNum, err = d.uvarint()
		case tagLastSeq:
			var v uint64
			v, err = d.uvarint()
			e.LastSeq = base.SeqNum(v)
			if v > uint64(base.SeqNumMax) {
				err = fmt.Errorf("last seqnum %d exceeds 56 bits", v)
			}
		case tagLastLSN:
			e.LastLSN, err = d.uvarint()
			e.HasLastLSN = true
		case tagDeleted:
			var df DeletedFile
			if df.Level, err = d.level(); err == nil {
				df.FileNum, err = d.uvarint()
			}
			e.Deleted = append(e.Deleted, df)
		case tagAdded:
			err = e.decodeAdded(&d)
		default:
			return fmt.Errorf("version edit: unknown tag %d", tag)
		}
		if err != nil {
			return fmt.Errorf("version edit field %d: %w", tag, err)
		}
	}
	return nil
}

func (e *VersionEdit) decodeAdded(d *decoder) error {
	level, err := d.level()
	if err != nil {
		return err
	}
	m := &FileMetadata{}
	var ss, ls uint64
	for _, p := range []*uint64{&m.FileNum, &m.Size, &ss, &ls} {
		if *p, err = d.uvarint(); err != nil {
			return err
		}
	}
	m.SmallestSeq, m.LargestSeq = base.SeqNum(ss), base.SeqNum(ls)
	if m.Smallest, err = d.bytes(); err != nil {
		return err
	}
	if m.Largest, err = d.bytes(); err != nil {
		return err
	}
	if len(m.Smallest) < base.TrailerLen || len(m.Largest) < base.TrailerLen {
		return fmt.Errorf("file %d: key bounds shorter than a trailer", m.FileNum)
	}
	if base.CompareInternal(m.Smallest, m.Largest) > 0 {
		return fmt.Errorf("file %d: smallest key %s above largest %s", m.FileNum, base.FormatKey(m.Smallest), base.FormatKey(m.Largest))
	}
	if m.SmallestSeq > m.LargestSeq {
		return fmt.Errorf("file %d: smallest seqnum %d above largest %d", m.FileNum, m.SmallestSeq, m.LargestSeq)
	}
	e.Added = append(e.Added, NewFile{Level: level, Meta: m})
	return nil
}
