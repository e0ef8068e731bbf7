package appliance

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"

	"github.com/tapewire/tapewire/lsm"
	"github.com/tapewire/tapewire/wal"
)

// The store's side of the storage tenant: WAL records → LSM batches, for
// the applier (durable batches from the committer) and for recovery (the
// WAL replayed from the store's covered LSN). Both build batches the same
// way, so a replay leaves the store as the applier would have.

// applier applies durable batches to the LSM in LSN order: the event log,
// the quarantine and the materialized state. Batches that are already
// waiting when it takes one join it, up to applyGroupMaxBatches and a
// quarter of a memtable: one LSM batch for the group, applied at the LSN of
// its last record, so a busy applier makes fewer, larger commits and writes
// a state key updated in several of them once.
func (s *storage) applier() {
	defer close(s.applied)
	group := make([]*batch, 0, applyGroupMaxBatches)
	for b := range s.applyCh {
		group = append(group[:0], b)
		mem := batchMemBytes(b)
	gather:
		for len(group) < cap(group) && mem < s.groupMemBytes {
			select {
			case nb, ok := <-s.applyCh:
				if !ok {
					break gather
				}
				group = append(group, nb)
				mem += batchMemBytes(nb)
			default:
				break gather
			}
		}
		s.applyGroup(group)
	}
}

// batchMemBytes bounds the memtable space a batch's records take: at most
// two entries (event and state key) of at most its WAL bytes each, plus
// their node overhead.
func batchMemBytes(b *batch) uint64 {
	return 2*uint64(b.walBytes) + 2*stateNodeOverheadBytes*uint64(len(b.records))
}

// applyGroupMaxBatches bounds the durable batches the applier merges into
// one LSM batch.
const applyGroupMaxBatches = 8

// applyGroup applies a group of durable batches (in LSN order) as one LSM
// batch and hands the batches back to the committer. Hot path for the
// applier: no allocation once the buffers have grown.
func (s *storage) applyGroup(group []*batch) {
	if s.applyErr == nil {
		if err := s.applyBatches(group); err != nil {
			s.applyErr = err
			s.setErr(err)
			s.logf("storage: %v", err)
		}
	}
	for _, b := range group {
		for _, req := range b.admin {
			req.done <- s.applyErr
		}
		if b.lastLSN > 0 {
			s.appliedLSN.Store(uint64(b.lastLSN))
		}
		b.reset()
		s.free <- b
	}
	s.wake() // a committer parked with every batch busy can go on
}

// applyBatches turns batches (in LSN order) into one LSM batch applied at
// the LSN of their last record.
func (s *storage) applyBatches(group []*batch) error {
	sb := &s.build
	sb.reset()
	var last wal.LSN
	for _, b := range group {
		for i := range b.records {
			r := &b.records[i]
			if err := sb.add(r.Type, b.lastLSN, r.Payload); err != nil {
				return err
			}
		}
		if len(b.records) > 0 {
			last = b.lastLSN
		}
	}
	if sb.records == 0 {
		return nil
	}
	if err := s.db.ApplyAt(sb.batch(), uint64(last)); err != nil {
		return fmt.Errorf("apply batches ending at WAL LSN %d to the store: %w", last, err)
	}
	return nil
}

// storeBatch builds the LSM batch of a run of WAL records: the event key
// (e/), quarantine key (q/) or catalog key (m/) of every record, and the
// state key (s/) of every frame that has one — coalesced: only the last
// update of each state key in the batch is written (stateCoalescer). One
// per goroutine; reused from batch to batch.
type storeBatch struct {
	lb     lsm.Batch
	events *eventRuns // replay with recovery.ingest_event_log: e/ keys for lsm.Ingest
	// skipEvents (replay with recovery.backfill_event_log): no e/ keys;
	// seqs keeps the newest sequence number per topic of the frames
	// skipped (the backfill writes their keys after Open).
	skipEvents bool
	seqs       topicSeqs
	records    int
	keyBuf     []byte
	stateBuf   []byte
	extract    stateExtractor
	state      stateCoalescer
}

// memBytes bounds the memtable space the batch will take once the state
// updates held back for coalescing are added (event-log keys held for
// lsm.Ingest take none).
func (sb *storeBatch) memBytes() uint64 {
	return sb.lb.MemTableBytes() + uint64(len(sb.state.bytes)) + uint64(len(sb.state.updates))*stateNodeOverheadBytes
}

// ingestBytes is the bytes of event-log keys and frames held for
// lsm.Ingest.
func (sb *storeBatch) ingestBytes() uint64 {
	if sb.events == nil {
		return 0
	}
	return uint64(sb.events.bytes)
}

// stateNodeOverheadBytes bounds a memtable entry's bytes beyond its key and
// value (node header, tallest tower, trailer, alignment).
const stateNodeOverheadBytes = 128

