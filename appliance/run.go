package appliance

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"time"

	"github.com/tapewire/tapewire/tune"
	"github.com/tapewire/tapewire/wal"
)

// Start launches the tenants (storage committer and applier, last-value,
// checkpoints) and the admin API. Stop (or Run's context) ends them.
func (n *Node) Start() error {
	if n.started {
		return errors.New("node already started")
	}
	n.startedAt = time.Now()
	n.started = true
	s := n.storage
	go s.run()
	go s.applier()
	if n.cfg.LastValue.Enabled {
		lvc, err := newLastValueTenant(n)
		if err != nil {
			n.Stop()
			return err
		}
		n.lvc = lvc
		n.wg.Add(1)
		go func() { defer n.wg.Done(); lvc.run() }()
	}
	n.ckptStop = make(chan struct{})
	n.ckptNow = make(chan chan error)
	n.wg.Add(1)
	go func() { defer n.wg.Done(); n.checkpointLoop() }()
	if n.cfg.Admin.Listen != "" {
		a, err := newAdminServer(n)
		if err != nil {
			n.Stop()
			return err
		}
		n.admin = a
	}
	return nil
}

// Run starts the node (unless Start already did) and serves until ctx ends or the storage tenant
// fails, then stops gracefully (drain, commit, checkpoint, close). It
// returns the storage tenant's error, if any.
func (n *Node) Run(ctx context.Context) error {
	if !n.started {
		if err := n.Start(); err != nil {
			n.Close()
			return err
		}
	}
	select {
	case <-ctx.Done():
	case <-n.storage.done:
	}
	return n.Close()
}

// Stop ends the tenants gracefully: the admin API stops accepting requests,
// the committer drains every durable topic up to the published position it
// finds now (bounded by shutdown.drain_timeout_ms), commits and applies,
// then a final checkpoint runs. Safe to call more than once.
func (n *Node) Stop() {
	n.stopOnce.Do(func() {
		for _, f := range n.onStop {
			f()
		}
		if n.admin != nil {
			n.admin.shutdown()
		}
		if n.lvc != nil {
			n.lvc.stop()
		}
		if n.ckptStop != nil {
			close(n.ckptStop)
		}
		s := n.storage
		if s == nil || !n.started {
			return
		}
		s.stop()
		timeout := time.Duration(n.cfg.Shutdown.DrainTimeoutMs) * time.Millisecond
		select {
		case <-s.done:
		case <-time.After(timeout):
			n.logf("shutdown: rings not drained within shutdown.drain_timeout_ms = %d; committing what was read", n.cfg.Shutdown.DrainTimeoutMs)
			s.drainNow()
			<-s.done
		}
		<-s.applied
		n.wg.Wait()
		// A backfill still running gets the drain timeout to finish;
		// then it stops and the next start finishes it.
		n.stopBackfill(timeout)
		if s.Err() == nil {
			if _, err := n.Checkpoint(); err != nil {
				n.logf("shutdown: final checkpoint: %v", err)
			}
		}
	})
}

// OnStop registers f to run first when the node stops (before the admin
// API closes and the rings drain): the demo stops its simulator there.
func (n *Node) OnStop(f func()) { n.onStop = append(n.onStop, f) }

// Close stops the node if it runs and releases the store, the WAL and the
// topics. It returns the storage tenant's fatal error, if one happened.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		if !n.startedAt.IsZero() {
			n.Stop()
		}
		n.closeErr = n.storageErr()
		n.closeStores()
	})
	return n.closeErr
}

func (n *Node) storageErr() error {
	if n.storage == nil {
		return nil
	}
	return n.storage.Err()
}

// closeStores closes the subscriptions, the WAL and the store.
func (n *Node) closeStores() {
	n.stopBackfill(0)
	if n.storage != nil {
		for _, t := range n.storage.topics {
			t.sub.Close()
		}
	}
	if n.wal != nil {
		if err := n.wal.Close(); err != nil && !errors.Is(err, n.storageErr()) {
			n.logf("close WAL: %v", err)
		}
	}
	if n.db != nil {
		if err := n.db.Close(); err != nil {
			n.logf("close store: %v", err)
		}
	}
}

// CheckpointResult describes one checkpoint.
type CheckpointResult struct {
	ID         uint64        `json:"id"`
	CoveredLSN uint64        `json:"covered_lsn"`
	DurableLSN uint64        `json:"durable_lsn"`
	Duration   time.Duration `json:"duration_ns"`
	At         time.Time     `json:"at"`
}

