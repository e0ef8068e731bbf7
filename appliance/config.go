package appliance

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/shm"
)

// Config is the appliance's whole configuration: one TOML file. Every field
// carries its TOML key, its meaning, its unit and (for numbers) its limits in
// struct tags; that one table drives validation, `appliance config default`
// and docs/config.md, so the three cannot drift apart.
//
// Tags: toml (key), doc (meaning), unit, min and max (inclusive limits of a
// number), pow2 ("true": a power of two), enum (allowed strings, "|"
// separated).
type Config struct {
	Node       NodeConfig       `toml:"node"`
	Shm        ShmConfig        `toml:"shm"`
	WAL        WALConfig        `toml:"wal"`
	LSM        LSMConfig        `toml:"lsm"`
	Storage    StorageConfig    `toml:"storage"`
	Checkpoint CheckpointConfig `toml:"checkpoint"`
	Recovery   RecoveryConfig   `toml:"recovery"`
	LastValue  LastValueConfig  `toml:"lastvalue"`
	Users      UsersConfig      `toml:"users"`
	Admin      AdminConfig      `toml:"admin"`
	Shutdown   ShutdownConfig   `toml:"shutdown"`
	Topics     []TopicConfig    `toml:"topics"`
}

// NodeConfig names where the node keeps its data.
type NodeConfig struct {
	DataDir string `toml:"data_dir" doc:"directory holding the WAL (wal/) and the LSM store (lsm/); created if missing; must be on a disk file system (ext4, xfs), not tmpfs" unit:"path"`
}

// ShmConfig says where topics live in shared memory.
type ShmConfig struct {
	Base      string `toml:"base" doc:"directory holding shm namespaces (a tmpfs)" unit:"path"`
	Namespace string `toml:"namespace" doc:"subdirectory of base holding this node's topics" unit:"name"`
	Populate  bool   `toml:"populate" doc:"pre-fault every mapping (MAP_POPULATE) so the hot path takes no page faults" unit:"bool"`
	Lock      bool   `toml:"lock" doc:"mlock the mappings (needs LimitMEMLOCK=infinity or CAP_IPC_LOCK)" unit:"bool"`
	HugePages bool   `toml:"huge_pages" doc:"advise transparent huge pages (effective only if the tmpfs allows them)" unit:"bool"`
}

// WALConfig configures the write-ahead log (package wal).
type WALConfig struct {
	SegmentSizeBytes  int64 `toml:"segment_size_bytes" doc:"size every WAL segment is preallocated to; a multiple of 4096 and at least max_group_bytes + 8192" unit:"bytes" min:"65536" max:"4294967296"`
	MaxGroupBytes     int   `toml:"max_group_bytes" doc:"bytes of one WAL frame (one commit group), a multiple of 4096; bounds one storage batch" unit:"bytes" min:"65536" max:"67108864"`
	MaxInFlightFrames int   `toml:"max_inflight_frames" doc:"WAL frames written and not yet acknowledged (pipelining depth)" unit:"frames" min:"1" max:"16"`
	PipelineFillBytes int   `toml:"pipeline_fill_bytes" doc:"group size needed to start a frame while others are in flight" unit:"bytes" min:"0" max:"67108864"`
	MaxWaiters        int   `toml:"max_waiters" doc:"callers blocked waiting for durability at once" unit:"waiters" min:"1" max:"1048576"`
	PreparedSegments  int   `toml:"prepared_segments" doc:"zeroed segments kept ready ahead of the active one" unit:"segments" min:"1" max:"16"`
	RecycledSegments  int   `toml:"recycled_segments" doc:"truncated segments kept for reuse instead of deleted" unit:"segments" min:"0" max:"64"`
}

