# The documented interface of this repository. `make help` lists the targets.
GO      ?= go
BIN     := bin/reconciler
PROXY   := bin/reconciler-nameproxy
AWS     := bin/reconciler-aws
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: help build test test-short lint fmt vet fuzz bench demo deps clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-11s %s\n", $$1, $$2}'

build: ## build bin/reconciler and, beside it, the name proxy (bin/reconciler-nameproxy) and the AWS helper (bin/reconciler-aws)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN) ./cmd/reconciler
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(PROXY) ./cmd/nameproxy
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(AWS) ./cmd/reconciler-aws

deps: ## install what the tests need on Debian (nginx, wrk, git, docker-registry, postgresql, redis-server, ...) when missing
	@./scripts/deps.sh

test: deps ## run every test, with the race detector, against the real Docker engine, nginx and git
	$(GO) test -race -count=1 -timeout 18m ./...

test-short: ## unit tests only (no engine needed)
	$(GO) test -count=1 -short ./state/... ./reconciler/ ./templates/ ./internal/doclinks/

lint: fmt vet ## gofmt and go vet

fmt: ## fail when gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet: ## go vet
	$(GO) vet ./...

FUZZTIME ?= 60s
fuzz: ## run each fuzz target for FUZZTIME (default 60s)
	$(GO) test -run='^$$' -fuzz='^FuzzLoad$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=10s ./state/
	$(GO) test -run='^$$' -fuzz='^FuzzFieldParsers$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=10s ./state/
	$(GO) test -run='^$$' -fuzz='^FuzzSiteHeader$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=10s ./templates/
	$(GO) test -run='^$$' -fuzz='^FuzzVerifySignature$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=10s ./reconciler/agent/
	$(GO) test -run='^$$' -fuzz='^FuzzRead$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=10s ./reconciler/history/
	$(GO) test -run='^$$' -fuzz='^FuzzRedact$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=10s ./state/gitrepo/
	$(GO) test -run='^$$' -fuzz='^FuzzPayload$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=10s ./reconciler/notify/

bench: deps build ## benchmarks, with the ratios to docker compose v2 (built once into GOPATH/bin); prints the figures for docs/BENCHMARKS.md (also bench/results.md)
	./bench/compose-v2.sh
	./bench/run.sh

demo: deps build ## the demo: deploy, upgrade under load, revert (cleans up after itself)
	./demo/demo.sh

clean: ## remove build output
	rm -rf bin
