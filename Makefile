# sagabridge — `make help` lists the targets.
GO        ?= go
PKGS      ?= ./...
BIN       := bin/sagabridge
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
# The Go that go.mod names; an older go command fetches it through the
# module proxy on first use. Pinned exactly: go1.26.8 has standard-library
# advisories this release fixes.
GOTOOLCHAIN ?= go1.27.3
export GOTOOLCHAIN

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/sagabridge (static, no cgo)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/sagabridge

.PHONY: run
run: ## Run the OrderSaga demo (embedded NATS, engine, simulated services), then serve the console until Ctrl-C
	$(GO) run ./cmd/sagabridge dev --data data/dev --linger

.PHONY: test
test: lint vulncheck fuzz dapr ## Lint, known vulnerabilities, fuzz briefly, then every test with the race detector
	$(GO) test -race -count=1 -timeout 45m $(PKGS)

.PHONY: test-dapr-replica-kill
test-dapr-replica-kill: dapr ## A replica's daprd SIGKILLed mid-run (loses a few sagas on daprd 1.16.0: deploy/dapr/README.md)
	SAGABRIDGE_TEST_REPLICA_KILL=1 $(GO) test -race -count=1 -timeout 30m -run '^TestDaprReplicaKilled$$' -v ./bridge

.PHONY: test-dapr-pause
test-dapr-pause: dapr ## daprd SIGSTOPped for 15 s under load (erratic on daprd 1.16.0: docs/failure-modes.md)
	SAGABRIDGE_TEST_DAPR_PAUSE=1 $(GO) test -race -count=1 -timeout 30m -run '^TestEngineUnavailable$$/^dapr-paused$$' -v ./cmd/sagabridge

FUZZTIME ?= 10s
.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 10s)
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./bridge/envelope
	$(GO) test -run '^$$' -fuzz '^FuzzRoute$$' -fuzztime $(FUZZTIME) ./bridge/route

.PHONY: test-short
test-short: ## Tests without the process-killing ones, no race detector
	$(GO) test -short -count=1 $(PKGS)

.PHONY: test-race
test-race: ## Tests with the race detector
	$(GO) test -race -count=1 $(PKGS)

.PHONY: screenshots
screenshots: ## Write docs/console/*.png: the console in headless Chromium (TestConsole)
	$(GO) test -count=1 -run '^TestConsole$$' ./cmd/sagabridge -args -console-screenshots $(CURDIR)/docs/console

.PHONY: schema
schema: ## Write docs/schema/*.schema.json and docs/configuration.md from the config types
	$(GO) run ./internal/confspec/gen

.PHONY: lint
# go mod tidy -diff prints what tidy would change and fails, changing
# nothing. bench/peers is a module of its own whose check would fetch
# Temporal and DBOS; tidy it by hand when its imports change.
lint: ## gofmt, go mod tidy (checked, not applied), go vet, the workflow determinism check; prints the house figures
	@fmt_out="$$(gofmt -l $$(git ls-files '*.go' | grep -v testdata))"; \
	  if [ -n "$$fmt_out" ]; then echo "gofmt needed:"; echo "$$fmt_out"; exit 1; fi
	@$(GO) mod tidy -diff || { echo "go.mod or go.sum is not tidy: run go mod tidy"; exit 1; }
	$(GO) vet $(PKGS)
	$(GO) run ./cmd/sagabridge vet ./sagas/... ./bridge/...
	@$(GO) run ./internal/housecheck

.PHONY: house
house: ## Print the layout's figures: lines per folder, functions over 80 lines, bridge's adapter imports
	$(GO) run ./internal/housecheck

# Known vulnerabilities: govulncheck against a database built from
# golang.org/x/vulndb at VULNDB_VERSION, which the Go module proxy serves
# (built once per version into .cache/vulndb/). To take newer advisories,
# set VULNDB_VERSION to the version `go list -m golang.org/x/vulndb@latest`
# prints (run outside the module). Reachable advisories fail unless
# .vulncheck-allow.yaml lists them with a reason and a revisit date.
VULNDB_VERSION ?= v0.0.0-20261105234957-e22db6528018
GOVULNCHECK    ?= golang.org/x/vuln/cmd/govulncheck@v1.9.0
.PHONY: vulncheck
vulncheck: ## Known vulnerabilities the code calls, against .vulncheck-allow.yaml (offline database, pinned)
	$(GO) run ./internal/vulncheck -vulndb $(VULNDB_VERSION) -govulncheck $(GOVULNCHECK) -allow .vulncheck-allow.yaml $(PKGS)

