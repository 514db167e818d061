# sessiongate: `make run` starts the example (memory store, dev provider,
# no network); `make test` runs vet, the race-enabled tests and a short
# fuzz of every untrusted-input parser.
GO ?= go
FUZZTIME ?= 3s

.PHONY: run test vet fuzz fuzz-short bench

run:
	$(GO) run ./examples/chi-app

test: vet
	$(GO) test -race -count=1 ./...
	$(MAKE) --no-print-directory fuzz-short

vet:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

# Every Fuzz target, each for FUZZTIME (make fuzz FUZZTIME=5m for longer).
fuzz-short:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for target in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); do \
	    echo "fuzz $$pkg $$target ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg >/dev/null || { $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg; exit 1; }; \
	  done; \
	done

fuzz:
	$(MAKE) fuzz-short FUZZTIME=2m

# Benchmarks (not part of make test): listing one user's sessions with 100
# and 100,000 other users' sessions in Redis.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
