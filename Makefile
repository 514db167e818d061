# sessiongate: `make run` starts the example (memory store, dev provider,
# no network); `make test` runs vet, a short fuzz of every untrusted-input
# parser and the race-enabled tests, whole: it needs redis-server (and
# installs it when it can), unless SKIP_REDIS=1 says to skip the Redis
# tests. vet, fuzz, test and bench cover both modules of MODULES.
GO ?= go
# bash with pipefail: a recipe that filters go test's output still fails
# when the tests do.
SHELL := bash
.SHELLFLAGS := -o pipefail -c
# An execution count, not a duration: with a duration, Go 1.26's fuzz
# coordinator can report "context deadline exceeded" as a failure when the
# deadline races an in-flight input (golang/go#75804, fixed in Go 1.27).
FUZZTIME ?= 10000x

# The modules, each a directory: the library at the root, the example
# app, a module of its own (its go.mod replaces the library with ../..) so
# that the library's users do not inherit the example's dependencies, and
# the OpenTelemetry adapter (otelsessiongate: OTel's API only; its tests
# with the SDK are the example's, whose go.mod may require it).
MODULES := . examples/chi-app otelsessiongate

.PHONY: run test vet redis-server fuzz fuzz-short bench e2e load

run:
	$(GO) -C examples/chi-app run .

# SKIP_REDIS=1 skips every test that needs Redis (store/storetest reads it);
# the summary at the end lists each skipped test with its reason.
SKIP_REDIS ?=
# The values Go's strconv.ParseBool reads as true, as storetest does.
skip_redis := $(filter 1 t T TRUE true True,$(SKIP_REDIS))

# Tests that -race would falsify (it allocates on its own), run once more
# without it: the allocation counts of a steady request, and of a steady
# store read.
norace_tests := ^(TestSteadyStateAllocations|TestSteadyLookupAllocations)$$

# The tests of every module as one go test -json stream, summarised by
# .ci/testsummary: a line per package, the output of what failed, then
# "skipped: PKG TEST (reason)" for every skipped test and a last line
# "N passed, N failed, N skipped" for all the modules together. Every
# module is tested even when one fails.
test: vet redis-server fuzz-short
	(status=0; for m in $(MODULES); do \
	  SKIP_REDIS=$(skip_redis) $(GO) -C $$m test -race -count=1 -json ./... || status=1; \
	done; \
	$(GO) test -count=1 -json -run '$(norace_tests)' ./middleware/ ./store/redisstore/ || status=1; \
	exit $$status) | $(GO) run ./.ci/testsummary

# gofmt over the whole tree, go vet in each module (./... stops at a
# nested module's go.mod, and skips .ci, which is named).
vet:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	@set -e; for m in $(MODULES); do echo "$(GO) -C $$m vet ./..."; $(GO) -C $$m vet ./...; done
	$(GO) vet ./.ci/testsummary

# redis-server must be on PATH for make test: as root with apt-get, it is
# installed (and said so); otherwise make test stops and says what to do.
redis-server:
	@if [ -n "$(skip_redis)" ]; then \
	  echo "SKIP_REDIS=$(SKIP_REDIS): the tests that need Redis will be skipped"; \
	elif command -v redis-server >/dev/null; then \
	  :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "redis-server is not installed: installing it (apt-get update; apt-get install redis-server)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null; \
	  command -v redis-server >/dev/null; \
	else \
	  echo "make test: redis-server is not installed and cannot be installed here (needs root and apt-get)." >&2; \
	  echo "Install it (sudo apt-get install redis-server), or skip the Redis tests: make test SKIP_REDIS=1" >&2; \
	  exit 1; \
	fi

# Every Fuzz target of every module, each for FUZZTIME inputs (make fuzz
# for longer). A failure prints that run's own output, with the failing
# input's path.
fuzz-short:
	@set -e; log=$$(mktemp); trap 'rm -f $$log' EXIT; \
	for m in $(MODULES); do \
	  for pkg in $$($(GO) -C $$m list ./...); do \
	    dir=$$($(GO) -C $$m list -f '{{.Dir}}' $$pkg); \
	    for target in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); do \
	      echo "fuzz $$pkg $$target ($(FUZZTIME))"; \
	      $(GO) -C $$m test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg >$$log 2>&1 || { cat $$log; exit 1; }; \
	    done; \
	  done; \
	done

fuzz:
	$(MAKE) fuzz-short FUZZTIME=1000000x

# The demo page in a real headless Chromium: two devices of one user, one
# signs the other out. Fails without chromium (apt-get install chromium).
# Screenshots of each step go to e2e-screenshots/.
e2e:
	SESSIONGATE_E2E=1 E2E_SCREENSHOTS=$(CURDIR)/e2e-screenshots $(GO) -C examples/chi-app test -count=1 -run '^TestBrowser' -v .

# The fault runs of make test, with their figures printed: Redis killed
# under load, and a minute of mixed clients through a Redis restart and an
# upstream outage (LOAD_DURATION to change it). Needs redis-server.
LOAD_DURATION ?= 1m
load:
	SESSIONGATE_LOAD_DURATION=$(LOAD_DURATION) CI=true $(GO) test -count=1 -run '^(TestLoadRunWithFaults|TestRedisRestartUnderLoad)$$' -v ./middleware/ | grep -e '^---' -e 'faults_test' -e '^ok' -e FAIL

# The side-by-side performance tables of the README (not part of make
# test: it measures, it asserts nothing but that no request fails), then
# every Go benchmark of every module. Needs redis-server on PATH. Each
# scenario is measured in process, then over loopback paired with its
# anchor (BENCH_ROUNDS rounds, each taking turns with the anchor in four
# slices of BENCH_DURATION/4), at each of BENCH_CLIENTS concurrent clients
# (the memory group at the first only). The defaults take about ten
# minutes on 2 cores, the Go benchmarks included.
BENCH_DURATION ?= 1s
BENCH_ROUNDS ?= 3
BENCH_CLIENTS ?= 32,64,256
bench:
	SESSIONGATE_BENCH=1 SESSIONGATE_BENCH_DURATION=$(BENCH_DURATION) SESSIONGATE_BENCH_ROUNDS=$(BENCH_ROUNDS) \
	  SESSIONGATE_BENCH_CLIENTS=$(BENCH_CLIENTS) CI=true \
	  $(GO) test -count=1 -timeout 60m -run '^TestPerformanceTable$$' -v ./middleware/ | grep -v -e '^=== RUN' -e '^ *--- PASS' -e '^PASS' -e '^ok'
	SESSIONGATE_BENCH=1 CI=true $(GO) test -count=1 -run '^TestNearCacheStaleness$$' -v ./store/redisstore/ | grep -v -e '^=== RUN' -e '^ *--- PASS' -e '^PASS' -e '^ok'
	@set -e; for m in $(MODULES); do echo "$(GO) -C $$m test -bench . ./..."; CI=true $(GO) -C $$m test -run '^$$' -bench . -benchmem ./...; done
