package appliance

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tapewire/tapewire/lsm"
	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/shm"
	"github.com/tapewire/tapewire/tune"
	"github.com/tapewire/tapewire/wal"
)

// storageTopic is one durable log topic as the storage tenant reads it.
//
// One reliable ManualRelease subscription: the committer reads frames
// ahead zero-copy (copying each once, into its batch) and releases them
// (Release) only once durable. A publisher may write position q only while
// q < released + capacity, so the frames read ahead stay intact, and after
// a kill -9 the frames between the durable and published positions are
// still in the ring for the next start to persist.
type storageTopic struct {
	index     int
	id        uint32
	name      string
	sub       *ring.Subscriber
	lg        *ring.Log // the subscription's handle: positions and AdvanceDurable
	park      parkWords
	maxRecord int // WAL bytes of the largest record this topic can produce

	lastSeq uint64 // last sequence number accepted (stored or quarantined)
	haveSeq bool

	// durableTarget is the end of the newest frame the WAL made durable;
	// durableAt is what the ring's durable position was advanced to. They
	// differ while the publisher has committed a frame (its length word,
	// which the subscription reads) but not yet stored the published position
	// after it: ring refuses a durable position past the published one, so
	// the rest of the advance waits for that store (advanceDurable).
	// Committer-owned.
	durableTarget uint64
	durableAt     uint64
	durableLagged bool                  // counted in storage.durableLag
	failed        atomic.Pointer[error] // a ring error that stopped reading this topic

	frames      atomic.Uint64 // frames persisted (event log)
	bytes       atomic.Uint64 // frame bytes persisted
	quarantined atomic.Uint64
	duplicates  atomic.Uint64 // frames read again after a restart, already stored
	lost        atomic.Uint64 // sequence numbers never seen (overwritten while the appliance was down)
	released    atomic.Uint64 // frames released to the publisher
	// durableDeferred counts durable advances that waited for the
	// published position (advanceDurable).
	durableDeferred atomic.Uint64
}

// internalTopic is a topic with no ring whose frames the appliance makes
// itself (UsersTopic).
type internalTopic struct {
	id      uint32
	name    string
	lastSeq uint64
	haveSeq bool
	frames  atomic.Uint64
}

// topicProgress is what one batch read from one topic.
type topicProgress struct {
	frames uint64 // frames read (all of them: stored, quarantined, duplicate)
	endPos uint64 // subscription position after the batch's last frame
}

// batch is one unit of the storage pipeline: frames copied out of the rings
// into an arena, appended to the WAL with one AppendAsync, released to the
// rings once durable, then applied to the LSM as one batch.
type batch struct {
	arena    []byte
	used     int // arena bytes used
	walBytes int // WAL bytes the records take
	records  []wal.Record
	progress []topicProgress // by topic index
	touched  []int           // topic indexes with progress
	admin    []*adminRequest
	lastLSN  wal.LSN // of the batch's last record, or of the last earlier append for a batch without records
	sealedNs int64
}

func (b *batch) reset() {
	b.used, b.walBytes = 0, 0
	b.records = b.records[:0]
	for _, i := range b.touched {
		b.progress[i] = topicProgress{}
	}
	b.touched = b.touched[:0]
	clear(b.admin)
	b.admin = b.admin[:0]
	b.lastLSN = 0
}

// adminRequest is an event the appliance itself writes (user store).
type adminRequest struct {
	frame []byte // built with seq 0: the committer assigns it
	seq   uint64 // assigned by the committer
	done  chan error
}