// LSMConfig configures the store (package lsm).
type LSMConfig struct {
	MemTableSizeBytes         int    `toml:"memtable_size_bytes" doc:"arena size of one memtable" unit:"bytes" min:"1048576" max:"4294967295"`
	MaxImmutableMemTables     int    `toml:"max_immutable_memtables" doc:"full memtables waiting for flush before writes stall" unit:"memtables" min:"1" max:"16"`
	L0CompactionTrigger       int    `toml:"l0_compaction_trigger" doc:"L0 depth (the most L0 tables holding one key; tables of disjoint ranges, such as different topics' event logs, count once) that starts a compaction" unit:"files" min:"1" max:"64"`
	L0StopWritesThreshold     int    `toml:"l0_stop_writes_threshold" doc:"L0 depth at which writes stall until compaction catches up" unit:"files" min:"2" max:"256"`
	BaseLevelBytes            uint64 `toml:"base_level_bytes" doc:"target size of L1" unit:"bytes" min:"1048576" max:"1099511627776"`
	LevelMultiplier           uint64 `toml:"level_multiplier" doc:"size ratio between adjacent levels" unit:"ratio" min:"2" max:"100"`
	TargetFileSizeBytes       uint64 `toml:"target_file_size_bytes" doc:"where compaction output is split into files" unit:"bytes" min:"1048576" max:"17179869184"`
	CompactionConcurrency     int    `toml:"compaction_concurrency" doc:"background compaction goroutines" unit:"goroutines" min:"1" max:"16"`
	CompactionRateBytesPerSec int64  `toml:"compaction_rate_bytes_per_sec" doc:"compaction write rate limit; 0 means unlimited" unit:"bytes/s" min:"0" max:"107374182400"`
	BlockSizeBytes            int    `toml:"block_size_bytes" doc:"target SSTable data block size" unit:"bytes" min:"1024" max:"1048576"`
	BloomBitsPerKey           int    `toml:"bloom_bits_per_key" doc:"bloom filter bits per key of state and catalog tables (event log and quarantine tables, read by scans only, have none); 0 disables filters" unit:"bits" min:"0" max:"64"`
}

// StorageConfig configures the storage tenant: the ring → WAL → LSM
// committer.
type StorageConfig struct {
	CPU                 int    `toml:"cpu" doc:"CPU the committer goroutine is pinned to (tune.Pin); -1 leaves it unpinned" unit:"cpu" min:"-1" max:"4095"`
	FIFOPriority        int    `toml:"fifo_priority" doc:"SCHED_FIFO priority of the pinned committer; 0 keeps the normal scheduler (only with a reserved cpu)" unit:"priority" min:"0" max:"99"`
	BatchMaxFrames      int    `toml:"batch_max_frames" doc:"ring frames in one storage batch (one WAL append, one LSM batch)" unit:"frames" min:"1" max:"1048576"`
	BatchMaxBytes       int    `toml:"batch_max_bytes" doc:"bytes of WAL records in one storage batch; at most wal.max_group_bytes - 64, at least twice the record of the largest durable max_frame_bytes" unit:"bytes" min:"4096" max:"67108864"`
	BatchBuffers        int    `toml:"batch_buffers" doc:"storage batches allocated at start (filling, in the WAL, or applying to the LSM); when all are busy the committer stops reading the rings and back-pressure reaches the publishers" unit:"batches" min:"2" max:"1024"`
	SyncAppendMaxFrames int    `toml:"sync_append_max_frames" doc:"a batch of at most this many frames, with no other batch in flight, is written to the WAL by the committer itself (lowest latency at low load); larger batches are pipelined through the WAL's flushers; 0 always pipelines" unit:"frames" min:"0" max:"1048576"`
	PollMaxFrames       int    `toml:"poll_max_frames" doc:"frames read from one topic before the committer turns to the next (fairness)" unit:"frames" min:"1" max:"1048576"`
	SpinIterations      int    `toml:"spin_iterations" doc:"idle loop iterations spent spinning (PAUSE) before yielding" unit:"iterations" min:"0" max:"100000000"`
	YieldIterations     int    `toml:"yield_iterations" doc:"idle loop iterations spent in sched_yield before parking on the rings' futexes" unit:"iterations" min:"0" max:"1000000"`
	Wait                string `toml:"wait" doc:"how the idle committer waits: spin-park (spin_iterations PAUSEs, yield_iterations yields, then a park on the rings' futexes) or busy-spin (PAUSE until work comes: no wake-up on the publish-to-durable path, one core burnt; for a committer pinned with cpu to a core reserved for it)" unit:"enum" enum:"spin-park|busy-spin"`
	ParkTimeoutMs       int    `toml:"park_timeout_ms" doc:"longest single park of the idle committer; wake-ups come from futexes, this only bounds how often it re-checks" unit:"ms" min:"1" max:"1000"`
	AdminQueueDepth     int    `toml:"admin_queue_depth" doc:"appliance-generated events (user registrations) waiting for the committer; one more is refused" unit:"events" min:"1" max:"65536"`
	QuarantineBurstMs   int    `toml:"quarantine_burst_ms" doc:"malformed frames within this window of the previous one form one burst and are logged once" unit:"ms" min:"1" max:"3600000"`
}

