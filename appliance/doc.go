// Package appliance is the assembled Tapewire node: configuration, the
// storage tenant (rings → WAL → durable positions → LSM), recovery,
// checkpoints, the last-value tenant, the user store and the admin HTTP
// API. cmd/appliance wraps it (`appliance run`, `demo`, `users`, ...).
//
// # The node
//
//	producers (other processes)                      admin HTTP (127.0.0.1)
//	   │ ring.Publisher                                 /healthz /metrics /v1/...
//	   ▼
//	/dev/shm/tapewire/<ns>/<topic>.ring ──► storage tenant ──► WAL (O_DIRECT group commit)
//	   ▲  durable position ◄──────────────────┘  │                  │
//	   │                                         ▼                  ▼
//	   │                              applier: LSM (external-log mode)
//	   └─ ticks ──► last-value tenant ──► quotes.lvc
//
// Open recovers (see below); Start runs the tenants; Run serves until its
// context ends; Stop and Close shut down gracefully.
//
// # The path of one event
//
//  1. A producer claims, builds and commits a frame in a durable (reliable)
//     topic: no system call.
//  2. The committer goroutine reads it in place with its reliable
//     ManualRelease subscription (a view into the ring) and copies it into
//     the current batch's arena as a
//     WAL record: topic id | 0 | frame (record.go). A frame that fails
//     schema.Verify becomes a quarantine record with the reason instead.
//  3. The batch (one round over every topic, bounded by
//     storage.batch_max_frames and batch_max_bytes) is appended to the WAL:
//     by the committer itself when nothing is in flight and the batch is
//     small (storage.sync_append_max_frames: the lowest latency), else
//     with AppendAsync, which the WAL's flushers pipeline.
//  4. When the WAL's durable LSN covers the batch, the committer advances
//     each topic's durable position in the ring (producers waiting in
//     WaitDurable wake) and releases the frames' ring space to the
//     publisher (Subscriber.Release). The subscription sees a frame
//     once its length word is stored, which the publisher does before it
//     stores the published position after it; ring refuses a durable
//     position past the published one, so when the WAL is faster than a
//     preempted publisher the rest of the advance waits (the committer
//     re-checks every loop and parks at most 1 ms meanwhile;
//     tapewire_storage_durable_deferred_total counts these).
//  5. The applier goroutine turns the batch — together with the durable
//     batches already waiting behind it, up to 8 and a quarter of a
//     memtable — into one LSM batch applied with ApplyAt at the LSN of its
//     last record (apply.go): the event key or the quarantine key of every
//     record, and the state key of every frame that has one, coalesced:
//     only the last update of each state key in the LSM batch is written.
//     A batch is applied atomically, so no reader could see the earlier
//     updates, and the event log keeps all of them; the state keys after a
//     batch equal a replay of its events one by one.
//
// The committer never releases ring space past what is durable: its
// subscription's registered position (what holds the publisher back) moves
// only with Release, at or behind the durable position, while it reads
// ahead up to the published position. So a publisher can never overwrite a
// frame that is not yet durable while the appliance lives, and after a
// kill -9 every frame between the durable and published positions is still
// in the ring for the next start.
//
// # Key spaces (keys.go)
//
//	e/<topic u32 BE>/<seq u64 BE>   → frame            event log
//	q/<topic u32 BE>/<seq u64 BE>   → reason | frame   quarantine
//	s/order/<user>/<order_id>       → Order frame      materialized state:
//	s/account/<user>/<currency>     → Account frame    the newest event of
//	s/position/<user>/<instrument>  → Position frame   each key
//	s/quote/<instrument>            → Tick frame
//	s/instrument/<instrument>       → Instrument frame
//	s/user/<user>                   → UserRegistered frame
//	s/binding/<user>/<account>      → AccountBound frame
//	m/topic/<name>                  → topic id u32 | kind u32 (catalog)
//
// Id parts escape '%' and '/' as %25 and %2F. Topic ids come from the
// catalog, registered through the WAL the first time a durable topic (or
// the internal "users" topic) is seen, so they never change.
//
// The store is partitioned (lsm.Options.Partition, storePartition): each
// topic's e/ and q/ are a partition of their own, s/ and m/ one each. No
// SSTable spans two partitions, so a topic's event log, appended in
// sequence order, flushes into tables that lie after its older ones and
// move to the bottom level without ever being rewritten, while compactions
// merge only the state; and each topic's inserts keep their own cached
// position in the memtable. Event-log and quarantine tables carry no bloom
// filter (storeBloomBits): they are only scanned.
//
// # Recovery sequence (Open)
//
//  1. Open the LSM (ExternalLog durability): its manifest gives the WAL LSN
//     its SSTables cover.
//
//  2. Open the WAL (its own torn-tail/corruption decision table) with
//     wal.Options.DeferSealedVerification: it scans only the tail (the
//     segments a torn write can touch) and takes the sealed segments
//     before it from their headers; the replay's Reader verifies their
//     frames as it reads them, so the log is read once. Damage there
//     fails Open with the WAL's *CorruptionError (segment and offset)
//     before the node has accepted anything. A WAL that ends before the
//     covered LSN, or starts after it, is refused with an error naming
//     both LSNs.
//
//  3. If the event-log backfill marker (backfill.go) survives from a
//     previous process and says from ≤ covered (a crash or stop during a
//     backfill), read WAL LSNs [from, covered] for their topics' newest
//     sequence numbers: this start's backfill rebuilds their event log
//     too (with backfill_event_log off, Open rebuilds it now).
//
//  4. Replay the WAL from covered+1 into the LSM in groups of
//     recovery.replay_batch_records records (cut at a quarter of a
//     memtable of state, or half a memtable of event-log keys), built like
//     the applier's batches (the same keys and state coalescing, so
//     replayed state equals applied state), printing progress (records,
//     MiB, rate, ETA) every recovery.progress_interval_ms. A reader
//     goroutine reads and builds the next group while the store takes the
//     last (replay.go).
//
//     With recovery.backfill_event_log (the default) the replay applies
//     only the state, quarantine and catalog keys: the marker
//     (<data_dir>/EVENTLOG-BACKFILL, from = covered+1, or the unfinished
//     backfill's from) is made durable
//     first, and once Open has returned a backfill rebuilds the range's
//     event log (e/) from the WAL in the background, straight into
//     SSTables (lsm.Ingest), and removes the marker when its tables are
//     in the manifest. Until then checkpoints keep the WAL from the
//     marker's LSN, GET /v1/events waits (or answers 503 with
//     Retry-After) for a topic range not yet rebuilt, sequence numbers
//     continue after the newest the replay saw, and /v1/status
//     (recovery.event_log_backfill) and /metrics
//     (tapewire_recovery_backfill_*) show the progress. Restart time is
//     then one read of the WAL plus the state; the event log's writing,
//     most of the bytes, comes after.
//
//     With backfill_event_log = false the replay writes the event log
//     before Open returns: with recovery.ingest_event_log each group's e/
//     keys, sorted per topic, are written straight into SSTables
//     (lsm.Ingest: no memtable insert, no later flush), two groups at a
//     time; the group's other keys are applied with ApplyAt only after
//     its tables are in the manifest, so no flush can cover an LSN whose
//     event is not in a table. Ingest records no LSN: a crash before the
//     next checkpoint replays those records again, and the newer copy of
//     each key shadows the ingested one (the same bytes).
//
//  5. Register missing topics in the catalog (WAL + LSM).
//
//  6. For every log topic: if its segment is missing (host reboot), create
//     it with its next sequence number set to the newest stored sequence
//     + 1 (ring.LogConfig.FirstSeq), so a topic's sequence numbers never
//     go backwards. A ring whose next sequence number is below the store's
//     is refused.
//
//  7. Attach the storage tenant to every durable topic at the ring's durable
//     position. Frames already stored (the previous process made them
//     durable in the WAL but died before advancing the ring) are skipped by
//     sequence number and counted as duplicates; if the durable position is
//     no longer in the ring (the publisher evicted the dead subscription and
//     overwrote it), the tenant starts at the newest frame and counts the
//     missing sequence numbers as lost.
//
// Checkpoints (periodic every checkpoint.interval_ms, when the WAL grew by
// checkpoint.wal_bytes, on POST /v1/checkpoint and at a graceful stop) wait
// (at most 2 s) until the applier has applied what was durable, flush the
// memtables, read the covered LSN from the store and truncate the WAL
// before it (or before a pending backfill's first LSN, if lower), which
// bounds the next replay.
//
// # Tenants and the CPU plan
//
//   - storage: the committer (hot: pinned to storage.cpu with tune.Pin,
//     optionally SCHED_FIFO; with storage.wait = spin-park it spins
//     storage.spin_iterations, yields storage.yield_iterations, then parks
//     with futex_waitv on every topic's data futex and its own wake word,
//     which the WAL's Notify, appliance events and Stop bump; with
//     busy-spin, for a core reserved to it, it never parks, so no futex
//     wake-up lies between a publication and its WAL write) and the
//     applier (housekeeping).
//   - lastvalue: an observer of lastvalue.source (it never holds a
//     publisher back); each Tick becomes the value of its instrument in
//     lastvalue.target. A table it creates is seeded from s/quote/.
//   - checkpoint: a housekeeping goroutine on a one-second ticker.
//   - admin: the HTTP server.
//
// /v1/status reports the plan (allowed CPUs, the committer's and the
// last-value tenant's CPU, the housekeeping CPUs). RecommendedGOMAXPROCS
// (applied by cmd/appliance) adds two Ps so goroutines the committer hands
// work to never wait for the scheduler to take a P back from a thread
// blocked in a system call.
//
// # Users
//
// Users (users.go) are UserRegistered and AccountBound events on the
// internal topic "users", written through the committer like ring frames
// (sequence numbers assigned by the committer), so they recover and will
// replicate with the log. Passwords are kept only as argon2id hashes with
// their parameters (users.argon2_*) and salt; VerifyPassword compares in
// constant time and hashes for unknown users too.
//
// # Admin HTTP API
//
//	GET  /healthz                       200 ok, 503 once the storage tenant or the event-log backfill failed (no token needed)
//	GET  /metrics                       Prometheus (tapewire_*, Go runtime, process)
//	GET  /v1/status                     topics, positions, WAL, LSM levels, tenants, CPU plan, recovery
//	GET  /v1/events?topic=T&from=S&limit=N   JSON lines (schema.AppendJSONRedacted: passwords hidden), limit ≤ admin.max_events_limit
//	GET  /v1/quarantine?topic=T&from=S&limit=N   quarantined frames with their reasons
//	                                             (a frame whose type has secrets, or no
//	                                             known type, shows only its header)
//	GET  /v1/state/{kind}/{id...}       one state key; an id ending in "/" (or none) lists a prefix
//	POST /v1/checkpoint                 checkpoint now
//	GET  /v1/users, POST /v1/users, POST /v1/users/{id}/disable|accounts|verify
//	     /debug/pprof/                  profiles (keep admin.listen on loopback)
//
// Reads wait (at most 2 s) until the store has applied everything the WAL
// had made durable when the request arrived, so an event a producer saw
// durable is readable. After a restart, /v1/events for a topic range the
// event-log backfill has not rebuilt yet waits for it (at most 10 s, or
// the request's own deadline) and then answers 503 with Retry-After: 1
// and an error saying how far the backfill is, never a gap. Errors are JSON {"error": "..."} naming the input
// and the limit. With admin.token_file every request but /healthz needs
// "Authorization: Bearer <token>".
//
// # Concurrency
//
// Node methods are safe from any goroutine; Stop and Close may be called
// more than once. The committer goroutine alone owns the ring
// subscriptions, the batches it fills and the pending queue; it hands
// durable batches to the applier through a channel in LSN order, and the
// applier returns them through another (both hold storage.batch_buffers
// batches, so neither send blocks). The applier alone owns the LSM batch it
// builds (storage.build); during Open the replay's reader goroutine owns
// the groups it fills until it sends them, and Open waits for it to end.
// The event-log backfill runs in goroutines of its own (a reader and the
// ingesting loop) that write only e/ keys below every live one of their
// topic; Stop gives it shutdown.drain_timeout_ms to finish, then it and
// Close stop it (the marker stays: the next start finishes it). Counters
// the API reads are atomics.
// Appliance events (users) enter through a bounded queue
// (storage.admin_queue_depth) and their callers wait until the event is
// applied. The WAL's Notify runs on the WAL's commit path and only bumps
// the committer's wake word.
//
// # Graceful shutdown
//
// Stop (SIGTERM or SIGINT in `appliance run`): registered OnStop hooks run
// (the demo stops its simulator), the admin API and the last-value tenant
// stop, the committer drains every durable topic up to the published
// position it found (bounded by shutdown.drain_timeout_ms), commits and
// hands the rest to the applier, a final checkpoint runs, and the WAL
// (with its clean-close frame), the store and the subscriptions close. A
// second signal exits at once; that is a crash, and crash-safe.
package appliance
