# Tapewire build entry points. `make test` is the command README.md and CI run.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 5s
TEST_TIMEOUT ?= 15m

.PHONY: test vet staticcheck unit allocs fuzz-smoke bench-test bench-smoke bench benchmarks-md gen gen-check build

## test: everything CI checks — vet, staticcheck, race tests, fuzz smoke, bench module tests, bench smoke
test: build vet staticcheck unit allocs fuzz-smoke bench-test bench-smoke

build:
	$(GO) build ./...
	cd bench && $(GO) build ./...

vet:
	$(GO) vet ./...
	cd bench && $(GO) vet ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...
	cd bench && $(GO) run $(STATICCHECK) ./...

## unit: the quick tests under the race detector (long variants need TAPEWIRE_LONG=1)
unit:
	$(GO) test -race -timeout $(TEST_TIMEOUT) ./...

## allocs: the allocation guards (Test*Alloc*) without the race detector, which
## allocates on its own: the appliance's and the LSM's guards skip under -race
allocs:
	$(GO) test -count=1 -run 'Alloc' ./...
	cd bench && $(GO) test -count=1 -run 'Alloc' ./...

## fuzz-smoke: every FuzzXxx target for $(FUZZTIME)
fuzz-smoke:
	scripts/fuzz-smoke.sh $(FUZZTIME)

## bench-test: tests of the bench module (harness, differential tests against peers)
bench-test:
	cd bench && $(GO) test -race -timeout $(TEST_TIMEOUT) ./...

## bench-smoke: every benchmark program with -quick, JSON checked against BENCH.md
bench-smoke:
	scripts/bench-smoke.sh

## bench: the full benchmark runs quoted in BENCHMARKS.md (JSON under bench/out/)
bench:
	mkdir -p bench/out
	cd bench && for d in cmd/*/; do n=$$(basename $$d); \
		$(GO) run ./$$d -json out/$$n.json | tee out/$$n.txt || exit 1; done

## benchmarks-md: assemble BENCHMARKS.md from bench/results/*.md
benchmarks-md:
	scripts/benchmarks-md.sh

## gen: regenerate generated code (flatbuffers, via go:generate; needs Debian's flatc 2.0.8) and BENCHMARKS.md
gen: benchmarks-md
	$(GO) generate ./...

## gen-check: fail if regenerating changes anything committed
gen-check: gen
	@git diff --exit-code -- . || { echo "generated code differs from what is committed: run make gen and commit"; exit 1; }
	@untracked=$$(git ls-files --others --exclude-standard -- schema); \
		if [ -n "$$untracked" ]; then echo "make gen created uncommitted files: $$untracked"; exit 1; fi