// CheckpointConfig configures checkpoints (flush memtables, record the
// covered LSN, truncate the WAL).
type CheckpointConfig struct {
	IntervalMs int   `toml:"interval_ms" doc:"time between periodic checkpoints; 0 disables periodic checkpoints" unit:"ms" min:"0" max:"86400000"`
	WALBytes   int64 `toml:"wal_bytes" doc:"WAL bytes written since the last checkpoint that trigger one (bounds the replay at restart); 0 disables" unit:"bytes" min:"0" max:"1099511627776"`
}

// RecoveryConfig configures the WAL replay at start.
type RecoveryConfig struct {
	ProgressIntervalMs int  `toml:"progress_interval_ms" doc:"time between progress lines of a long replay" unit:"ms" min:"10" max:"3600000"`
	ReplayBatchRecords int  `toml:"replay_batch_records" doc:"WAL records applied to the LSM per batch during replay (a batch is cut earlier when it would take a quarter of lsm.memtable_size_bytes); larger batches coalesce more state updates and, with ingest_event_log, write larger event-log tables (a batch is then also cut at half of lsm.memtable_size_bytes of event-log keys)" unit:"records" min:"1" max:"1048576"`
	IngestEventLog     bool `toml:"ingest_event_log" doc:"with backfill_event_log = false: during replay, write each batch's event-log keys (e/, sorted per topic) straight into SSTables (lsm.Ingest) instead of inserting them into the memtable and flushing them later; state keys still go through the memtable" unit:"bool"`
	BackfillEventLog   bool `toml:"backfill_event_log" doc:"during replay apply only the state, quarantine and catalog keys, and rebuild the replayed range's event log (e/) from the WAL in the background after the node has started (lsm.Ingest); a marker file in node.data_dir keeps the WAL range until it is done and makes the next start finish it; GET /v1/events waits for a range not rebuilt yet; false writes the event log during the replay, before the node starts (see ingest_event_log)" unit:"bool"`
}

// LastValueConfig configures the last-value tenant (ticks → quotes).
type LastValueConfig struct {
	Enabled       bool   `toml:"enabled" doc:"run the last-value tenant" unit:"bool"`
	Source        string `toml:"source" doc:"log topic whose Tick frames feed the table" unit:"topic"`
	Target        string `toml:"target" doc:"last-value topic written, keyed by instrument_id" unit:"topic"`
	CPU           int    `toml:"cpu" doc:"CPU the tenant is pinned to; -1 leaves it unpinned" unit:"cpu" min:"-1" max:"4095"`
	PollMaxFrames int    `toml:"poll_max_frames" doc:"frames handled per poll before the tenant checks for shutdown" unit:"frames" min:"1" max:"1048576"`
}

// UsersConfig configures the user store and its password hashing.
type UsersConfig struct {
	Argon2Time       uint32 `toml:"argon2_time" doc:"argon2id passes over memory (t)" unit:"passes" min:"1" max:"64"`
	Argon2MemoryKiB  uint32 `toml:"argon2_memory_kib" doc:"argon2id memory (m)" unit:"KiB" min:"8192" max:"4194304"`
	Argon2Threads    uint8  `toml:"argon2_threads" doc:"argon2id lanes (p)" unit:"threads" min:"1" max:"64"`
	SaltBytes        int    `toml:"salt_bytes" doc:"random salt per password" unit:"bytes" min:"16" max:"64"`
	HashBytes        int    `toml:"hash_bytes" doc:"argon2id output length" unit:"bytes" min:"16" max:"64"`
	PasswordMinBytes int    `toml:"password_min_bytes" doc:"shortest password accepted" unit:"bytes" min:"1" max:"1024"`
	PasswordMaxBytes int    `toml:"password_max_bytes" doc:"longest password accepted" unit:"bytes" min:"8" max:"4096"`
	MaxConcurrentKDF int    `toml:"max_concurrent_kdf" doc:"password hashes computed at once (each takes argon2_memory_kib); more callers wait" unit:"hashes" min:"1" max:"64"`
}

