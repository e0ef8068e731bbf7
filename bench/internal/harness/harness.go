package harness

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Ours is the system name of Tapewire's own results.
const Ours = "tapewire"

// minRepeats is the fewest repeats BENCH.md accepts.
const minRepeats = 3

// Result is one run of one workload by one system. Zero metrics are omitted
// from ratios; set what the workload measures.
type Result struct {
	Workload    string  `json:"workload"`
	System      string  `json:"system"`
	Repeat      int     `json:"repeat"`
	OpsPerSec   float64 `json:"ops_per_sec"`
	BytesPerSec float64 `json:"bytes_per_sec"`
	P50Ns       int64   `json:"p50_ns"`
	P90Ns       int64   `json:"p90_ns"`
	P99Ns       int64   `json:"p99_ns"`
	P999Ns      int64   `json:"p999_ns"`
	MaxNs       int64   `json:"max_ns"`
	AllocsPerOp float64 `json:"allocs_per_op"`
	Notes       string  `json:"notes"`
}

// Ratio compares Tapewire with one peer on one metric of one workload.
type Ratio struct {
	Workload    string  `json:"workload"`
	Metric      string  `json:"metric"`
	Peer        string  `json:"peer"`
	MedianRatio float64 `json:"median_ratio"`
	Pairs       int     `json:"pairs"`
}

// Document is the -json output.
type Document struct {
	Bench   string   `json:"bench"`
	Go      string   `json:"go"`
	CPUs    int      `json:"cpus"`
	Host    string   `json:"host"`
	CPU     string   `json:"cpu_model"`
	Started string   `json:"started"`
	Quick   bool     `json:"quick"`
	Command []string `json:"command"`
	Results []Result `json:"results"`
	Ratios  []Ratio  `json:"ratios"`
	Failed  []string `json:"failed,omitempty"`
}

// Contender is one system's implementation of a workload. Run performs one
// complete repeat (set-up excluded from the measurement is the contender's own
// business) and returns its measurements; the harness fills Workload, System
// and Repeat.
type Contender struct {
	System string
	Run    func(repeat int) (Result, error)
}

// Bench collects the results of one benchmark program.
type Bench struct {
	name     string
	quick    bool
	jsonPath string
	repeats  int
	only     *regexp.Regexp
	started  time.Time
	results  []Result
	failed   []string
}

// New defines the common flags (-quick, -json, -repeats, -only) on the
// default flag set, parses the command line and returns the Bench. Programs
// define their own extra flags before calling New.
func New(name string) *Bench {
	b := &Bench{name: name, started: time.Now()}
	flag.BoolVar(&b.quick, "quick", false, "smoke run: smaller data, finishes in under 60 s")
	flag.StringVar(&b.jsonPath, "json", "", "write the BENCH.md JSON document to this `path`")
	flag.IntVar(&b.repeats, "repeats", minRepeats, "repeats per workload and system (at least 3)")
	only := flag.String("only", "", "run only workloads whose name matches this `regexp`")
	flag.Parse()
	if b.repeats < minRepeats {
		fmt.Fprintf(os.Stderr, "%s: -repeats %d is below the minimum of %d\n", name, b.repeats, minRepeats)
		os.Exit(2)
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: -only %q: %v\n", name, *only, err)
			os.Exit(2)
		}
		b.only = re
	}
	return b
}

// Quick reports whether -quick was given.
func (b *Bench) Quick() bool { return b.quick }

// Repeats is the number of repeats per workload and system.
func (b *Bench) Repeats() int { return b.repeats }

// Size returns full, or quick under -quick.
func (b *Bench) Size(full, quick int) int {
	if b.quick {
		return quick
	}
	return full
}

// Duration returns full, or quick under -quick.
func (b *Bench) Duration(full, quick time.Duration) time.Duration {
	if b.quick {
		return quick
	}
	return full
}

// Wants reports whether workload passes the -only filter. Use it to skip
// expensive set-up shared by several workloads.
func (b *Bench) Wants(workload string) bool {
	return b.only == nil || b.only.MatchString(workload)
}

// Interleave runs every contender Repeats times, alternating the order each
// repeat, and records the results. A contender that returns an error is
// recorded as failed (Finish then exits non-zero) and skipped for the
// remaining repeats; the others go on.
func (b *Bench) Interleave(workload string, contenders ...Contender) {
	if !b.Wants(workload) {
		return
	}
	broken := make(map[string]bool)
	for repeat := 0; repeat < b.repeats; repeat++ {
		order := append([]Contender(nil), contenders...)
		if repeat%2 == 1 {
			for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
				order[i], order[j] = order[j], order[i]
			}
		}
		for _, c := range order {
			if broken[c.System] {
				continue
			}
			runtime.GC()
			r, err := c.Run(repeat)
			if err != nil {
				broken[c.System] = true
				msg := fmt.Sprintf("%s/%s repeat %d: %v", workload, c.System, repeat, err)
				b.failed = append(b.failed, msg)
				fmt.Fprintf(os.Stderr, "%s: FAILED %s\n", b.name, msg)
				continue
			}
			r.Workload, r.System, r.Repeat = workload, c.System, repeat
			b.Add(r)
		}
	}
}