// Checkpoint waits (at most 2 s) until the store has applied everything
// the WAL had made durable when it was called, flushes the memtables to
// SSTables, reads the WAL position they now cover (recorded in the store's
// manifest) and truncates the WAL before it: after a checkpoint a restart
// replays only what came later.
func (n *Node) Checkpoint() (CheckpointResult, error) {
	n.ckptMu.Lock()
	defer n.ckptMu.Unlock()
	start := time.Now()
	// Cover what the WAL had made durable when the checkpoint was asked
	// for: the applier may still be a batch or two behind it.
	target := uint64(n.wal.DurableLSN())
	for n.storage.appliedLSN.Load() < target && n.storage.Err() == nil && time.Since(start) < readYourWritesWait {
		time.Sleep(100 * time.Microsecond)
	}
	if err := n.db.Flush(); err != nil {
		return CheckpointResult{}, fmt.Errorf("checkpoint: flush memtables: %w", err)
	}
	covered := n.db.CoveredLSN()
	// Keep what a pending event-log backfill still reads (backfill.go).
	keep := wal.LSN(covered + 1)
	if from := n.backfillPendingFrom(); from > 0 && from < keep {
		keep = from
	}
	if keep > 1 {
		if err := n.wal.TruncateBefore(keep); err != nil {
			return CheckpointResult{}, fmt.Errorf("checkpoint: truncate WAL before LSN %d: %w", keep, err)
		}
	}
	n.ckptID++
	r := CheckpointResult{ID: n.ckptID, CoveredLSN: covered, DurableLSN: uint64(n.wal.DurableLSN()), Duration: time.Since(start), At: time.Now()}
	n.lastCkpt.Store(&r)
	n.ckptWALBase = n.wal.Metrics().WrittenBytes
	n.met.checkpoints.Add(1)
	n.met.ckptDuration.Observe(r.Duration.Seconds())
	return r, nil
}

// checkpointLoop runs periodic checkpoints and those triggered by WAL
// growth. It is housekeeping: timers are fine here.
func (n *Node) checkpointLoop() {
	cfg := n.cfg.Checkpoint
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-n.ckptStop:
			return
		case <-tick.C:
		}
		due := cfg.IntervalMs > 0 && time.Since(last) >= time.Duration(cfg.IntervalMs)*time.Millisecond
		n.ckptMu.Lock()
		grown := n.wal.Metrics().WrittenBytes - n.ckptWALBase
		n.ckptMu.Unlock()
		if cfg.WALBytes > 0 && grown >= cfg.WALBytes {
			due = true
		}
		if !due || n.storage.Err() != nil {
			continue
		}
		if _, err := n.Checkpoint(); err != nil {
			n.logf("%v", err)
		}
		last = time.Now()
	}
}

// topicFailed reports whether the storage tenant stopped reading t.
func (n *Node) topicFailed(t *storageTopic) bool { return t.failure() != nil }

// lastSeqSnapshot returns the newest stored sequence number per topic.
func (n *Node) lastSeqSnapshot() map[string]uint64 {
	out := map[string]uint64{}
	names := make([]string, 0, len(n.catalog))
	for name := range n.catalog {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if seq, ok, err := n.lastStoredSeq(n.catalog[name]); err == nil && ok {
			out[name] = seq
		}
	}
	return out
}

// cpuPlan describes where the tenants run.
type cpuPlan struct {
	Allowed      []int  `json:"allowed_cpus"`
	Committer    int    `json:"storage_committer_cpu"`
	LastValue    int    `json:"lastvalue_cpu"`
	Housekeeping []int  `json:"housekeeping_cpus"`
	Note         string `json:"note,omitempty"`
}

func (n *Node) cpuPlan() cpuPlan {
	allowed, _ := tune.AllowedCPUs()
	p := cpuPlan{Allowed: allowed, Committer: n.cfg.Storage.CPU, LastValue: n.cfg.LastValue.CPU}
	if n.storage != nil {
		p.Committer = int(n.storage.pinnedCPU.Load())
	}
	for _, c := range allowed {
		if c != p.Committer && c != p.LastValue {
			p.Housekeeping = append(p.Housekeeping, c)
		}
	}
	if p.Committer < 0 {
		p.Note = "storage.cpu = -1: the committer is not pinned (set it to a CPU reserved for the hot path)"
	}
	return p
}

// RecommendedGOMAXPROCS is the GOMAXPROCS an appliance process should run
// with: the CPUs it may use plus two. The committer spins on one P and
// blocks in futex_waitv and WAL writes on it; the WAL's flushers block in
// O_DSYNC writes. With only one P per CPU, a goroutine the committer hands
// work to (a flusher, the applier) can wait for the Go scheduler to take a P
// back from a thread blocked in a system call (milliseconds when the
// runtime's monitor sleeps). Extra Ps cost nothing while their threads
// sleep. `appliance run` and `appliance demo` apply it.
func RecommendedGOMAXPROCS() int {
	n := runtime.NumCPU()
	if cpus, err := tune.AllowedCPUs(); err == nil && len(cpus) > 0 {
		n = len(cpus)
	}
	return max(runtime.GOMAXPROCS(0), n+2)
}