// AdminConfig configures the admin HTTP API.
type AdminConfig struct {
	Listen             string `toml:"listen" doc:"address of the admin HTTP API (keep it on loopback: it serves pprof); empty disables it" unit:"host:port"`
	TokenFile          string `toml:"token_file" doc:"file holding a bearer token every request but /healthz must present; empty: no token" unit:"path"`
	MaxEventsLimit     int    `toml:"max_events_limit" doc:"largest limit accepted by /v1/events and state listings" unit:"events" min:"1" max:"1000000"`
	DefaultEventsLimit int    `toml:"default_events_limit" doc:"limit of /v1/events and state listings when none is given" unit:"events" min:"1" max:"1000000"`
	ReadTimeoutMs      int    `toml:"read_timeout_ms" doc:"time to read one request" unit:"ms" min:"100" max:"3600000"`
	WriteTimeoutMs     int    `toml:"write_timeout_ms" doc:"time to write one response" unit:"ms" min:"100" max:"3600000"`
	MaxHeaderBytes     int    `toml:"max_header_bytes" doc:"largest request header" unit:"bytes" min:"1024" max:"1048576"`
	MaxBodyBytes       int64  `toml:"max_body_bytes" doc:"largest request body" unit:"bytes" min:"1024" max:"16777216"`
}

// ShutdownConfig bounds a graceful stop.
type ShutdownConfig struct {
	DrainTimeoutMs int `toml:"drain_timeout_ms" doc:"time a graceful stop spends draining the rings up to their published positions before it commits what it has" unit:"ms" min:"0" max:"3600000"`
}

// TopicConfig declares one topic. The appliance creates declared topics that
// do not exist; producers attach to them.
type TopicConfig struct {
	Name          string `toml:"name" doc:"topic name (file <name>.ring or <name>.lvc in the namespace)" unit:"name"`
	Kind          string `toml:"kind" doc:"log (a ring of frames) or last-value (latest frame per key)" unit:"enum" enum:"log|last-value"`
	CapacityBytes uint64 `toml:"capacity_bytes" doc:"log: data area size, a power of two; the most a reliable publisher runs ahead of durability" unit:"bytes" min:"1024" max:"2147483648" pow2:"true"`
	MaxFrameBytes int    `toml:"max_frame_bytes" doc:"largest frame, header included (log: at most capacity_bytes/4; last-value: largest value)" unit:"bytes" min:"32" max:"16777216"`
	Mode          string `toml:"mode" doc:"log: reliable (publishers wait for subscribers) or lossy (they never wait)" unit:"enum" enum:"reliable|lossy"`
	Durable       bool   `toml:"durable" doc:"log: the storage tenant persists every frame (needs mode reliable)" unit:"bool"`
	Subscribers   int    `toml:"subscribers" doc:"log: subscriber table slots" unit:"slots" min:"1" max:"1024"`
	Slots         int    `toml:"slots" doc:"last-value: keys the table holds, a power of two (about twice the keys expected)" unit:"keys" min:"2" max:"1048576" pow2:"true"`
	Group         string `toml:"group" doc:"unix group (name or gid) that may map the topic (files 0660); empty: owner only (0600)" unit:"group"`
}

// Topic kinds and modes as spelled in the config.
const (
	KindLog       = "log"
	KindLastValue = "last-value"
	ModeReliable  = "reliable"
	ModeLossy     = "lossy"
)

// storage.wait values.
const (
	WaitSpinPark = "spin-park"
	WaitBusySpin = "busy-spin"
)

// UsersTopic is the internal topic of the appliance's own events
// (UserRegistered, AccountBound): persisted like a ring topic, but with no
// ring, its sequence numbers assigned by the committer.
const UsersTopic = "users"