// Add records a result measured outside Interleave.
func (b *Bench) Add(r Result) {
	b.results = append(b.results, r)
	fmt.Fprintf(os.Stderr, "%s: %-28s %-20s #%d %s\n", b.name, r.Workload, r.System, r.Repeat, summary(r))
}

// Fail records that a workload could not run; Finish exits non-zero.
func (b *Bench) Fail(workload string, err error) {
	msg := fmt.Sprintf("%s: %v", workload, err)
	b.failed = append(b.failed, msg)
	fmt.Fprintf(os.Stderr, "%s: FAILED %s\n", b.name, msg)
}

// Results returns what has been recorded so far.
func (b *Bench) Results() []Result { return b.results }

// Finish computes the ratios, prints the table, writes the JSON document if
// -json was given and exits: 0, or 1 if any benchmark could not run. A low
// ratio is never a failure.
func (b *Bench) Finish() {
	doc := b.Document()
	printTable(os.Stdout, doc)
	code := 0
	if b.jsonPath != "" {
		if err := writeJSON(b.jsonPath, doc); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", b.name, err)
			code = 1
		}
	}
	if len(b.failed) > 0 {
		code = 1
	}
	os.Exit(code)
}

// Document assembles the JSON document from the recorded results.
func (b *Bench) Document() Document {
	host, _ := os.Hostname()
	return Document{
		Bench:   b.name,
		Go:      runtime.Version(),
		CPUs:    runtime.NumCPU(),
		Host:    host,
		CPU:     cpuModel(),
		Started: b.started.UTC().Format(time.RFC3339),
		Quick:   b.quick,
		Command: os.Args,
		Results: b.results,
		Ratios:  ComputeRatios(b.results),
		Failed:  b.failed,
	}
}

type metric struct {
	name       string
	value      func(Result) float64
	throughput bool
}

var metrics = []metric{
	{"ops_per_sec", func(r Result) float64 { return r.OpsPerSec }, true},
	{"bytes_per_sec", func(r Result) float64 { return r.BytesPerSec }, true},
	{"p50_ns", func(r Result) float64 { return float64(r.P50Ns) }, false},
	{"p99_ns", func(r Result) float64 { return float64(r.P99Ns) }, false},
}

// ComputeRatios pairs each of Tapewire's repeats with the same repeat of every
// peer in the same workload and returns the median ratio per metric, oriented
// so that above 1 means Tapewire is ahead. Workloads keep their first-seen
// order; peers are sorted by name.
func ComputeRatios(results []Result) []Ratio {
	type key struct{ workload, system string }
	byRepeat := make(map[key]map[int]Result)
	var workloads []string
	peers := make(map[string]map[string]bool)
	for _, r := range results {
		k := key{r.Workload, r.System}
		if byRepeat[k] == nil {
			byRepeat[k] = make(map[int]Result)
		}
		byRepeat[k][r.Repeat] = r
		if peers[r.Workload] == nil {
			peers[r.Workload] = make(map[string]bool)
			workloads = append(workloads, r.Workload)
		}
		if r.System != Ours {
			peers[r.Workload][r.System] = true
		}
	}
	var out []Ratio
	for _, w := range workloads {
		ours := byRepeat[key{w, Ours}]
		if len(ours) == 0 {
			continue
		}
		names := make([]string, 0, len(peers[w]))
		for p := range peers[w] {
			names = append(names, p)
		}
		sort.Strings(names)
		for _, p := range names {
			theirs := byRepeat[key{w, p}]
			for _, m := range metrics {
				var ratios []float64
				for rep, o := range ours {
					t, ok := theirs[rep]
					if !ok {
						continue
					}
					ov, tv := m.value(o), m.value(t)
					if ov <= 0 || tv <= 0 {
						continue
					}
					if m.throughput {
						ratios = append(ratios, ov/tv)
					} else {
						ratios = append(ratios, tv/ov)
					}
				}
				if len(ratios) == 0 {
					continue
				}
				out = append(out, Ratio{Workload: w, Metric: m.name, Peer: p, MedianRatio: Median(ratios), Pairs: len(ratios)})
			}
		}
	}
	return out
}

// Median returns the median of xs (the mean of the middle two for an even
// count); xs is reordered.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

