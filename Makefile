# kubectl falco-phantom: Falco alerts -> NATS -> forwarder -> Splunk SOAR.
# Run `make help` for the targets, section by section.

SHELL := /usr/bin/env bash
GO ?= go
MODULE := github.com/falco-phantom/kubectl-falco-phantom
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X $(MODULE)/pkg/version.Version=$(VERSION)
BIN := bin
# Packages whose tests take long or need more than Go (see docs/development.md).
TEST_FLAGS ?= -race -count=1 -timeout 30m
FUZZ_TIME ?= 30s

.DEFAULT_GOAL := help

##@ Try it

# The demo is a small binary of its own (no Helm, client-go or kind), built
# with the flags of `make build`, so that the two share what they compile.
# go build -v names each package it compiles: the progress shown.
DEMO_FLAGS ?=

.PHONY: demo
demo: ## Run the whole pipeline on this machine (embedded NATS, forwarder, mock SOAR); the first build takes about 2 minutes. DEMO_FLAGS="--serve" keeps it running.
	@echo "building the demo (the first time about 2 min on 2 cores: NATS, SQLite and the forwarder; then seconds)"
	@set -o pipefail; CGO_ENABLED=0 $(GO) build -v -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/falco-phantom-demo 2>&1 | \
		awk -v start=$$(date +%s) '/^#|: |^go: /{print; next} {n++; printf "\r  compiled %d packages [%ds] %-60.60s", n, systime()-start, $$0} END {if (n) printf "\n"}'
	@$(BIN)/falco-phantom-demo $(DEMO_FLAGS)

##@ Build

.PHONY: build
build: ## Build the plugin, its completion helper, the forwarder, the responder, the mock SOAR and the demo into bin/.
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ \
		./cmd/kubectl-falco_phantom ./cmd/kubectl_complete-falco_phantom \
		./cmd/falco-phantom-forwarder ./cmd/falco-phantom-responder ./mockphantom/cmd/mockphantom ./cmd/falco-phantom-demo

.PHONY: images
images: ## Build the forwarder, responder and mock SOAR images without Docker into bin/images.tar (build/images).
	$(GO) run ./build/images -o $(BIN)/images.tar --tag $(VERSION)

DIST_PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64

.PHONY: dist
dist: ## Build the plugin's release archives and the krew manifest into bin/dist (build/krew).
	rm -rf $(BIN)/dist && mkdir -p $(BIN)/dist
	@for p in $(DIST_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; d=$(BIN)/dist/$$os-$$arch; mkdir -p $$d; \
		echo "building $$os/$$arch"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $$d/ \
			./cmd/kubectl-falco_phantom ./cmd/kubectl_complete-falco_phantom || exit 1; \
		cp LICENSE $$d/; \
		tar -C $$d --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -czf $(BIN)/dist/kubectl-falco_phantom_$${os}_$${arch}.tar.gz . || exit 1; \
	done
	$(GO) run ./build/krew --version $(VERSION) --dir $(BIN)/dist > $(BIN)/dist/falco-phantom.yaml
	@echo "krew manifest: $(BIN)/dist/falco-phantom.yaml"

.PHONY: tools
tools: ## Build the Kubernetes node binaries, etcd and CoreDNS for the tests (see build/tools/README.md).
	bash build/tools/build.sh

##@ Test

# The API server tests need kube-apiserver and etcd, built from the Go module
# proxy by build/tools/build.sh (minutes the first time, then cached). The
# end-to-end suite runs on a real one-node cluster (the hostlab) with the
# upstream charts, falcosidekick and Falco of ../shared/upstream, and needs
# root and a few Debian packages: without them it skips and says why, unless
# FALCO_PHANTOM_REQUIRE_HOSTLAB=1 (CI) makes it fail.
.PHONY: test
test: ## Run every test CI runs: unit and API server tests, then the end-to-end suite.
	@assets=$$(bash build/tools/build.sh kube-apiserver etcd) && \
	KUBEBUILDER_ASSETS=$$assets FALCO_PHANTOM_REQUIRE_ENVTEST=1 $(GO) test $(TEST_FLAGS) ./...
	@$(MAKE) --no-print-directory e2e

.PHONY: test-short
test-short: ## Run the quick tests only.
	$(GO) test -short -count=1 ./...

E2E_FLAGS ?= -count=1 -timeout 30m

# The Kubernetes node binaries are built only where the suite can run (root).
.PHONY: e2e
e2e: ## Run the end-to-end suite (test/e2e) on a fresh hostlab (root; see docs/development.md).
	@if [ "$$(id -u)" = 0 ]; then tools=$$(bash build/tools/build.sh) || exit 1; else tools=; fi; \
	echo "== e2e: go test -tags e2e ./test/e2e (a real one-node cluster on this machine)"; \
	FALCO_PHANTOM_TOOLS_DIR=$$tools $(GO) test -tags e2e -v $(E2E_FLAGS) ./test/e2e

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZ_TIME (default 30s).
	$(GO) test ./pkg/falco -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZ_TIME)
	$(GO) test ./pkg/falco -run '^$$' -fuzz '^FuzzSubject$$' -fuzztime $(FUZZ_TIME)
	$(GO) test ./pkg/forwarder -run '^$$' -fuzz '^FuzzArtifact$$' -fuzztime $(FUZZ_TIME)
	$(GO) test ./pkg/phantom -run '^$$' -fuzz '^FuzzAppendString$$' -fuzztime $(FUZZ_TIME)
	$(GO) test ./mockphantom -run '^$$' -fuzz '^FuzzDecodeArtifactIn$$' -fuzztime $(FUZZ_TIME)

.PHONY: lint
lint: ## Check formatting and vet the code.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff

##@ Lab (kind): the real Falco on a kind cluster, on a Linux machine with Docker

.PHONY: lab
lab: ## Create (or reuse) a kind cluster, install everything with the mock SOAR, run test-shell.
	$(GO) run ./lab/cmd/lab up

.PHONY: lab-down
lab-down: ## Delete the kind lab cluster.
	$(GO) run ./lab/cmd/lab down

##@ Lab (hostlab): a real one-node Kubernetes on this machine, as root

.PHONY: hostlab-up
hostlab-up: ## Start the hostlab with this checkout's images (and ../shared/upstream's), and print how to install.
	@tools=$$(bash build/tools/build.sh) && $(GO) build -o $(BIN)/hostlab ./lab/cmd/hostlab && \
	$(BIN)/hostlab up --tools "$$tools" --lab-images --tag $(VERSION)

.PHONY: hostlab-down
hostlab-down: ## Stop the hostlab and remove everything it created (also after a crash).
	@$(GO) build -o $(BIN)/hostlab ./lab/cmd/hostlab && $(BIN)/hostlab down

##@ Benchmarks

.PHONY: bench
bench: ## Run the micro-benchmarks and the end-to-end harness (bench/: forwarder vs a 2018-style baseline, SOAR 0/20 ms x 10/1000 incidents); gates nothing. Smaller: BENCH_FLAGS="--events 2000 --baseline-events 200 --baseline-duration 3s --duration 3s".
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./bench $(BENCH_FLAGS)

##@ Housekeeping

# help prints each "##@ Section" line as a heading and each "target: ## text"
# line below it, in the order of this file.
.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^##@ / {printf "\n%s\n", substr($$0, 5); next} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: clean
clean: ## Remove build output.
	rm -rf $(BIN)