// DefaultConfig returns the configuration every key defaults to: the demo
// topics, data under /var/lib/tapewire, nothing pinned.
func DefaultConfig() Config {
	return Config{
		Node: NodeConfig{DataDir: "/var/lib/tapewire"},
		Shm:  ShmConfig{Base: shm.DefaultBase, Namespace: shm.DefaultNamespace, Populate: true},
		WAL: WALConfig{
			SegmentSizeBytes: 64 << 20, MaxGroupBytes: 1 << 20, MaxInFlightFrames: 4,
			PipelineFillBytes: 4096, MaxWaiters: 4096, PreparedSegments: 1, RecycledSegments: 2,
		},
		LSM: LSMConfig{
			MemTableSizeBytes: 64 << 20, MaxImmutableMemTables: 2, L0CompactionTrigger: 4,
			L0StopWritesThreshold: 12, BaseLevelBytes: 64 << 20, LevelMultiplier: 10,
			TargetFileSizeBytes: 64 << 20, CompactionConcurrency: 1, BlockSizeBytes: 4096,
			BloomBitsPerKey: 10,
		},
		Storage: StorageConfig{
			CPU: -1, BatchMaxFrames: 4096, BatchMaxBytes: 256 << 10, BatchBuffers: 16, SyncAppendMaxFrames: 64,
			PollMaxFrames: 1024, SpinIterations: 2000, YieldIterations: 50, Wait: WaitSpinPark, ParkTimeoutMs: 20,
			AdminQueueDepth: 64, QuarantineBurstMs: 1000,
		},
		Checkpoint: CheckpointConfig{IntervalMs: 60_000, WALBytes: 256 << 20},
		Recovery:   RecoveryConfig{ProgressIntervalMs: 1000, ReplayBatchRecords: 262144, IngestEventLog: true, BackfillEventLog: true},
		LastValue:  LastValueConfig{Enabled: true, Source: "ticks", Target: "quotes", CPU: -1, PollMaxFrames: 1024},
		Users: UsersConfig{
			Argon2Time: 1, Argon2MemoryKiB: 64 << 10, Argon2Threads: 2, SaltBytes: 16, HashBytes: 32,
			PasswordMinBytes: 8, PasswordMaxBytes: 1024, MaxConcurrentKDF: 2,
		},
		Admin: AdminConfig{
			Listen: "127.0.0.1:7070", MaxEventsLimit: 10_000, DefaultEventsLimit: 100,
			ReadTimeoutMs: 10_000, WriteTimeoutMs: 60_000, MaxHeaderBytes: 64 << 10, MaxBodyBytes: 64 << 10,
		},
		Shutdown: ShutdownConfig{DrainTimeoutMs: 10_000},
		Topics: []TopicConfig{
			defaultLogTopic("ticks", 64<<20),
			defaultLogTopic("trades", 16<<20),
			defaultLogTopic("requests", 4<<20),
			{Name: "quotes", Kind: KindLastValue, MaxFrameBytes: 1024, Slots: 1024},
			defaultLogTopic("load", 64<<20),
		},
	}
}

func defaultLogTopic(name string, capacity uint64) TopicConfig {
	return TopicConfig{Name: name, Kind: KindLog, CapacityBytes: capacity, MaxFrameBytes: 64 << 10,
		Mode: ModeReliable, Durable: true, Subscribers: 16}
}

// applyDefaults fills the keys a [[topics]] table left out, by kind.
func (t *TopicConfig) applyDefaults(declared map[string]bool) {
	if !declared["kind"] {
		t.Kind = KindLog
	}
	switch t.Kind {
	case KindLog:
		def := defaultLogTopic(t.Name, 16<<20)
		if !declared["capacity_bytes"] {
			t.CapacityBytes = def.CapacityBytes
		}
		if !declared["max_frame_bytes"] {
			t.MaxFrameBytes = def.MaxFrameBytes
		}
		if !declared["mode"] {
			t.Mode = def.Mode
		}
		if !declared["durable"] {
			t.Durable = t.Mode == ModeReliable
		}
		if !declared["subscribers"] {
			t.Subscribers = def.Subscribers
		}
	case KindLastValue:
		if !declared["max_frame_bytes"] {
			t.MaxFrameBytes = 1024
		}
		if !declared["slots"] {
			t.Slots = 1024
		}
	}
}

// LoadConfig reads the TOML file at path over the defaults and validates
// the result. Keys the file does not know are errors (a misspelt key must
// not silently keep its default).
func LoadConfig(path string) (Config, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return ParseConfig(path, text)
}

// ReadConfig reads the TOML file at path over the defaults without
// validating it, for callers that override keys first (then call
// Validate).
func ReadConfig(path string) (Config, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return decodeConfig(path, text)
}

// ParseConfig is LoadConfig over text already read; name labels errors.
// A file that declares [[topics]] replaces the default topic list; keys a
// topic table leaves out take the defaults of its kind.
func ParseConfig(name string, text []byte) (Config, error) {
	cfg, err := decodeConfig(name, text)
	if err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", name, err)
	}
	return cfg, nil
}

func decodeConfig(name string, text []byte) (Config, error) {
	cfg := DefaultConfig()
	defaultTopics := cfg.Topics
	cfg.Topics = nil
	md, err := toml.NewDecoder(bytes.NewReader(text)).Decode(&cfg)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return Config{}, fmt.Errorf("config %s: unknown keys %s (see `appliance config default` for every key)", name, strings.Join(keys, ", "))
	}
	if !md.IsDefined("topics") {
		cfg.Topics = defaultTopics
		return cfg, nil
	}
	for i := range cfg.Topics {
		declared := map[string]bool{}
		for _, key := range topicKeysDeclared(md, i) {
			declared[key] = true
		}
		cfg.Topics[i].applyDefaults(declared)
	}
	return cfg, nil
}