// reset empties the batch, keeping its buffers.
func (sb *storeBatch) reset() {
	sb.lb.Reset()
	sb.records = 0
	sb.seqs = sb.seqs[:0]
	sb.state.reset()
	if sb.events != nil {
		sb.events.reset()
	}
}

// add adds the keys of one WAL record (lsn names it in errors). The
// payload is not kept. Hot path: no allocation for frame records once the
// buffers have grown.
func (sb *storeBatch) add(typ uint16, lsn wal.LSN, payload []byte) error {
	d, err := decodeRecord(typ, lsn, payload)
	if err != nil {
		return err
	}
	sb.records++
	switch d.kind {
	case recFrame:
		if sb.skipEvents {
			sb.seqs.note(d.topic, d.seq)
		} else {
			sb.keyBuf = appendEventKey(sb.keyBuf[:0], d.topic, d.seq)
			if sb.events == nil || !sb.events.add(d.topic, sb.keyBuf, d.frame) {
				sb.lb.Set(sb.keyBuf, d.frame)
			}
		}
		// Frames from the rings were verified before they were logged;
		// the state accessors rely on that.
		if k, ok := sb.extract.stateKey(sb.stateBuf[:0], d.frame); ok {
			sb.stateBuf = k
			sb.state.put(&sb.lb, k, d.frame)
		}
	case recQuarantine:
		sb.keyBuf = appendQuarantineKey(sb.keyBuf[:0], d.topic, d.seq)
		sb.lb.Set(sb.keyBuf, payload[4:]) // reason length, reserved, reason, frame
	case recCatalog:
		var v [8]byte
		binary.BigEndian.PutUint32(v[0:4], d.topic)
		binary.BigEndian.PutUint32(v[4:8], d.cat)
		sb.lb.Set(catalogKey(string(d.name)), v[:])
	}
	return nil
}

// batch completes the LSM batch (the coalesced state updates go last) and
// returns it; it stays valid until reset.
func (sb *storeBatch) batch() *lsm.Batch {
	sb.state.emit(&sb.lb)
	return &sb.lb
}

// stateCoalescer keeps, within one LSM batch, only the last update of each
// state key. Readers of s/ ask for the newest state, and a batch is applied
// atomically, so the earlier updates of a key in the same batch could never
// be seen; the event log (e/) keeps every one of them. The state a batch
// leaves is therefore the state a replay of its events leaves.
//
// Bounded: it holds at most coalesceMaxKeys distinct keys; at that point
// the updates so far go into the batch and it starts over (a later update
// of the same key then follows in the batch with a higher sequence number,
// still correct, only not coalesced). Frames are copied in, so the caller's
// record memory may be reused. No allocation once its buffers have grown.
type stateCoalescer struct {
	seed    maphash.Seed
	gen     uint32         // slots of this generation are in use
	slots   []coalesceSlot // open addressing, 2 × coalesceMaxKeys
	updates []stateUpdate  // distinct keys, first-seen order
	bytes   []byte         // keys and frames of updates
}

// coalesceMaxKeys bounds the distinct state keys coalesced at once (slots
// take 2 × 8 bytes each).
const coalesceMaxKeys = 4096

type coalesceSlot struct {
	gen    uint32 // in use iff equal to stateCoalescer.gen
	update uint32 // index into updates
}

type stateUpdate struct {
	hash           uint64
	keyOff, keyLen uint32
	valOff, valLen uint32
}

func (c *stateCoalescer) reset() {
	c.updates = c.updates[:0]
	c.bytes = c.bytes[:0]
	c.gen++
	if c.gen == 0 { // wrapped: no slot may claim the new generation
		clear(c.slots)
		c.gen = 1
	}
}

