# mcp-guard: build, demo, test, bench.
GO      ?= go
BIN     := bin/mcp-guard
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/mcp-guard/mcp-guard/app.Version=$(VERSION)

.PHONY: all build deps demo test test-short vet fmt fuzz bench clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/mcp-guard

# deps installs what building and testing need (PostgreSQL server binaries,
# a C compiler, the Node packages of the interop client); quick when present.
deps:
	bash scripts/install-deps.sh

# demo starts a throwaway PostgreSQL with the shop data and serves the
# example configuration over HTTP on loopback.
demo: deps build
	bash scripts/demo.sh

# test runs everything: vet, the unit tests, the Rego tests, the fuzz seed
# corpora, and the end-to-end tests against the real binary.
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

test-short:
	$(GO) test -count=1 -short ./...

fmt:
	gofmt -l -w .

# fuzz runs each fuzz target for FUZZTIME (default 1m).
FUZZTIME ?= 1m
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzAnalyze -fuzztime=$(FUZZTIME) ./sqlfacts
	$(GO) test -run='^$$' -fuzz=FuzzAnalyze -fuzztime=$(FUZZTIME) ./shellfacts
	$(GO) test -run='^$$' -fuzz=FuzzResolve -fuzztime=$(FUZZTIME) ./tools
	$(GO) test -run='^$$' -fuzz=FuzzCheckJSON -fuzztime=$(FUZZTIME) ./identity

bench: deps
	bash scripts/bench.sh

clean:
	rm -rf bin