.PHONY: deps-report
deps-report: ## Direct dependencies with the version in use and the newest the module proxy serves
	$(GO) run ./internal/depsreport

.PHONY: bench
bench: dapr ## Benchmarks, printing figures (broker adapters vs raw clients, routing, sagas/s embedded and on daprd)
	$(GO) test -run '^$$' -bench '^BenchmarkConsume$$' -benchtime 20000x -count 1 ./topics/natsjs ./topics/kafka
	$(GO) test -run '^$$' -bench '^BenchmarkRoute100$$' -benchtime 2s -count 1 ./bridge/route
	$(GO) run ./cmd/sagabridge bench --brokers nats,kafka --concurrency 1,8,32,128 --sagas 2000 \
	  --parked 10000 --data data/bench --out docs/bench --commit $$(git rev-parse --short HEAD)
	$(GO) run ./cmd/sagabridge bench --broker-process --brokers nats,kafka --concurrency 1,8,32,128 --sagas 2000 \
	  --parked 0 --data data/bench
	$(GO) test -run '^$$' -bench '^BenchmarkSagasDapr$$' -benchtime 1x -count 1 ./cmd/sagabridge/internal/benchmark

.PHONY: bench-long
bench-long: ## A million sagas through the embedded engine, retention 1m (throughput, database, instances kept, RSS per 100k), restart, 100k parked: docs/bench/long.json and long.svg (long; not in make test)
	$(GO) run ./cmd/sagabridge bench long --sagas 1000000 --window 100000 --concurrency 128 --parked 100000 \
	  --retention 1m --data data/bench-long --out docs/bench --commit $$(git rev-parse --short HEAD)

# The harness is a module of its own (bench/peers): Temporal's server and
# DBOS stay out of the product's go.mod. The first run builds Temporal's
# server (several CPU-minutes). PEERS_FLAGS adds flags, e.g. --sagas 100.
PEERS_FLAGS ?=
.PHONY: bench-peers
bench-peers: ## The same saga on sagabridge (embedded and on daprd, from bin/: make dapr), Temporal and DBOS in one run: table, docs/bench/peers.json and peers.svg
	cd bench/peers && $(GO) run . --repo ../.. --out ../../docs/bench --commit $$(git rev-parse --short HEAD) $(PEERS_FLAGS)

# Replicas on daprd: worker processes with a daprd each, sharing app ID,
# placement, scheduler, PostgreSQL and the consumer group. Built with -tags
# scale, so `go test ./...` leaves them out. Without -race: up to four
# worker and daprd pairs share the cores, and the code they run is raced
# in `make test`. On daprd 1.16.0 it loses a few sagas a run to daprd
# (docs/sizing.md, deploy/dapr/README.md), so CI does not run it yet.
.PHONY: test-scale
test-scale: dapr ## Elastic replicas on daprd: 1→4→1 worker+daprd pairs, one killed, under load, on NATS and Kafka (fails on daprd 1.16.0: docs/sizing.md)
	$(GO) vet -tags scale ./cmd/sagabridge
	$(GO) test -tags scale -count=1 -timeout 30m -run '^TestElasticReplicas$$' -v ./cmd/sagabridge

# SCALE_SAGAS sets the sagas per run (default 400).
.PHONY: bench-scale
bench-scale: dapr ## Sagas/s, CPU per saga and PostgreSQL writes with 1, 2 and 4 replicas on daprd (not in make test)
	$(GO) test -tags scale -count=1 -timeout 30m -run '^$$' -bench '^BenchmarkScaleOut$$' -benchtime 1x ./cmd/sagabridge

.PHONY: dapr
dapr: ## Build daprd, placement and scheduler (Dapr v1.16.0) into bin/ for the tests on real sidecars
	GO=$(GO) ./internal/daprtest/build-dapr.sh

.PHONY: clean
clean: ## Remove build output and local data
	rm -rf bin data
