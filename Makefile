# mirrord: the two commands are `make run` and `make test`.
export CGO_ENABLED ?= 0

.PHONY: run test race tidy-check build check fuzz bench faults wan help

# The packages with goroutines and locks, run again under the race
# detector (it needs cgo). cmd/mirrord and tools/faults run real
# processes and take too long under -race. TestForwardLargeWrite moves
# one 40 MB raft entry: it is about sizes, not concurrency, and under the
# race detector on a busy 2-core machine it can outrun its 60 s deadline
# (go test ./... runs it without -race).
RACE_PKGS = ./consensus/... ./content/... ./node/... ./resolver/...
RACE_SKIP = ^TestForwardLargeWrite$$

run: ## run a single node on the built-in defaults (./mirrord-data, 127.0.0.1:8080)
	go run ./cmd/mirrord serve

test: ## run every test (what CI runs): go test, -race on the concurrent packages, go mod tidy check
	go test ./...
	$(MAKE) --no-print-directory race
	$(MAKE) --no-print-directory tidy-check

race: ## the concurrent packages under the race detector (needs gcc)
	CGO_ENABLED=1 go test -race -skip '$(RACE_SKIP)' $(RACE_PKGS)

tidy-check: ## fail when go.mod or go.sum differ from what go mod tidy writes
	@diff="$$(go mod tidy -diff)" || { \
	  echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit the result:"; \
	  echo "$$diff"; exit 1; }

build: ## build a static binary into ./bin/mirrord
	go build -trimpath -ldflags="-s -w" -o bin/mirrord ./cmd/mirrord

check: ## gofmt + vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	go vet ./...

fuzz: ## run each fuzz target for 20s
	@for pkg in $$(go list ./...); do \
	  for f in $$(go test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "$$pkg $$f"; go test -run '^$$' -fuzz "^$$f$$" -fuzztime 20s $$pkg || exit 1; \
	  done; done

bench: ## benchmarks of docs/BENCHMARKS.md
	go test -run '^$$' -bench . -benchtime 3s ./resolver/httpapi/

faults: ## the fault harness's long form (docs/reliability.md), about 10 minutes
	MIRRORD_FAULTS=long go test -v -timeout 60m -run TestFaults ./tools/faults/

wan: ## the WAN scenario of docs/wan.md (root; hub + 3 PoPs, 20 MB); pass flags with WAN_FLAGS="-pops 8 ..."
	go run ./tools/wan $(WAN_FLAGS)

help:
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'
