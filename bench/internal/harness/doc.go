// Package harness is the shared frame of every Tapewire benchmark program
// (bench/cmd/<area>bench). It implements the contract in ../shared/BENCH.md:
// run each workload for Tapewire and for each peer interleaved, at least three
// repeats each, record latencies in HDR histograms, print a human table, and
// with -json write the machine-readable document whose ratios are always
// "above 1 means Tapewire is ahead".
//
// A program looks like this:
//
//	func main() {
//		records := flag.Int("records", 0, "override the record count")
//		b := harness.New("walbench") // parses -quick, -json, -repeats, -only
//		n := b.Size(1_000_000, 100_000)
//		b.Interleave("synced-append-1w",
//			harness.Contender{System: "tapewire", Run: func(repeat int) (harness.Result, error) { ... }},
//			harness.Contender{System: "pebble", Run: func(repeat int) (harness.Result, error) { ... }},
//		)
//		b.Finish() // prints, writes JSON, exits non-zero only if something could not run
//	}
//
// Names: the system "tapewire" is ours; every other system in a workload is a
// peer or a physical floor (name floors "floor-<what>", e.g. "floor-cacheline"),
// and gets a ratio row per metric both report.
//
// Ratios: for throughput metrics (ops_per_sec, bytes_per_sec) the ratio is
// ours ÷ peer, for latency metrics (p50_ns, p99_ns) peer ÷ ours. Each repeat of
// ours is paired with the same repeat of the peer (they ran next to each other),
// and the median of those per-repeat ratios is reported.
//
// Interleaving: repeat r runs the contenders in the given order when r is even
// and in reverse order when r is odd (A B, B A, A B ...), so slow drift of the
// shared VM cancels instead of favouring whoever runs first.
//
// Latency under load: OpenLoop issues operations at a fixed offered rate from
// an intended schedule and measures each from its intended start, which is the
// coordinated-omission correction; print the offered rate next to percentiles
// (Result.Notes).
//
// Multi-process benchmarks re-execute their own binary: Child starts a copy in
// a named role and Role tells main which role it was started in.
//
// Concurrency: a Bench is used from main's goroutine only. A Histogram is not
// safe for concurrent use; give each goroutine its own and Merge them.
package harness
