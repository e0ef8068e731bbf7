#!/usr/bin/env bash
# Runs every Go fuzz target in the module (and in bench/) for a short time.
# Usage: scripts/fuzz-smoke.sh [fuzztime]   (default 5s; any `go test -fuzztime` value)
# Targets are discovered, so a new FuzzXxx is smoked without touching this script.
set -euo pipefail
fuzztime=${1:-5s}
cd "$(dirname "$0")/.."
found=0
while IFS= read -r file; do
	dir=$(dirname "$file")
	for name in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)\(' "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/'); do
		found=$((found + 1))
		echo "fuzz smoke: $dir $name ($fuzztime)"
		go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" "./$dir"
	done
done < <(grep -rlE '^func Fuzz[A-Za-z0-9_]+\(' --include='*_test.go' . | grep -v '^./bench/' | sed 's|^\./||' | sort)
echo "fuzz smoke: $found targets, $fuzztime each"
