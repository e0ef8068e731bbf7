package appliance

import (
	"encoding/binary"
	"fmt"

	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/wal"
)

// WAL records written by the storage tenant. Record.Type says which; every
// payload starts with the topic id so one log carries every topic.
//
//	type 1 frame       topic u32 LE | reserved u32 (0) | frame (schema header + payload)
//	type 2 quarantine  topic u32 LE | reason bytes u16 LE | reserved u16 | reason | frame bytes
//	type 3 catalog     topic u32 LE | kind u32 LE (1 ring log, 2 internal) | topic name
//
// A frame record's frame starts 8 bytes into the payload, and WAL payloads
// are 8-aligned, so replay reads frames in place.
const (
	recFrame      uint16 = 1
	recQuarantine uint16 = 2
	recCatalog    uint16 = 3

	// recordPrefixBytes precedes the frame in frame records.
	recordPrefixBytes = 8
	// maxQuarantineReasonBytes bounds the reason stored with a malformed
	// frame (longer reasons are cut).
	maxQuarantineReasonBytes = 512
)

// Catalog kinds of topics.
const (
	catalogRing     uint32 = 1
	catalogInternal uint32 = 2
)

// recordBytes is the WAL space a frame record of frameBytes takes: record
// header, prefix, frame, padding to 8.
func recordBytes(frameBytes int) int {
	return wal.RecordHeaderSize + schema.AlignedSize(recordPrefixBytes+frameBytes)
}

// maxRecordBytes is the most WAL space one frame of a topic with
// maxFrameBytes can take: as a quarantine record with the longest reason.
func maxRecordBytes(maxFrameBytes int) int {
	return wal.RecordHeaderSize + schema.AlignedSize(8+maxQuarantineReasonBytes+maxFrameBytes)
}

// putFrameRecord writes a frame record's payload into dst (which must hold
// recordPrefixBytes+len(frame)) and returns its length. Hot path.
func putFrameRecord(dst []byte, topic uint32, frame []byte) int {
	binary.LittleEndian.PutUint32(dst[0:4], topic)
	binary.LittleEndian.PutUint32(dst[4:8], 0)
	return recordPrefixBytes + copy(dst[recordPrefixBytes:], frame)
}

// putQuarantineRecord writes a quarantine record's payload into dst.
func putQuarantineRecord(dst []byte, topic uint32, reason string, frame []byte) int {
	reason = reason[:min(len(reason), maxQuarantineReasonBytes)]
	binary.LittleEndian.PutUint32(dst[0:4], topic)
	binary.LittleEndian.PutUint16(dst[4:6], uint16(len(reason)))
	binary.LittleEndian.PutUint16(dst[6:8], 0)
	n := 8 + copy(dst[8:], reason)
	return n + copy(dst[n:], frame)
}

// catalogRecord builds a catalog record's payload.
func catalogRecord(topic uint32, kind uint32, name string) []byte {
	b := make([]byte, 8+len(name))
	binary.LittleEndian.PutUint32(b[0:4], topic)
	binary.LittleEndian.PutUint32(b[4:8], kind)
	copy(b[8:], name)
	return b
}

// decodedRecord is a WAL record taken apart.
type decodedRecord struct {
	kind   uint16
	topic  uint32
	frame  []byte // frame and quarantine records
	reason []byte // quarantine records
	seq    uint64 // frame and quarantine records (from the frame header, 0 if too short)
	name   []byte // catalog records
	cat    uint32 // catalog kind
}

// decodeRecord parses a record's payload. It never panics: a record that
// does not parse is an error naming its LSN (the WAL's CRC makes this a bug
// or a format mismatch, not disk damage).
func decodeRecord(typ uint16, lsn wal.LSN, p []byte) (decodedRecord, error) {
	d := decodedRecord{kind: typ}
	if len(p) < 8 {
		return d, fmt.Errorf("wal record %d (type %d): %d bytes, shorter than its 8-byte prefix", lsn, typ, len(p))
	}
	d.topic = binary.LittleEndian.Uint32(p[0:4])
	switch typ {
	case recFrame:
		d.frame = p[recordPrefixBytes:]
		if len(d.frame) < schema.HeaderSize {
			return d, fmt.Errorf("wal record %d: frame of %d bytes is shorter than its %d-byte header", lsn, len(d.frame), schema.HeaderSize)
		}
		d.seq = binary.LittleEndian.Uint64(d.frame[8:16])
	case recQuarantine:
		n := int(binary.LittleEndian.Uint16(p[4:6]))
		if 8+n > len(p) {
			return d, fmt.Errorf("wal record %d: quarantine reason of %d bytes overruns the %d-byte record", lsn, n, len(p))
		}
		d.reason = p[8 : 8+n]
		d.frame = p[8+n:]
		if len(d.frame) >= 16 {
			d.seq = binary.LittleEndian.Uint64(d.frame[8:16])
		}
	case recCatalog:
		d.cat = binary.LittleEndian.Uint32(p[4:8])
		d.name = p[8:]
	default:
		return d, fmt.Errorf("wal record %d: unknown record type %d (a newer appliance wrote this log?)", lsn, typ)
	}
	return d, nil
}

// FrameRecord returns the WAL record the storage tenant writes for a frame
// of the topic with catalog id topicID, for tools and benchmarks that build
// a log to replay (the payload is a new slice).
func FrameRecord(topicID uint32, frame []byte) wal.Record {
	p := make([]byte, recordPrefixBytes+len(frame))
	putFrameRecord(p, topicID, frame)
	return wal.Record{Type: recFrame, Payload: p}
}