// topicKeysDeclared returns the keys the i-th [[topics]] table sets. TOML
// metadata lists keys in document order, with a "topics" entry opening each
// array table.
func topicKeysDeclared(md toml.MetaData, i int) []string {
	table := -1
	var keys []string
	for _, k := range md.Keys() {
		if len(k) == 1 && k[0] == "topics" {
			table++
			continue
		}
		if len(k) == 2 && k[0] == "topics" && table == i {
			keys = append(keys, k[1])
		}
	}
	return keys
}

// ConfigError is a configuration value outside its limits.
type ConfigError struct {
	Key    string // dotted key, topics[i].key for a topic
	Value  string
	Reason string // what is wrong, with the limit
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("%s = %s: %s", e.Key, e.Value, e.Reason)
}

// Validate checks every key against its limits and the rules that tie keys
// together. The error names the key, the value and the limit; several
// problems are joined.
func (c *Config) Validate() error {
	var errs []error
	walkConfig(reflect.ValueOf(c).Elem(), "", func(f fieldInfo) {
		if f.ignoredForKind(c) {
			return
		}
		if err := f.check(); err != nil {
			errs = append(errs, err)
		}
	})
	bad := func(key string, value any, format string, args ...any) {
		errs = append(errs, &ConfigError{Key: key, Value: fmt.Sprint(value), Reason: fmt.Sprintf(format, args...)})
	}
	if c.Node.DataDir == "" {
		bad("node.data_dir", `""`, "required")
	}
	if err := shm.CheckName(c.Shm.Namespace); err != nil {
		bad("shm.namespace", strconv.Quote(c.Shm.Namespace), "%v", err)
	}
	if c.WAL.SegmentSizeBytes%4096 != 0 || c.WAL.SegmentSizeBytes < int64(c.WAL.MaxGroupBytes)+8192 {
		bad("wal.segment_size_bytes", c.WAL.SegmentSizeBytes, "must be a multiple of 4096 and at least wal.max_group_bytes + 8192 = %d", c.WAL.MaxGroupBytes+8192)
	}
	if c.WAL.MaxGroupBytes%4096 != 0 {
		bad("wal.max_group_bytes", c.WAL.MaxGroupBytes, "must be a multiple of 4096")
	}
	if lim := c.WAL.MaxGroupBytes - walFrameOverhead; c.Storage.BatchMaxBytes > lim {
		bad("storage.batch_max_bytes", c.Storage.BatchMaxBytes, "at most wal.max_group_bytes - %d = %d (a batch is one WAL append)", walFrameOverhead, lim)
	}
	if c.LSM.L0StopWritesThreshold <= c.LSM.L0CompactionTrigger {
		bad("lsm.l0_stop_writes_threshold", c.LSM.L0StopWritesThreshold, "must exceed lsm.l0_compaction_trigger = %d", c.LSM.L0CompactionTrigger)
	}
	if c.Users.PasswordMaxBytes < c.Users.PasswordMinBytes {
		bad("users.password_max_bytes", c.Users.PasswordMaxBytes, "must be at least users.password_min_bytes = %d", c.Users.PasswordMinBytes)
	}
	if c.Admin.DefaultEventsLimit > c.Admin.MaxEventsLimit {
		bad("admin.default_events_limit", c.Admin.DefaultEventsLimit, "must be at most admin.max_events_limit = %d", c.Admin.MaxEventsLimit)
	}
	if c.Storage.FIFOPriority > 0 && c.Storage.CPU < 0 {
		bad("storage.fifo_priority", c.Storage.FIFOPriority, "needs storage.cpu: a SCHED_FIFO thread not pinned to a reserved CPU can starve the machine")
	}
	names := map[string]int{}
	for i, t := range c.Topics {
		key := func(k string) string { return fmt.Sprintf("topics[%d].%s", i, k) }
		if t.Name == "" {
			bad(key("name"), `""`, "required")
		} else if err := shm.CheckName(t.Name); err != nil {
			bad(key("name"), strconv.Quote(t.Name), "not a valid topic name: %v", err)
		}
		if t.Name == UsersTopic {
			bad(key("name"), strconv.Quote(t.Name), "%q is the appliance's internal topic of user events", UsersTopic)
		}
		if j, dup := names[t.Name]; dup {
			bad(key("name"), strconv.Quote(t.Name), "also declared as topics[%d]", j)
		}
		names[t.Name] = i
		switch t.Kind {
		case KindLog:
			if t.MaxFrameBytes < schema.HeaderSize || uint64(t.MaxFrameBytes) > t.CapacityBytes/4 {
				bad(key("max_frame_bytes"), t.MaxFrameBytes, "must be in [%d, capacity_bytes/4 = %d]", schema.HeaderSize, t.CapacityBytes/4)
			}
			if t.Durable && t.Mode != ModeReliable {
				bad(key("durable"), t.Durable, "a durable topic must be mode = %q: a lossy publisher would overwrite frames before they are persisted", ModeReliable)
			}
			if t.Durable && 2*maxRecordBytes(t.MaxFrameBytes) > c.Storage.BatchMaxBytes {
				bad(key("max_frame_bytes"), t.MaxFrameBytes, "a durable topic's largest WAL record (%d bytes) must fit twice in storage.batch_max_bytes = %d", maxRecordBytes(t.MaxFrameBytes), c.Storage.BatchMaxBytes)
			}
		case KindLastValue:
			if t.Durable {
				bad(key("durable"), t.Durable, "last-value topics are not persisted (the store keeps s/quote/<instrument> instead)")
			}
		}
	}
	if c.LastValue.Enabled {
		if i, ok := names[c.LastValue.Source]; !ok || c.Topics[i].Kind != KindLog {
			bad("lastvalue.source", strconv.Quote(c.LastValue.Source), "must name a declared log topic")
		}
		if i, ok := names[c.LastValue.Target]; !ok || c.Topics[i].Kind != KindLastValue {
			bad("lastvalue.target", strconv.Quote(c.LastValue.Target), "must name a declared last-value topic")
		}
	}
	return errors.Join(errs...)
}