// storage is the storage tenant: one committer goroutine (ring → WAL →
// ring durable position) and one applier goroutine (→ LSM).
type storage struct {
	cfg    StorageConfig
	wal    *wal.Log
	db     *lsm.DB
	logf   func(format string, args ...any)
	met    *metrics
	topics []*storageTopic
	users  *internalTopic

	maxFrames int
	maxBytes  int

	free    chan *batch // idle batches
	applyCh chan *batch // durable batches in LSN order, to the applier
	adminCh chan *adminRequest

	// Committer-owned state.
	durableLag   int // topics whose durableAt is behind durableTarget
	cur          *batch
	pending      []*batch // appended, not yet durable, in LSN order
	lastAppended wal.LSN
	quarantine   burstLog
	gapLog       burstLog

	// Wake-up word of the parked committer: bumped by the WAL's Notify, by
	// admin submissions and by Stop.
	wakeWord    uint32
	parkedState atomic.Uint32
	parker      *parker

	lastHeartbeatNs int64

	stopping   atomic.Bool
	drainUntil []atomic.Uint64 // per topic: published position when the stop began
	done       chan struct{}
	applied    chan struct{}
	err        atomic.Pointer[error]
	appliedLSN atomic.Uint64
	pinnedCPU  atomic.Int64

	// Applier-owned (apply.go).
	applyErr error
	build    storeBatch
	// groupMemBytes bounds the memtable space of one applied group of
	// batches (a quarter of a memtable).
	groupMemBytes uint64
}

func newStorage(cfg StorageConfig, w *wal.Log, db *lsm.DB, met *metrics, logf func(string, ...any)) *storage {
	s := &storage{
		cfg: cfg, wal: w, db: db, met: met, logf: logf,
		maxFrames: cfg.BatchMaxFrames, maxBytes: cfg.BatchMaxBytes,
		free:    make(chan *batch, cfg.BatchBuffers),
		applyCh: make(chan *batch, cfg.BatchBuffers),
		adminCh: make(chan *adminRequest, cfg.AdminQueueDepth),
		done:    make(chan struct{}),
		applied: make(chan struct{}),
	}
	s.pinnedCPU.Store(-1)
	burst := time.Duration(cfg.QuarantineBurstMs) * time.Millisecond
	s.quarantine = burstLog{window: burst, logf: logf}
	s.gapLog = burstLog{window: burst, logf: logf}
	return s
}

// allocate creates the batch buffers once the topic count is known.
func (s *storage) allocate() {
	s.drainUntil = make([]atomic.Uint64, len(s.topics))
	for range cap(s.free) {
		s.free <- &batch{
			arena:    make([]byte, s.maxBytes),
			records:  make([]wal.Record, 0, s.maxFrames),
			progress: make([]topicProgress, len(s.topics)),
			touched:  make([]int, 0, len(s.topics)),
		}
	}
}

// notify is the WAL's Notify: it runs on the WAL's commit path with its
// lock held, so it only bumps the wake word (and wakes a parked committer).
func (s *storage) notify(_ wal.LSN, err error) {
	if err != nil {
		s.setErr(err)
	}
	s.wake()
}

func (s *storage) wake() {
	atomic.AddUint32(&s.wakeWord, 1)
	if s.parkedState.Load() != 0 {
		_, _ = shm.FutexWake(&s.wakeWord, 1)
	}
}

func (s *storage) setErr(err error) {
	if err == nil {
		return
	}
	s.err.CompareAndSwap(nil, &err)
}

