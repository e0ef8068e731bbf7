// Command e2ebench measures the assembled appliance end to end, with the
// physical floors measured in the same run on the same ext4 directory:
//
//   - publish-durable-1k: a producer publishes at 1,000 events/s (open loop)
//     and each event's latency runs from its intended publish time to the
//     moment the ring's durable position passes it (WAL commit → durable
//     position), against floor-dsync4k: the service time of one
//     O_DIRECT|O_DSYNC 4 KiB write paced at the same rate. The appliance
//     runs in its own process, as deployed. Goal: p50 ≤ 1.2× the floor's.
//   - publish-durable-1k-spin: the same with the committer busy-spinning
//     (storage.wait = busy-spin) and the producer busy-polling the durable
//     position, as each would on a core reserved for it: one device write
//     and no wake-up on the path. Both spinners share the 2 vCPUs with
//     everything else here, so its tail shows the contention.
//   - publish-durable-saturation: the same at half the sustained ingest
//     rate measured by durable-ingest in the same run (high load; closer
//     to the maximum, the noisy shared VM's dips below the offered rate
//     turn the figure into queueing time).
//   - durable-ingest-150B: a producer publishes 100–200-byte mixed events as
//     fast as the reliable ring takes them; events/s made durable and
//     applied, against floor-dsync-1MiB (sequential 1 MiB O_DIRECT|O_DSYNC
//     writes, expressed in events of the same WAL footprint). Goal ≥ 1 M/s;
//     the seed design's figure was 78 K/s.
//   - restart-<N>MiB: appliance.Open over a WAL of N MiB (1 GiB; 32 MiB
//     under -quick) that no checkpoint covers, against floor-odirect-read
//     (reading the same files with O_DIRECT). Goal ≤ 1 s per GiB. The
//     figure is the time until Open returns; each repeat's notes also give
//     when the event-log backfill that Open leaves running
//     (recovery.backfill_event_log) finished.
//   - ring-roundtrip: ping-pong over two non-durable topics, p99, while the
//     storage tenant ingests at full speed (tapewire) and while it idles
//     (baseline-storage-idle): the tenant's effect on the hot path.
//
// Usage: e2ebench [-quick] [-json PATH] [-dir DIR] [-repeats N] [-only RE]
// [-spin N] [-set KEY=VALUE]... [-saturation-rate N] [-cpuprofile PATH]
// [-node-cpuprofile PATH] [-restart-log]
//
// -cpuprofile profiles this process (the restart workload runs in it);
// -node-cpuprofile profiles each appliance child (the last one's profile
// survives: pick the workload with -only).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/tapewire/tapewire/bench/internal/harness"
	"github.com/tapewire/tapewire/vfs"
)

func main() {
	dirFlag := flag.String("dir", "", "directory on the disk under test (default: a new directory in $TMPDIR); must not be tmpfs")
	nodeConfig := flag.String("node-config", "", "(child role) configuration of the appliance child")
	lgBase := flag.String("lg-base", "", "(child role) shm base of the load generator")
	lgNamespace := flag.String("lg-namespace", "", "(child role) shm namespace of the load generator")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this process (the in-process workloads: restart) to this `path`")
	saturationRate := flag.Float64("saturation-rate", 0, "offered `events/s` of publish-durable-saturation (0: half the best durable-ingest repeat of this run)")
	b := harness.New("e2ebench")
	switch harness.Role() {
	case "node":
		if err := runNodeChild(*nodeConfig); err != nil {
			fmt.Fprintln(os.Stderr, "e2ebench node:", err)
			os.Exit(1)
		}
		return
	case "loadgen":
		if err := runLoadGenChild(*lgBase, *lgNamespace); err != nil {
			fmt.Fprintln(os.Stderr, "e2ebench loadgen:", err)
			os.Exit(1)
		}
		return
	}
	root, err := benchDir(*dirFlag)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2ebench:", err)
		os.Exit(1)
	}
	env := &env{root: root, quick: b.Quick()}
	var profile *os.File
	if *cpuProfile != "" {
		profile, err = os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(profile)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2ebench: cpu profile:", err)
			os.Exit(1)
		}
	}

	d := b.Duration(4*time.Second, time.Second)
	if b.Wants("publish-durable-1k") {
		b.Interleave("publish-durable-1k",
			harness.Contender{System: harness.Ours, Run: func(int) (harness.Result, error) { return env.publishDurable(1000, d, false) }},
			harness.Contender{System: "floor-dsync4k", Run: func(int) (harness.Result, error) { return env.floorOpenLoop(1000, d) }},
		)
	}
	if b.Wants("publish-durable-1k-spin") {
		b.Interleave("publish-durable-1k-spin",
			harness.Contender{System: harness.Ours, Run: func(int) (harness.Result, error) { return env.publishDurable(1000, d, true) }},
			harness.Contender{System: "floor-dsync4k", Run: func(int) (harness.Result, error) { return env.floorOpenLoop(1000, d) }},
		)
	}
	ingestRate := 0.0
	if b.Wants("durable-ingest-150B") {
		b.Interleave("durable-ingest-150B",
			harness.Contender{System: harness.Ours, Run: func(int) (harness.Result, error) {
				r, err := env.ingest(d)
				ingestRate = max(ingestRate, r.OpsPerSec)
				return r, err
			}},
			harness.Contender{System: "floor-dsync-1MiB", Run: func(int) (harness.Result, error) { return env.floorSequential(d) }},
		)
	}
	if b.Wants("publish-durable-saturation") {
		rate := 0.5 * ingestRate
		if *saturationRate > 0 {
			rate = *saturationRate
		} else if rate <= 0 {
			rate = 20_000
		}
		b.Interleave("publish-durable-saturation",
			harness.Contender{System: harness.Ours, Run: func(int) (harness.Result, error) { return env.publishDurable(rate, d, false) }},
		)
	}
	walBytes := int64(b.Size(1<<30, 32<<20))
	restart := fmt.Sprintf("restart-%dMiB", walBytes>>20)
	if b.Wants(restart) {
		rd, err := env.newRestartData(walBytes)
		if err != nil {
			b.Fail(restart, err)
		} else {
			b.Interleave(restart,
				harness.Contender{System: harness.Ours, Run: func(int) (harness.Result, error) { return rd.open() }},
				harness.Contender{System: "floor-odirect-read", Run: func(int) (harness.Result, error) { return rd.floorRead() }},
			)
		}
	}
	if b.Wants("ring-roundtrip") {
		b.Interleave("ring-roundtrip",
			harness.Contender{System: harness.Ours, Run: func(int) (harness.Result, error) { return env.roundTrip(true, d) }},
			harness.Contender{System: "baseline-storage-idle", Run: func(int) (harness.Result, error) { return env.roundTrip(false, d) }},
		)
	}
	// Finish exits the process: clean up (and end the profile) first.
	os.RemoveAll(root)
	env.cleanupShm()
	if profile != nil {
		pprof.StopCPUProfile()
		profile.Close()
	}
	b.Finish()
}

// benchDir makes a fresh directory on a disk file system.
func benchDir(dir string) (string, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	if _, inMemory, err := vfs.FileSystemType(dir); err != nil {
		return "", err
	} else if inMemory {
		return "", fmt.Errorf("%s is tmpfs: durability and O_DIRECT mean nothing there; pass -dir on a disk", dir)
	}
	return os.MkdirTemp(dir, "e2ebench-")
}

// freshDir returns a new empty directory under root.
func freshDir(root, name string) (string, error) {
	return os.MkdirTemp(root, name+"-")
}