// walFrameOverhead is what a WAL frame spends besides records: its 64-byte
// header (wal.FrameHeaderSize).
const walFrameOverhead = 64

// Set assigns the value text to the key (dotted: "admin.listen"), as a
// command-line override, and checks the key's own limits (Validate checks
// the rest).
func (c *Config) Set(key, text string) error {
	var found *fieldInfo
	walkConfig(reflect.ValueOf(c).Elem(), "", func(f fieldInfo) {
		if f.key == key {
			found = &f
		}
	})
	if found == nil {
		return fmt.Errorf("config: no key %q (see `appliance config default`)", key)
	}
	return found.set(text)
}

// fieldInfo is one key of the table: where it lives and what its tags say.
type fieldInfo struct {
	key   string
	value reflect.Value
	field reflect.StructField
	topic *TopicConfig // the topic a topics[i] key belongs to
}

func (f fieldInfo) tag(name string) string { return f.field.Tag.Get(name) }

// ignoredForKind reports whether a topic key does not apply to its topic's
// kind (capacity_bytes of a last-value topic, slots of a log topic).
func (f fieldInfo) ignoredForKind(*Config) bool {
	if f.topic == nil {
		return false
	}
	switch f.tag("toml") {
	case "capacity_bytes", "mode", "subscribers":
		return f.topic.Kind != KindLog
	case "slots":
		return f.topic.Kind != KindLastValue
	}
	return false
}

// walkConfig calls fn for every scalar key under v (a struct), in
// declaration order; slices of structs (topics) are walked per element with
// keys "topics[i].key".
func walkConfig(v reflect.Value, prefix string, fn func(fieldInfo)) {
	walkStruct(v, prefix, nil, fn)
}

func walkStruct(v reflect.Value, prefix string, topic *TopicConfig, fn func(fieldInfo)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		key := sf.Tag.Get("toml")
		if prefix != "" {
			key = prefix + "." + key
		}
		fv := v.Field(i)
		switch {
		case fv.Kind() == reflect.Struct:
			walkStruct(fv, key, topic, fn)
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct:
			for j := 0; j < fv.Len(); j++ {
				elem := fv.Index(j)
				tc, _ := elem.Addr().Interface().(*TopicConfig)
				walkStruct(elem, fmt.Sprintf("%s[%d]", key, j), tc, fn)
			}
		default:
			fn(fieldInfo{key: key, value: fv, field: sf, topic: topic})
		}
	}
}