// put records frame as the newest value of key. Hot path.
func (c *stateCoalescer) put(lb *lsm.Batch, key, frame []byte) {
	if c.slots == nil {
		c.seed = maphash.MakeSeed()
		c.slots = make([]coalesceSlot, 2*coalesceMaxKeys)
		c.gen = 1
	}
	h := maphash.Bytes(c.seed, key)
	mask := uint64(len(c.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		sl := &c.slots[i]
		if sl.gen != c.gen {
			if len(c.updates) == coalesceMaxKeys {
				c.emit(lb)
				c.put(lb, key, frame)
				return
			}
			*sl = coalesceSlot{gen: c.gen, update: uint32(len(c.updates))}
			u := stateUpdate{hash: h, keyOff: uint32(len(c.bytes)), keyLen: uint32(len(key))}
			c.bytes = append(c.bytes, key...)
			u.valOff, u.valLen = uint32(len(c.bytes)), uint32(len(frame))
			c.bytes = append(c.bytes, frame...)
			c.updates = append(c.updates, u)
			return
		}
		u := &c.updates[sl.update]
		if u.hash == h && bytes.Equal(c.bytes[u.keyOff:u.keyOff+u.keyLen], key) {
			// A newer update of the same key: keep its frame instead. The
			// old frame's bytes stay unused until the next reset.
			u.valOff, u.valLen = uint32(len(c.bytes)), uint32(len(frame))
			c.bytes = append(c.bytes, frame...)
			return
		}
	}
}

// emit adds the coalesced updates to lb and starts over.
func (c *stateCoalescer) emit(lb *lsm.Batch) {
	for _, u := range c.updates {
		lb.Set(c.bytes[u.keyOff:u.keyOff+u.keyLen], c.bytes[u.valOff:u.valOff+u.valLen])
	}
	c.reset()
}

// eventRuns holds, during a replay with recovery.ingest_event_log, the
// event-log keys of one group of WAL records: one sorted run per topic,
// written straight into SSTables with lsm.Ingest before the group's other
// keys are applied. A topic's sequence numbers increase through the WAL,
// so its e/ keys arrive sorted; one that does not follow the run's last
// key goes into the memtable batch instead (and the ingest of a run that
// then overlaps the memtable flushes it first: ingestEvents).
type eventRuns struct {
	runs  []eventRun
	bytes int // keys and frames held
	// budgetBytes is the group's cut (replay: lsm.memtable_size_bytes):
	// a topic's first run is sized for it at once instead of growing by
	// copying, which cost a third of the replay's reader.
	budgetBytes int
}

type eventRun struct {
	topic uint32
	run   lsm.SortedRun
}

func (e *eventRuns) reset() {
	for i := range e.runs {
		e.runs[i].run.Reset()
	}
	e.runs = e.runs[:0]
	e.bytes = 0
}

// add appends key → frame to topic's run, unless key does not follow the
// run's last key. Hot path of the replay: no allocation once the runs'
// buffers have grown.
func (e *eventRuns) add(topic uint32, key, frame []byte) bool {
	for i := range e.runs {
		if r := &e.runs[i]; r.topic == topic {
			if !r.run.Add(key, frame) {
				return false
			}
			e.bytes += len(key) + len(frame)
			return true
		}
	}
	if len(e.runs) < cap(e.runs) {
		e.runs = e.runs[:len(e.runs)+1] // reuse the run's buffers
	} else {
		e.runs = append(e.runs, eventRun{})
	}
	r := &e.runs[len(e.runs)-1]
	r.topic = topic
	r.run.Reset()
	if len(e.runs) == 1 {
		// Most replays hold one busy topic; others grow as they fill.
		r.run.Grow(e.budgetBytes+len(key)+len(frame), e.budgetBytes/minEventPairBytes)
	}
	r.run.Add(key, frame)
	e.bytes += len(key) + len(frame)
	return true
}

// minEventPairBytes is the smallest e/ key and frame (a header-only frame)
// an event run holds: it sizes the run's pair index.
const minEventPairBytes = 16 + 24

// ingestEvents writes the runs into SSTables (lsm.Ingest). A run whose key
// range overlaps the memtable (an out-of-order key went there) is ingested
// after a flush of the memtables: the flush covers only WAL records applied
// before this group, whose event-log keys were all ingested already.
func ingestEvents(db *lsm.DB, e *eventRuns) error {
	for i := range e.runs {
		r := &e.runs[i]
		err := db.Ingest(&r.run)
		if errors.Is(err, lsm.ErrIngestOverlap) {
			if err = db.Flush(); err == nil {
				err = db.Ingest(&r.run)
			}
		}
		if err != nil {
			return fmt.Errorf("ingest %d event-log keys of topic %d: %w", r.run.Len(), r.topic, err)
		}
	}
	return nil
}

// topicSeqs is the newest sequence number seen per topic: a short list
// (a replay holds few topics), searched linearly. No allocation once grown.
type topicSeqs []topicSeq

type topicSeq struct {
	topic uint32
	seq   uint64
}

// note records seq for topic if it is the newest seen.
func (t *topicSeqs) note(topic uint32, seq uint64) {
	s := *t
	for i := range s {
		if s[i].topic == topic {
			s[i].seq = max(s[i].seq, seq)
			return
		}
	}
	*t = append(s, topicSeq{topic, seq})
}

// merge notes every entry of o.
func (t *topicSeqs) merge(o topicSeqs) {
	for _, e := range o {
		t.note(e.topic, e.seq)
	}
}

func (t topicSeqs) toMap() map[uint32]uint64 {
	m := make(map[uint32]uint64, len(t))
	for _, e := range t {
		m[e.topic] = e.seq
	}
	return m
}
