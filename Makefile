# clade-gateway. `make run` starts the gateway with the sample policy and the
# embedded store; `make test` runs every test (installing redis-server and
# promtool first when they are missing and we are root).

GO        ?= go
BIN       := bin/clade-gateway
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/clade-gateway/clade-gateway/internal/app.Version=$(VERSION)
FUZZTIME  ?= 100000x

.PHONY: build run test test-short deps fuzz lint reliability bench bench-micro docker clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="$(LDFLAGS)" -o $(BIN) ./cmd/clade-gateway

run: build
	CLADE_CONFIG=$${CLADE_CONFIG:-deploy/clade.yaml} ANTHROPIC_API_KEY=$${ANTHROPIC_API_KEY:-sk-ant-replace-me} \
	CLADE_LOG_FORMAT=$${CLADE_LOG_FORMAT:-console} ./$(BIN)

# Everything: unit, integration (real Redis, real Redis Cluster), end-to-end
# with the official Go SDK, reliability, promtool rule tests, the metrics
# scale test (without -race, see internal/e2e/metrics_scale_test.go), and a
# short run of every fuzz target.
test: deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...
	$(GO) test -count=1 -run 'TestMetricsAtScale' ./internal/e2e/
	$(MAKE) fuzz FUZZTIME=$(FUZZTIME)

test-short:
	$(GO) test -count=1 ./...

deps:
	@./scripts/deps.sh

fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

reliability: deps
	$(GO) test -count=1 -v -run 'TestReliability' ./internal/reliability/

lint:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

bench: deps
	$(GO) run ./bench/cmd/clade-bench $(BENCHFLAGS)

bench-micro: deps
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...

docker:
	docker build -t clade-gateway:$(VERSION) .

clean:
	rm -rf bin data
