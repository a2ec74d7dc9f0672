# clade-gateway. `make demo` tries the gateway without an Anthropic key;
# `make run` starts it with the sample policy and the embedded store;
# `make test` runs every test (installing redis-server and promtool first
# when they are missing and we are root). `make help` lists the targets.

GO        ?= go
BIN       := bin/clade-gateway
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/clade-gateway/clade-gateway/internal/app.Version=$(VERSION)
FUZZTIME  ?= 100000x
# The linter make lint runs (.golangci.yml); scripts/deps.sh installs it.
GOLANGCI_VERSION := v2.15.0
GOLANGCI  := $(shell $(GO) env GOPATH)/bin/golangci-lint
# The tag deploy/compose/compose.yaml and deploy/kubernetes/base expect.
IMAGE     ?= clade-gateway
IMAGE_TAG ?= dev

.DEFAULT_GOAL := build
.PHONY: help build demo run test test-short deps fuzz lint reliability bench bench-micro docker clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/clade-gateway
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="$(LDFLAGS)" -o $(BIN) ./cmd/clade-gateway

demo: build ## try it without an Anthropic key: sample policy, built-in fake Anthropic API, loopback
	./$(BIN) demo

# The workspace key comes from ANTHROPIC_API_KEY (the sample policy names
# it); the gateway refuses to start when it is unset or a placeholder.
run: build ## serve with the sample policy, the embedded store and ANTHROPIC_API_KEY, on loopback
	@CLADE_CONFIG=$${CLADE_CONFIG:-deploy/clade.yaml} CLADE_LOG_FORMAT=$${CLADE_LOG_FORMAT:-console} ./$(BIN) serve \
	|| { st=$$?; [ -n "$$ANTHROPIC_API_KEY" ] || echo "make run: no workspace key at hand? 'make demo' runs the gateway against a built-in fake Anthropic API." >&2; exit $$st; }

# Everything: unit, integration (real Redis, real Redis Cluster), end-to-end
# with the official Go SDK, reliability, promtool rule tests, the metrics
# scale test (without -race, see internal/e2e/metrics_scale_test.go), and a
# short run of every fuzz target.
test: deps lint ## every test: unit, real Redis and Redis Cluster, SDK end to end, reliability, alert rules, metrics scale, fuzz
	$(GO) test -race -count=1 -timeout 20m ./...
	$(GO) test -count=1 -run 'TestMetricsAtScale' ./internal/e2e/
	$(MAKE) fuzz FUZZTIME=$(FUZZTIME)

test-short: ## the Go tests without -race, vet or fuzz
	$(GO) test -count=1 ./...

deps: ## install redis-server and promtool (as root) and golangci-lint when missing
	@GOLANGCI_VERSION=$(GOLANGCI_VERSION) ./scripts/deps.sh

fuzz: ## a short run of every fuzz target (FUZZTIME)
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

reliability: deps ## the reliability suite, verbose
	$(GO) test -count=1 -v -run 'TestReliability' ./internal/reliability/

lint: ## golangci-lint (.golangci.yml: vet, staticcheck, errcheck, gofmt, ...) and go.mod/go.sum tidy
	$(GOLANGCI) run ./...
	@$(GO) mod tidy -diff || (echo "go.mod/go.sum are not tidy: run go mod tidy" >&2; exit 1)

bench: deps ## the load benchmark (bench/README.md)
	$(GO) run ./bench/cmd/clade-bench $(BENCHFLAGS)

bench-micro: deps ## the Go micro-benchmarks
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...

docker: ## the container image, tagged clade-gateway:dev (what compose and kustomize use) and clade-gateway:<version>
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE):$(IMAGE_TAG) -t $(IMAGE):$(VERSION) .

clean: ## remove bin/ and data/
	rm -rf bin data
