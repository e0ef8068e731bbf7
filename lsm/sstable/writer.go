package sstable

import (
	"bytes"
	"fmt"
	"io"

	"github.com/tapewire/tapewire/lsm/bloom"
	"github.com/tapewire/tapewire/lsm/internal/base"
)

// WriterOptions configure the layout of a table.
type WriterOptions struct {
	// BlockSizeBytes is the target size of a data block (default 4096).
	BlockSizeBytes int
	// BlockSizeFor, if set, chooses the target size of each data block from
	// the user key that starts it (0 means BlockSizeBytes): small blocks for
	// point-looked-up state, large ones for scanned history, in one table.
	BlockSizeFor func(userKey []byte) int
	// RestartInterval is the number of keys between restart points in data
	// blocks (default 16).
	RestartInterval int
	// BloomBitsPerKey sizes the filter (default 10; 0 keeps the default; a
	// negative value writes a zero-length filter block, which readers treat
	// as "no filter": every lookup reads the index and a data block).
	BloomBitsPerKey int
	// WriteBufferBytes is how much the writer buffers before it writes to the
	// underlying file (default 256 KiB).
	WriteBufferBytes int
}

func (o WriterOptions) withDefaults() WriterOptions {
	if o.BlockSizeBytes <= 0 {
		o.BlockSizeBytes = 4096
	}
	if o.RestartInterval <= 0 {
		o.RestartInterval = 16
	}
	if o.BloomBitsPerKey == 0 {
		o.BloomBitsPerKey = 10
	}
	if o.WriteBufferBytes <= 0 {
		o.WriteBufferBytes = 256 << 10
	}
	return o
}

// Writer builds a table from entries added in strictly increasing internal
// key order. It is used by one goroutine.
type Writer struct {
	out     io.Writer
	fileNum uint64
	opts    WriterOptions

	buf    []byte // pending output
	offset uint64 // bytes emitted so far (written + buffered)

	data blockWriter
	// dataTarget is the size at which the current data block is finished.
	dataTarget int
	index      blockWriter
	filter     *bloom.Writer
	props      Properties
	lastKey    []byte
	// pendingHandle is the finished data block still waiting for its index
	// entry, which is written when the next key (or Finish) is known so the
	// separator can be shortened.
	pendingHandle Handle
	pending       bool
	sepBuf        []byte
	handleBuf     []byte
	err           error
	finished      bool
}

// NewWriter returns a Writer that writes table fileNum to out.
func NewWriter(out io.Writer, fileNum uint64, opts WriterOptions) *Writer {
	opts = opts.withDefaults()
	w := &Writer{out: out, fileNum: fileNum, opts: opts}
	w.data.restartInterval = opts.RestartInterval
	w.index.restartInterval = 1
	if opts.BloomBitsPerKey > 0 {
		w.filter, _ = bloom.NewWriter(min(opts.BloomBitsPerKey, 64))
	}
	w.props.BlockSize = uint64(opts.BlockSizeBytes)
	w.props.RestartInterval = uint64(opts.RestartInterval)
	w.props.BloomBitsPerKey = uint64(max(opts.BloomBitsPerKey, 0))
	return w
}

// Add appends an entry. ikey is an encoded internal key greater than every
// key added before.
func (w *Writer) Add(ikey, value []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.finished {
		return fmt.Errorf("sstable: Add after Finish")
	}
	if len(ikey) < base.TrailerLen {
		return fmt.Errorf("sstable: key of %d bytes is shorter than the %d-byte trailer", len(ikey), base.TrailerLen)
	}
	if w.props.NumEntries > 0 && base.CompareInternal(w.lastKey, ikey) >= 0 {
		return fmt.Errorf("sstable: key %s added after %s: keys must strictly increase", base.FormatKey(ikey), base.FormatKey(w.lastKey))
	}
	if w.pending {
		w.addIndexEntry(ikey)
	}
	ukey, trailer := base.UserKey(ikey), base.Trailer(ikey)
	if w.filter != nil {
		w.filter.Add(ukey)
	}
	seq := base.TrailerSeq(trailer)
	if w.props.NumEntries == 0 {
		w.props.SmallestKey = append([]byte(nil), ikey...)
		w.props.SmallestSeq, w.props.LargestSeq = seq, seq
	}
	w.props.SmallestSeq = min(w.props.SmallestSeq, seq)
	w.props.LargestSeq = max(w.props.LargestSeq, seq)
	if base.TrailerKind(trailer) == base.KindDelete {
		w.props.NumDeletions++
	}
	w.props.NumEntries++
	w.props.RawKeyBytes += uint64(len(ikey))
	w.props.RawValueBytes += uint64(len(value))
	if w.data.entries == 0 {
		w.dataTarget = w.opts.BlockSizeBytes
		if w.opts.BlockSizeFor != nil {
			if n := w.opts.BlockSizeFor(ukey); n > 0 {
				w.dataTarget = n
			}
		}
	}
	w.data.add(ikey, value)
	w.lastKey = append(w.lastKey[:0], ikey...)
	if w.data.estimatedSize() >= w.dataTarget {
		w.flushDataBlock()
	}
	return w.err
}