// Err returns the error that stopped the storage tenant, or nil.
func (s *storage) Err() error {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

// submit hands an appliance-made event to the committer and waits until it
// is durable and applied.
func (s *storage) submit(req *adminRequest) error {
	if err := s.Err(); err != nil {
		return err
	}
	if s.stopping.Load() {
		return errors.New("storage: stopping, no more writes")
	}
	select {
	case s.adminCh <- req:
	default:
		return fmt.Errorf("storage: %d appliance events already wait for the committer (limit storage.admin_queue_depth = %d)", len(s.adminCh), cap(s.adminCh))
	}
	s.wake()
	select {
	case err := <-req.done:
		return err
	case <-s.applied:
		// The applier stopped; the request may have been applied just
		// before.
		select {
		case err := <-req.done:
			return err
		default:
			if err := s.Err(); err != nil {
				return err
			}
			return errors.New("storage: stopped before the event was applied")
		}
	}
}

// run is the committer goroutine. Hot loop: reads the rings into batches,
// appends them to the WAL, and on durability advances the rings' durable
// positions and releases ring space. It does not allocate per frame and
// never sleeps on a timer: it spins, yields, then parks on the rings' and
// the WAL's futex words (storage.wait = spin-park), or only spins
// (busy-spin: on a reserved core, no wake-up between a publication and the
// committer, nor between the WAL write and the durable position).
func (s *storage) run() {
	defer close(s.done)
	if s.cfg.CPU >= 0 {
		p, err := tune.Pin(s.cfg.CPU)
		if err != nil {
			s.logf("storage: committer not pinned: %v", err)
		} else {
			defer p.Release()
			s.pinnedCPU.Store(int64(s.cfg.CPU))
			if s.cfg.FIFOPriority > 0 {
				if err := p.SetFIFO(s.cfg.FIFOPriority); err != nil {
					s.logf("storage: committer stays on the normal scheduler: %v", err)
				}
			}
		}
	}
	s.parker = newParker(s)
	busySpin := s.cfg.Wait == WaitBusySpin
	idle := 0
	for {
		progress := s.completeDurable()
		if s.Err() != nil {
			s.abandon()
			return
		}
		if s.fill() {
			progress = true
		}
		if s.stopping.Load() && s.drained() {
			s.finish()
			return
		}
		if progress {
			idle = 0
			continue
		}
		idle++
		switch {
		case busySpin:
			shm.Pause()
			if idle%busySpinClockEvery == 0 {
				if now := shm.Nanotime(); now-s.lastHeartbeatNs > heartbeatEveryNs {
					s.lastHeartbeatNs = now
					s.heartbeatSubscriptions()
				}
			}
		case idle <= s.cfg.SpinIterations:
			shm.Pause()
		case idle <= s.cfg.SpinIterations+s.cfg.YieldIterations:
			shm.Yield()
		default:
			s.parker.park(time.Duration(s.cfg.ParkTimeoutMs) * time.Millisecond)
			if now := shm.Nanotime(); now-s.lastHeartbeatNs > heartbeatEveryNs {
				s.lastHeartbeatNs = now
				s.heartbeatSubscriptions()
			}
		}
	}
}

// fill reads what the rings and the admin queue hold into the current
// batch and appends it to the WAL. Hot path.
func (s *storage) fill() bool {
	if s.cur == nil {
		select {
		case s.cur = <-s.free:
		default:
			return false // every batch is busy: back-pressure
		}
	}
	b := s.cur
	progressed := false
	for len(b.records) < s.maxFrames && s.users != nil {
		var req *adminRequest
		select {
		case req = <-s.adminCh:
		default:
		}
		if req == nil {
			break
		}
		if b.walBytes+recordBytes(len(req.frame)) > s.maxBytes && len(b.records) > 0 {
			// Does not fit: put it back at the head by handling it next
			// round (the queue keeps order for the rest).
			s.sealOrRequeue(b, req)
			return true
		}
		s.addAdmin(b, req)
		progressed = true
	}
	for _, t := range s.topics {
		if t.failure() != nil {
			continue
		}
		if s.stopping.Load() && t.sub.Position() >= s.drainUntil[t.index].Load() {
			continue
		}
		for n := 0; n < s.cfg.PollMaxFrames; n++ {
			if len(b.records) >= s.maxFrames || b.walBytes+t.maxRecord > s.maxBytes {
				break
			}
			f, _, err := t.sub.Next()
			if err != nil {
				s.failTopic(t, err)
				break
			}
			if f == nil {
				break
			}
			s.addFrame(b, t, f)
			progressed = true
		}
	}
	if len(b.touched) > 0 || len(b.admin) > 0 {
		s.seal(b)
	}
	return progressed
}

// sealOrRequeue seals b and starts the next batch with req.
func (s *storage) sealOrRequeue(b *batch, req *adminRequest) {
	s.seal(b)
	select {
	case s.cur = <-s.free:
		s.addAdmin(s.cur, req)
	default:
		req.done <- errors.New("storage: no batch buffer free for an appliance event; retry")
	}
}

// addFrame copies one ring frame into b. Hot path: no allocation for a
// frame that verifies.
func (s *storage) addFrame(b *batch, t *storageTopic, f []byte) {
	p := &b.progress[t.index]
	if p.frames == 0 {
		b.touched = append(b.touched, t.index)
	}
	p.frames++
	p.endPos = t.sub.Position()
	seq := binary.LittleEndian.Uint64(f[8:16])
	if t.haveSeq && seq <= t.lastSeq {
		t.duplicates.Add(1) // persisted before a restart; the ring's durable position lagged
		return
	}
	if t.haveSeq && seq != t.lastSeq+1 {
		n := seq - t.lastSeq - 1
		t.lost.Add(n)
		s.gapLog.note(func(suppressed uint64) string {
			return fmt.Sprintf("storage: topic %s: sequence numbers %d..%d were overwritten in the ring before they could be persisted (the appliance was down and the publisher evicted its subscription); %d earlier gaps in this burst", t.name, t.lastSeq+1, seq-1, suppressed)
		})
	}
	t.lastSeq, t.haveSeq = seq, true
	if err := schema.Verify(f); err != nil {
		s.addQuarantine(b, t, seq, f, err)
		return
	}
	n := putFrameRecord(b.arena[b.used:], t.id, f)
	b.records = append(b.records, wal.Record{Type: recFrame, Payload: b.arena[b.used : b.used+n]})
	b.used += schema.AlignedSize(n)
	b.walBytes += recordBytes(len(f))
	t.frames.Add(1)
	t.bytes.Add(uint64(len(f)))
}

// addQuarantine keeps a frame that failed verification, with the reason.
// Not a hot path: malformed frames are rare and may allocate.
func (s *storage) addQuarantine(b *batch, t *storageTopic, seq uint64, f []byte, verr error) {
	reason := verr.Error()
	n := putQuarantineRecord(b.arena[b.used:], t.id, reason, f)
	b.records = append(b.records, wal.Record{Type: recQuarantine, Payload: b.arena[b.used : b.used+n]})
	b.used += schema.AlignedSize(n)
	b.walBytes += wal.RecordHeaderSize + schema.AlignedSize(n)
	t.quarantined.Add(1)
	s.quarantine.note(func(suppressed uint64) string {
		return fmt.Sprintf("storage: topic %s seq %d: malformed frame quarantined under q/: %s (%d more malformed frames in the previous burst)", t.name, seq, reason, suppressed)
	})
}

// addAdmin adds an appliance-made event with the next sequence number of
// the internal topic.
func (s *storage) addAdmin(b *batch, req *adminRequest) {
	u := s.users
	seq := uint64(0)
	if u.haveSeq {
		seq = u.lastSeq + 1
	}
	u.lastSeq, u.haveSeq = seq, true
	req.seq = seq
	binary.LittleEndian.PutUint64(req.frame[8:16], seq)
	n := putFrameRecord(b.arena[b.used:], u.id, req.frame)
	b.records = append(b.records, wal.Record{Type: recFrame, Payload: b.arena[b.used : b.used+n]})
	b.used += schema.AlignedSize(n)
	b.walBytes += recordBytes(len(req.frame))
	b.admin = append(b.admin, req)
	u.frames.Add(1)
}

// seal appends b's records to the WAL (without waiting) and queues it for
// durability. A batch of duplicates only (no records) rides behind the last
// append.
func (s *storage) seal(b *batch) {
	if len(b.records) > 0 {
		var lsn wal.LSN
		var err error
		if len(s.pending) == 0 && len(b.records) <= s.cfg.SyncAppendMaxFrames {
			// Nothing in flight and a small batch: the load is low, so the
			// committer writes the WAL frame itself (no hand-off to a
			// flusher goroutine, the lowest publish-to-durable latency).
			// Frames arriving meanwhile wait in the ring and form the next,
			// larger batch: under load the batches grow past the limit
			// and go through the pipelined AppendAsync.
			lsn, err = s.wal.Append(context.Background(), b.records)
		} else {
			lsn, err = s.wal.AppendAsync(b.records)
		}
		if err != nil {
			s.setErr(fmt.Errorf("storage: append %d records to the WAL: %w", len(b.records), err))
			for _, req := range b.admin {
				req.done <- s.Err()
			}
			b.reset()
			s.free <- b
			s.cur = nil
			return
		}
		s.lastAppended = lsn
		s.met.walAppends.Add(1)
	}
	b.lastLSN = s.lastAppended
	b.sealedNs = shm.Nanotime()
	s.pending = append(s.pending, b)
	s.cur = nil
}

// completeDurable releases every pending batch the WAL has made durable:
// advances each topic's durable position (producers waiting on it wake),
// releases their ring space to the publisher, and hands the batch to
// the applier. Hot path.
func (s *storage) completeDurable() bool {
	progressed := s.durableLag > 0 && s.retryDurable()
	if len(s.pending) == 0 {
		return progressed
	}
	durable := s.wal.DurableLSN()
	n := 0
	now := int64(0)
	for n < len(s.pending) && s.pending[n].lastLSN <= durable {
		b := s.pending[n]
		for _, i := range b.touched {
			t := s.topics[i]
			p := b.progress[i]
			// Also for a topic that failed since: the frames it read
			// before are persisted, and their producers learn it.
			t.durableTarget = max(t.durableTarget, p.endPos)
			s.advanceDurable(t)
			s.release(t, p.endPos, p.frames)
		}
		if now == 0 {
			now = shm.Nanotime()
		}
		s.met.commitLatency.Observe(float64(now-b.sealedNs) / 1e9)
		s.applyCh <- b // capacity = batch count: never blocks
		n++
	}
	if n == 0 {
		return progressed
	}
	copy(s.pending, s.pending[n:])
	clear(s.pending[len(s.pending)-n:])
	s.pending = s.pending[:len(s.pending)-n]
	return true
}

// advanceDurable advances t's durable position in the ring towards
// durableTarget, as far as the published position allows. The subscription
// learns of a frame from its length word, which the publisher stores before
// the published position after it (ring/doc.go, "Commit protocol"), so a
// frame can be read, written to the WAL and made durable while the
// published position still ends before it (the publisher was preempted
// between its two stores). The rest of the advance is then retried
// (retryDurable) until the publisher's store lands, or a new publisher's
// repair of a dead one's claim stores it. Hot path.
func (s *storage) advanceDurable(t *storageTopic) {
	to := t.durableTarget
	if published := t.lg.Published(); to > published {
		to = published
	}
	if to > t.durableAt {
		if err := t.lg.AdvanceDurable(to); err != nil {
			s.failTopic(t, err)
			t.durableTarget = t.durableAt // give up: nothing will retry it
		} else {
			t.durableAt = to
		}
	}
	switch behind := t.durableAt < t.durableTarget; {
	case behind && !t.durableLagged:
		t.durableLagged = true
		s.durableLag++
		t.durableDeferred.Add(1)
	case !behind && t.durableLagged:
		t.durableLagged = false
		s.durableLag--
	}
}

// retryDurable retries the durable advances that waited for a published
// position; it reports whether any moved.
func (s *storage) retryDurable() bool {
	moved := false
	for _, t := range s.topics {
		if !t.durableLagged {
			continue
		}
		before := t.durableAt
		s.advanceDurable(t)
		moved = moved || t.durableAt != before
	}
	return moved
}

// release lets the publisher reuse the ring space of frames now durable,
// up to end (a frame boundary the subscription has read). Hot path.
func (s *storage) release(t *storageTopic, end, frames uint64) {
	if err := t.sub.Release(end); err != nil {
		s.failTopic(t, fmt.Errorf("release %d durable frames up to position %d: %w", frames, end, err))
		return
	}
	t.released.Add(frames)
}

// heartbeatSubscriptions keeps the subscriptions' heartbeats fresh while
// the committer idles, so no publisher takes a healthy but idle appliance
// for a stuck subscriber.
func (s *storage) heartbeatSubscriptions() {
	for _, t := range s.topics {
		if t.failure() == nil {
			t.sub.Heartbeat()
		}
	}
}

// busySpinClockEvery is how many idle PAUSEs a busy-spinning committer
// makes between clock reads (for its subscriptions' heartbeats).
const busySpinClockEvery = 4096

// heartbeatEveryNs is how often an idle committer stamps its
// subscriptions' heartbeats (ring's default subscriber timeout is 10 s).
const heartbeatEveryNs = int64(time.Second)

// failure returns the error that stopped reading t, or nil.
func (t *storageTopic) failure() error {
	if p := t.failed.Load(); p != nil {
		return *p
	}
	return nil
}

func (s *storage) failTopic(t *storageTopic, err error) {
	if !t.failed.CompareAndSwap(nil, &err) {
		return
	}
	s.logf("storage: topic %s: stopped reading: %v (frames already read are still persisted; restart the appliance after fixing the producer)", t.name, err)
	s.met.topicFailures.Add(1)
}

// drained reports whether a stopping committer has read every topic up to
// the published position the stop found, and every batch is durable.
func (s *storage) drained() bool {
	if s.cur != nil && (len(s.cur.touched) > 0 || len(s.cur.admin) > 0) {
		return false
	}
	if len(s.pending) > 0 {
		return false
	}
	for _, t := range s.topics {
		if t.failure() == nil && t.sub.Position() < s.drainUntil[t.index].Load() {
			return false
		}
	}
	return true
}

// finish ends the committer after a drain: the applier gets no more.
func (s *storage) finish() {
	if s.cur != nil {
		s.cur.reset()
		s.free <- s.cur
		s.cur = nil
	}
	s.failAdmin(errors.New("storage: stopped"))
	close(s.applyCh)
}

// abandon ends the committer after a fatal error: nothing pending will
// become durable through this process.
func (s *storage) abandon() {
	err := s.Err()
	s.logf("storage: committer stopped: %v", err)
	for _, b := range s.pending {
		for _, req := range b.admin {
			req.done <- err
		}
	}
	s.pending = nil
	s.failAdmin(err)
	close(s.applyCh)
}

func (s *storage) failAdmin(err error) {
	for {
		select {
		case req := <-s.adminCh:
			req.done <- err
		default:
			return
		}
	}
}

// stop asks the committer to drain every topic up to its current published
// position, commit, and return; the applier then applies what is left.
func (s *storage) stop() {
	if s.stopping.Load() {
		return
	}
	for i, t := range s.topics {
		s.drainUntil[i].Store(t.lg.Published())
	}
	s.stopping.Store(true)
	s.wake()
}

// drainNow makes a stopping committer stop reading: what it read is still
// committed and applied.
func (s *storage) drainNow() {
	for i := range s.drainUntil {
		s.drainUntil[i].Store(0)
	}
	s.wake()
}

// burstLog logs the first event of a burst and how many it suppressed.
type burstLog struct {
	window     time.Duration
	logf       func(string, ...any)
	last       time.Time
	suppressed uint64
}

func (l *burstLog) note(msg func(suppressed uint64) string) {
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < l.window {
		l.last = now
		l.suppressed++
		return
	}
	l.last = now
	l.logf("%s", msg(l.suppressed))
	l.suppressed = 0
}