func summary(r Result) string {
	var parts []string
	if r.OpsPerSec > 0 {
		parts = append(parts, fmt.Sprintf("%s ops/s", si(r.OpsPerSec)))
	}
	if r.BytesPerSec > 0 {
		parts = append(parts, fmt.Sprintf("%sB/s", si(r.BytesPerSec)))
	}
	if r.P50Ns > 0 {
		parts = append(parts, fmt.Sprintf("p50 %s p99 %s p99.9 %s", ns(r.P50Ns), ns(r.P99Ns), ns(r.P999Ns)))
	}
	parts = append(parts, fmt.Sprintf("%.2f allocs/op", r.AllocsPerOp))
	if r.Notes != "" {
		parts = append(parts, r.Notes)
	}
	return strings.Join(parts, "  ")
}

func printTable(f *os.File, doc Document) {
	type key struct{ workload, system string }
	groups := make(map[key][]Result)
	var order []key
	for _, r := range doc.Results {
		k := key{r.Workload, r.System}
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	w := tabwriter.NewWriter(f, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(f, "%s — medians over repeats (%s, %d CPUs, %s)\n", doc.Bench, doc.Go, doc.CPUs, doc.CPU)
	fmt.Fprintln(w, "workload\tsystem\tn\tops/s\tbytes/s\tp50\tp90\tp99\tp99.9\tmax\tallocs/op\t")
	for _, k := range order {
		rs := groups[k]
		med := func(f func(Result) float64) float64 {
			xs := make([]float64, len(rs))
			for i, r := range rs {
				xs[i] = f(r)
			}
			return Median(xs)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t\n", k.workload, k.system, len(rs),
			si(med(func(r Result) float64 { return r.OpsPerSec })),
			si(med(func(r Result) float64 { return r.BytesPerSec })),
			ns(int64(med(func(r Result) float64 { return float64(r.P50Ns) }))),
			ns(int64(med(func(r Result) float64 { return float64(r.P90Ns) }))),
			ns(int64(med(func(r Result) float64 { return float64(r.P99Ns) }))),
			ns(int64(med(func(r Result) float64 { return float64(r.P999Ns) }))),
			ns(int64(med(func(r Result) float64 { return float64(r.MaxNs) }))),
			med(func(r Result) float64 { return r.AllocsPerOp }))
	}
	w.Flush()
	if len(doc.Ratios) > 0 {
		fmt.Fprintln(f, "\nratios (above 1 = tapewire ahead)")
		w = tabwriter.NewWriter(f, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, "workload\tmetric\tpeer\tmedian ratio\tpairs\t")
		for _, r := range doc.Ratios {
			fmt.Fprintf(w, "%s\t%s\t%s\t%.3f\t%d\t\n", r.Workload, r.Metric, r.Peer, r.MedianRatio, r.Pairs)
		}
		w.Flush()
	}
	for _, msg := range doc.Failed {
		fmt.Fprintf(f, "FAILED: %s\n", msg)
	}
}

func writeJSON(path string, doc Document) error {
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write -json %s: %w", path, err)
	}
	return nil
}

func si(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fK", v/1e3)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

func ns(v int64) string {
	switch {
	case v == 0:
		return "-"
	case v >= 1e9:
		return fmt.Sprintf("%.2fs", float64(v)/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fms", float64(v)/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fµs", float64(v)/1e3)
	default:
		return fmt.Sprintf("%dns", v)
	}
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if name, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
		}
	}
	return "unknown"
}

// roleEnv carries the role of a re-executed benchmark child.
const roleEnv = "TAPEWIRE_BENCH_ROLE"

// Role returns the role this process was started in by Child, or "" in the
// parent.
func Role() string { return os.Getenv(roleEnv) }

// Child prepares a copy of this program started in the given role, with args
// appended to its command line (after the flags the harness parsed, so a
// child re-parses nothing of the parent's unless passed). Stdout and stderr
// are the parent's; the caller may redirect them before Start.
func Child(role string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	return cmd
}

// Validate checks a document against the BENCH.md contract: results present,
// each naming workload, system and repeat with at least one positive measure,
// Tapewire among the systems, every ratio a positive finite number.
func Validate(doc Document) error {
	var problems []string
	if doc.Bench == "" {
		problems = append(problems, "missing bench name")
	}
	if len(doc.Results) == 0 {
		problems = append(problems, "no results")
	}
	ours := false
	for i, r := range doc.Results {
		if r.Workload == "" || r.System == "" {
			problems = append(problems, fmt.Sprintf("results[%d] lacks workload or system", i))
		}
		if r.OpsPerSec <= 0 && r.BytesPerSec <= 0 && r.P50Ns <= 0 {
			problems = append(problems, fmt.Sprintf("results[%d] (%s/%s) has no positive ops_per_sec, bytes_per_sec or p50_ns", i, r.Workload, r.System))
		}
		ours = ours || r.System == Ours
	}
	if !ours {
		problems = append(problems, "no result with system \"tapewire\"")
	}
	for i, r := range doc.Ratios {
		if !(r.MedianRatio > 0) || r.MedianRatio > 1e300 {
			problems = append(problems, fmt.Sprintf("ratios[%d] median_ratio is not a positive finite number: %v", i, r.MedianRatio))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}
