package appliance

import (
	"sort"
	"time"

	"github.com/tapewire/tapewire/wal"
)

// Status is the node's state as /v1/status renders it.
type Status struct {
	Node       NodeStatus        `json:"node"`
	Topics     []TopicStatus     `json:"topics"`
	WAL        WALStatus         `json:"wal"`
	LSM        LSMStatus         `json:"lsm"`
	Tenants    []TenantStatus    `json:"tenants"`
	CPUPlan    cpuPlan           `json:"cpu_plan"`
	Recovery   RecoveryReport    `json:"recovery"`
	Checkpoint *CheckpointResult `json:"last_checkpoint,omitempty"`
}

// NodeStatus is the node section of Status.
type NodeStatus struct {
	DataDir   string    `json:"data_dir"`
	Shm       string    `json:"shm_namespace_dir"`
	StartedAt time.Time `json:"started_at"`
	UptimeSec float64   `json:"uptime_seconds"`
	Healthy   bool      `json:"healthy"`
	Error     string    `json:"error,omitempty"`
}

// TopicStatus is one topic.
type TopicStatus struct {
	Name              string  `json:"name"`
	ID                uint32  `json:"id,omitempty"`
	Kind              string  `json:"kind"`
	Durable           bool    `json:"durable"`
	PublishedPosition uint64  `json:"published_position,omitempty"`
	DurablePosition   uint64  `json:"durable_position,omitempty"`
	LagBytes          uint64  `json:"durable_lag_bytes,omitempty"`
	NextSeq           uint64  `json:"next_seq,omitempty"`
	LastStoredSeq     *uint64 `json:"last_stored_seq,omitempty"`
	Persisted         uint64  `json:"persisted_frames"`
	Quarantined       uint64  `json:"quarantined_frames"`
	Duplicates        uint64  `json:"duplicate_frames"`
	Lost              uint64  `json:"lost_frames"`
	Failed            string  `json:"failed,omitempty"`
}

// WALStatus is the WAL section of Status.
type WALStatus struct {
	Dir     string      `json:"dir"`
	Metrics wal.Metrics `json:"metrics"`
	Verdict string      `json:"recovery_verdict"`
}

// LSMStatus is the store section of Status.
type LSMStatus struct {
	Dir         string       `json:"dir"`
	Levels      []LevelStats `json:"levels"`
	CoveredLSN  uint64       `json:"covered_lsn"`
	AppliedLSN  uint64       `json:"applied_lsn"`
	MemTable    uint64       `json:"memtable_bytes"`
	Flushes     uint64       `json:"flushes"`
	Compactions uint64       `json:"compactions"`
	Stalls      uint64       `json:"write_stalls"`
}

// LevelStats is one LSM level.
type LevelStats struct {
	Level int     `json:"level"`
	Files int     `json:"files"`
	Bytes uint64  `json:"bytes"`
	Score float64 `json:"score"`
}

// TenantStatus is one tenant.
type TenantStatus struct {
	Name  string `json:"name"`
	CPU   int    `json:"cpu"`
	State string `json:"state"`
}

// Status reports the node's topics, WAL, store, tenants and CPU plan.
func (n *Node) Status() Status {
	st := Status{
		Node:     NodeStatus{DataDir: n.cfg.Node.DataDir, StartedAt: n.startedAt, Healthy: n.storage.Err() == nil},
		CPUPlan:  n.cpuPlan(),
		Recovery: n.recovery,
	}
	st.Recovery.EventLogBackfill = n.BackfillStatus()
	if o, err := n.cfg.shmOptions(nil); err == nil {
		st.Node.Shm = o.Dir()
	}
	if !n.startedAt.IsZero() {
		st.Node.UptimeSec = time.Since(n.startedAt).Seconds()
	}
	if err := n.storage.Err(); err != nil {
		st.Node.Error = err.Error()
	}
	last := n.lastSeqSnapshot()
	byName := map[string]*storageTopic{}
	for _, t := range n.storage.topics {
		byName[t.name] = t
	}
	for _, tc := range n.cfg.Topics {
		ts := TopicStatus{Name: tc.Name, Kind: tc.Kind, Durable: tc.Durable}
		if t, ok := byName[tc.Name]; ok {
			ts.ID = t.id
			ts.PublishedPosition, ts.DurablePosition = t.lg.Published(), t.lg.Durable()
			ts.LagBytes = ts.PublishedPosition - min(ts.PublishedPosition, ts.DurablePosition)
			ts.NextSeq = t.lg.PublishedFrames()
			ts.Persisted, ts.Quarantined = t.frames.Load(), t.quarantined.Load()
			ts.Duplicates, ts.Lost = t.duplicates.Load(), t.lost.Load()
			if err := t.failure(); err != nil {
				ts.Failed = err.Error()
			}
		}
		if seq, ok := last[tc.Name]; ok {
			ts.LastStoredSeq = &seq
		}
		st.Topics = append(st.Topics, ts)
	}
	if u := n.storage.users; u != nil {
		ts := TopicStatus{Name: u.name, ID: u.id, Kind: "internal", Durable: true, Persisted: u.frames.Load()}
		if seq, ok := last[u.name]; ok {
			ts.LastStoredSeq = &seq
		}
		st.Topics = append(st.Topics, ts)
	}
	st.WAL = WALStatus{Dir: n.cfg.walDir(), Metrics: n.wal.Metrics(), Verdict: n.recovery.WALVerdict}
	lm := n.db.Metrics()
	st.LSM = LSMStatus{Dir: n.cfg.lsmDir(), CoveredLSN: lm.CoveredLSN, AppliedLSN: n.storage.appliedLSN.Load(),
		MemTable: lm.MemTableBytes, Flushes: lm.Flushes, Compactions: lm.Compactions, Stalls: lm.Stalls}
	for i, l := range lm.Levels {
		st.LSM.Levels = append(st.LSM.Levels, LevelStats{Level: i, Files: l.Files, Bytes: l.Bytes, Score: l.Score})
	}
	state := "running"
	if !n.started {
		state = "not started"
	} else if n.storage.Err() != nil {
		state = "failed"
	}
	st.Tenants = append(st.Tenants, TenantStatus{Name: "storage", CPU: st.CPUPlan.Committer, State: state})
	if n.cfg.LastValue.Enabled {
		lvState := "running"
		if n.lvc == nil {
			lvState = "not started"
		}
		st.Tenants = append(st.Tenants, TenantStatus{Name: "lastvalue", CPU: n.cfg.LastValue.CPU, State: lvState})
	}
	st.Tenants = append(st.Tenants, TenantStatus{Name: "checkpoint", CPU: -1, State: state})
	st.Checkpoint = n.lastCkpt.Load()
	return st
}

func sortedStrings(s []string) []string {
	sort.Strings(s)
	return s
}

// AdminAddr returns the address the admin API listens on ("" if disabled
// or not started).
func (n *Node) AdminAddr() string {
	if n.admin == nil {
		return ""
	}
	return n.admin.Addr()
}

// Users returns the node's user store.
func (n *Node) Users() *Users { return n.users }

// Config returns the node's configuration.
func (n *Node) Config() Config { return n.cfg }
