# mirrord: the two commands are `make run` and `make test`.
export CGO_ENABLED ?= 0

.PHONY: run test build check fuzz bench faults help

run: ## run a single node on the built-in defaults (./mirrord-data, 127.0.0.1:8080)
	go run ./cmd/mirrord serve

test: ## run every test (what CI runs)
	go test ./...

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

help:
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'
