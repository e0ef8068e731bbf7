// Command benchcheck validates a benchmark program's -json document against
// the BENCH.md contract, for machines where ../shared/tools/bench-json-check
// is not present. Usage: benchcheck FILE...
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/tapewire/tapewire/bench/internal/harness"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchcheck FILE...")
		os.Exit(2)
	}
	status := 0
	for _, path := range os.Args[1:] {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			status = 1
			continue
		}
		var doc harness.Document
		if err := json.Unmarshal(data, &doc); err != nil {
			fmt.Fprintf(os.Stderr, "%s: not a benchmark document: %v\n", path, err)
			status = 1
			continue
		}
		if err := harness.Validate(doc); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			status = 1
			continue
		}
		fmt.Printf("%s: %s: %d results, %d ratios\n", path, doc.Bench, len(doc.Results), len(doc.Ratios))
	}
	os.Exit(status)
}
