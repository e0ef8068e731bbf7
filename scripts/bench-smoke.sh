#!/usr/bin/env bash
# Runs every benchmark program in bench/cmd with -quick and checks its JSON
# document against the BENCH.md contract (../shared/tools/bench-json-check
# when the shared tools are present, else the harness's own structural check).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${BENCH_SMOKE_DIR:-$(mktemp -d)}
checker=$root/../shared/tools/bench-json-check
status=0
for dir in bench/cmd/*/; do
	name=$(basename "$dir")
	json=$out/$name.json
	echo "bench smoke: $name -quick"
	if ! (cd bench && go run "./cmd/$name" -quick -json "$json" >"$out/$name.txt"); then
		echo "bench smoke: $name failed to run; its output:" >&2
		cat "$out/$name.txt" >&2
		status=1
		continue
	fi
	if [ -x "$checker" ]; then
		"$checker" "$json" || status=1
	else
		(cd bench && go run ./internal/benchcheck "$json") || status=1
	fi
done
exit $status