// EstimatedSize is the size the file would have if finished now, without
// the filter, index and footer.
func (w *Writer) EstimatedSize() uint64 { return w.offset + uint64(w.data.estimatedSize()) }

// NumEntries is the number of entries added.
func (w *Writer) NumEntries() uint64 { return w.props.NumEntries }

func (w *Writer) flushDataBlock() {
	if w.data.entries == 0 {
		return
	}
	h := w.writeBlock(w.data.finish(), KindData)
	w.props.DataBytes += h.Length + BlockTrailerLen
	w.props.NumDataBlocks++
	w.data.reset()
	w.pendingHandle, w.pending = h, true
}

// addIndexEntry writes the index entry of the pending block with a separator
// between its last key and next (nil at the end of the table).
func (w *Writer) addIndexEntry(next []byte) {
	w.sepBuf = separator(w.sepBuf[:0], w.lastKey, next)
	w.handleBuf = appendHandle(w.handleBuf[:0], w.pendingHandle)
	w.index.add(w.sepBuf, w.handleBuf)
	w.pending = false
}

// separator appends a key k with last <= k < next that is as short as the
// user keys allow: the shortest user key between them with the largest
// trailer, or last itself when no shorter key fits (and at the end).
func separator(dst, last, next []byte) []byte {
	if next != nil {
		a, b := base.UserKey(last), base.UserKey(next)
		n := min(len(a), len(b))
		i := 0
		for i < n && a[i] == b[i] {
			i++
		}
		if i < n && a[i] < 0xff && a[i]+1 < b[i] {
			sep := append(append(dst, a[:i]...), a[i]+1)
			if bytes.Compare(sep, a) > 0 && bytes.Compare(sep, b) < 0 && len(sep) < len(a) {
				return base.AppendInternalKey(sep, nil, base.SeqNumMax, base.KindMax)
			}
			dst = dst[:0]
		}
	}
	return append(dst, last...)
}

func (w *Writer) writeBlock(contents []byte, kind BlockKind) Handle {
	h := Handle{Offset: w.offset, Length: uint64(len(contents))}
	w.buf = append(w.buf, contents...)
	w.buf = append(w.buf, byte(kind))
	sum := Checksum(w.buf[len(w.buf)-len(contents)-1:len(w.buf)-1], kind, w.fileNum, h.Offset)
	w.buf = append(w.buf, byte(sum), byte(sum>>8), byte(sum>>16), byte(sum>>24))
	w.offset += h.Length + BlockTrailerLen
	if len(w.buf) >= w.opts.WriteBufferBytes {
		w.flushBuf()
	}
	return h
}

func (w *Writer) flushBuf() {
	if w.err != nil || len(w.buf) == 0 {
		return
	}
	if _, err := w.out.Write(w.buf); err != nil {
		w.err = fmt.Errorf("sstable: write table %d at offset %d: %w", w.fileNum, w.offset-uint64(len(w.buf)), err)
	}
	w.buf = w.buf[:0]
}

// Finish writes the filter, index, properties and footer and flushes
// everything to the underlying writer. The caller syncs and closes the file.
// It returns the table's properties and its total size.
func (w *Writer) Finish() (Properties, uint64, error) {
	if w.err != nil {
		return Properties{}, 0, w.err
	}
	if w.finished {
		return Properties{}, 0, fmt.Errorf("sstable: Finish called twice")
	}
	w.finished = true
	w.flushDataBlock()
	if w.pending {
		w.addIndexEntry(nil)
	}
	w.props.LargestKey = append([]byte(nil), w.lastKey...)

	var filterContents []byte
	if w.filter != nil {
		filterContents = w.filter.Finish(nil)
	}
	var f footer
	f.filter = w.writeBlock(filterContents, KindFilter)
	w.props.FilterBytes = f.filter.Length + BlockTrailerLen
	if w.index.entries == 0 {
		// An empty table still has a well-formed (one-restart) index block.
		w.index.restarts = append(w.index.restarts, 0)
	}
	f.index = w.writeBlock(w.index.finish(), KindIndex)
	w.props.IndexBytes = f.index.Length + BlockTrailerLen
	f.properties = w.writeBlock(w.props.encode(nil), KindProperties)
	f.version = FormatVersion
	w.buf = f.encode(w.buf, w.fileNum, w.offset)
	w.offset += FooterLen
	w.flushBuf()
	if w.err != nil {
		return Properties{}, 0, w.err
	}
	return w.props, w.offset, nil
}