// check applies the field's min, max, pow2 and enum tags.
func (f fieldInfo) check() error {
	v := f.value
	bad := func(format string, args ...any) error {
		return &ConfigError{Key: f.key, Value: f.render(), Reason: fmt.Sprintf(format, args...)}
	}
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n := v.Int()
		if s := f.tag("min"); s != "" {
			if lim, _ := strconv.ParseInt(s, 10, 64); n < lim {
				return bad("below the minimum %s (limits %s)", s, f.limits())
			}
		}
		if s := f.tag("max"); s != "" {
			if lim, _ := strconv.ParseInt(s, 10, 64); n > lim {
				return bad("above the maximum %s (limits %s)", s, f.limits())
			}
		}
		if f.tag("pow2") == "true" && (n <= 0 || n&(n-1) != 0) {
			return bad("must be a power of two (limits %s)", f.limits())
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n := v.Uint()
		if s := f.tag("min"); s != "" {
			if lim, _ := strconv.ParseUint(s, 10, 64); n < lim {
				return bad("below the minimum %s (limits %s)", s, f.limits())
			}
		}
		if s := f.tag("max"); s != "" {
			if lim, _ := strconv.ParseUint(s, 10, 64); n > lim {
				return bad("above the maximum %s (limits %s)", s, f.limits())
			}
		}
		if f.tag("pow2") == "true" && bits.OnesCount64(n) != 1 {
			return bad("must be a power of two (limits %s)", f.limits())
		}
	case reflect.String:
		if e := f.tag("enum"); e != "" {
			for _, allowed := range strings.Split(e, "|") {
				if v.String() == allowed {
					return nil
				}
			}
			return bad("must be one of %s", strings.ReplaceAll(e, "|", ", "))
		}
	}
	return nil
}

// limits renders the field's limits for errors and the reference.
func (f fieldInfo) limits() string {
	var parts []string
	lo, hi := f.tag("min"), f.tag("max")
	switch {
	case lo != "" && hi != "":
		parts = append(parts, lo+".."+hi)
	case lo != "":
		parts = append(parts, ">= "+lo)
	case hi != "":
		parts = append(parts, "<= "+hi)
	}
	if f.tag("pow2") == "true" {
		parts = append(parts, "power of two")
	}
	if e := f.tag("enum"); e != "" {
		parts = append(parts, strings.ReplaceAll(e, "|", " or "))
	}
	return strings.Join(parts, ", ")
}

// render prints the field's current value as TOML.
func (f fieldInfo) render() string {
	v := f.value
	switch v.Kind() {
	case reflect.String:
		return strconv.Quote(v.String())
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	}
	return fmt.Sprint(v.Interface())
}

// set parses text into the field and checks its limits.
func (f fieldInfo) set(text string) error {
	v := f.value
	switch v.Kind() {
	case reflect.String:
		v.SetString(text)
	case reflect.Bool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return fmt.Errorf("config: %s = %q: not a bool", f.key, text)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(text, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("config: %s = %q: not an integer (limits %s)", f.key, text, f.limits())
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(text, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("config: %s = %q: not an unsigned integer (limits %s)", f.key, text, f.limits())
		}
		v.SetUint(n)
	default:
		return fmt.Errorf("config: %s cannot be set from the command line", f.key)
	}
	if err := f.check(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// walDir and lsmDir are the node's data directories.
func (c *Config) walDir() string { return filepath.Join(c.Node.DataDir, "wal") }
func (c *Config) lsmDir() string { return filepath.Join(c.Node.DataDir, "lsm") }

// shmOptions returns the shm options of a topic (its group, if any; nil
// for the namespace's defaults).
func (c *Config) shmOptions(t *TopicConfig) (shm.Options, error) {
	o := shm.Options{Base: c.Shm.Base, Namespace: c.Shm.Namespace, Populate: c.Shm.Populate, Lock: c.Shm.Lock, HugePages: c.Shm.HugePages}
	if t != nil && t.Group != "" {
		gid, err := lookupGroup(t.Group)
		if err != nil {
			return o, fmt.Errorf("topic %s: group %q: %w", t.Name, t.Group, err)
		}
		o.Group = gid
	}
	return o, nil
}

// ringMode maps the config spelling to ring's mode.
func (t *TopicConfig) ringMode() ring.Mode {
	if t.Mode == ModeLossy {
		return ring.Lossy
	}
	return ring.Reliable
}

// Topic returns the declared topic called name.
func (c *Config) Topic(name string) (*TopicConfig, bool) {
	for i := range c.Topics {
		if c.Topics[i].Name == name {
			return &c.Topics[i], true
		}
	}
	return nil, false
}
