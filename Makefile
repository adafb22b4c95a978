# Wicket build. `make help` lists the targets.

GO          ?= go
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BUILD_TIME  ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
LDFLAGS     := -s -w -X main.version=$(VERSION) -X main.buildTime=$(BUILD_TIME)
GOFLAGS_REL := -trimpath -ldflags '$(LDFLAGS)'
BIN         := bin
# Cross-build list: GOOS/GOARCH[/GOARM].
PLATFORMS   := linux/arm/6 linux/arm/7 linux/arm64 linux/amd64
FUZZTIME    ?= 30s
QEMU_ARM    ?= qemu-arm-static
QEMU_ARM64  ?= qemu-aarch64-static
CRASH_CYCLES ?= 500
FLEET_GATES  ?= 500
FLEET_BROKER ?= mosquitto
FLEET_NATS_CONSUMERS ?= r1-memory
FLEET_TRUST_QOS ?= 1
TWIN_CUTS      ?= 3
TWIN_LONG_CUTS ?= 50

export CGO_ENABLED := 0

.PHONY: help build test test-race staticcheck test-arm demo cross fuzz lint bench bench-qr crash fleet-sim reliability deb deb-lint deb-test twin twin-long twin-camera clean

help:
	@echo "build      build wicketd and wicketctl into $(BIN)/"
	@echo "test       vet and run every test (the CI gate)"
	@echo "test-race  run every test with the race detector (needs gcc)"
	@echo "test-arm   run the tests for armv7 and arm64 under qemu-user"
	@echo "demo       run a gate on simulated hardware with sample vouchers"
	@echo "cross      static binaries for $(PLATFORMS) into dist/"
	@echo "fuzz       run every fuzz target for FUZZTIME (default $(FUZZTIME))"
	@echo "lint       gofmt and go vet"
	@echo "staticcheck  staticcheck over every package (pinned version, fetched on first use)"
	@echo "bench      run the benchmarks and rewrite the \"make bench:\" sections of docs/BENCHMARKS.md (the others stay)"
	@echo "bench-qr   QR decode rate and speed against zxing-cpp and zbar (photo corpus, fresh random vouchers), into docs/BENCHMARKS.md"
	@echo "crash      SIGKILL wicketd CRASH_CYCLES times mid-stream (default $(CRASH_CYCLES))"
	@echo "fleet-sim  FLEET_GATES gates on FLEET_BROKER (mosquitto or nats: a 3-node cluster) and a collector: override reach, records/s, broker kill, restart storm; FLEET_TRUST_QOS=0 for the gates' trust tree at QoS 0"
	@echo "deb        Debian packages wicket and wicket-authority for armhf, arm64, amd64 into dist/ (nfpm)"
	@echo "deb-lint   build the amd64 packages and check them with lintian"
	@echo "deb-test   install, upgrade, remove and purge the amd64 packages in a bookworm chroot, lintian (root)"
	@echo "twin       boot an emulated arm64 board (qemu, Debian kernel, systemd), install the .deb, test GPIO, watchdog, TWIN_CUTS power cuts (root)"
	@echo "twin-long  the twin on armhf (qemu-system-arm) and arm64, each with TWIN_LONG_CUTS power cuts (default $(TWIN_LONG_CUTS))"
	@echo "twin-camera the arm64 twin with a v4l2loopback camera instead of the UART scanner: codes to relay, decode rate, CPU per frame (root)"
	@echo "reliability hostile codes, fuzzing, power cuts, network, clock and device faults, security, soak"

build:
	$(GO) build $(GOFLAGS_REL) -o $(BIN)/ ./cmd/wicketd ./cmd/wicketctl

test: lint
	$(GO) test -count=1 ./...

test-race:
	CGO_ENABLED=1 $(GO) test -race -count=1 ./...

test-arm:
	QEMU_ARM=$(QEMU_ARM) QEMU_ARM64=$(QEMU_ARM64) ./scripts/test-arm.sh

demo: build
	./scripts/demo.sh $(BIN)

cross:
	@set -e; for p in $(PLATFORMS); do \
		os=$${p%%/*}; rest=$${p#*/}; arch=$${rest%%/*}; arm=$${rest#*/}; \
		[ "$$arm" = "$$rest" ] && arm=""; \
		out=dist/$$os-$$arch$${arm:+v$$arm}; \
		echo "build $$out"; \
		GOOS=$$os GOARCH=$$arch GOARM=$$arm $(GO) build $(GOFLAGS_REL) -o $$out/ ./cmd/wicketd ./cmd/wicketctl; \
	done

fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

# staticcheck, pinned; `go run` fetches it through the module proxy on
# first use without touching go.mod.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

staticcheck:
	$(GO) run $(STATICCHECK) ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench:
	./scripts/bench.sh

bench-qr:
	./scripts/qrbench.sh docs/qr-bench.md
	./scripts/splice-section.sh docs/BENCHMARKS.md docs/qr-bench.md

crash:
	WICKET_CRASH_CYCLES=$(CRASH_CYCLES) $(GO) test -count=1 -v -timeout 60m -run 'TestCrashCycles' ./cmd/wicketd/ | grep -E 'SIGKILL|^(ok|FAIL|---)'
	WICKET_CRASH_CYCLES=$(CRASH_CYCLES) $(GO) test -count=1 -v -timeout 60m -run 'TestCrash' ./sync/store/ | grep -E 'cycles|^(ok|FAIL|---)'

deb:
	VERSION=$(VERSION) BUILD_TIME=$(BUILD_TIME) ./scripts/deb.sh

# The amd64 packages only: the other architectures' differ in the binaries.
deb-lint:
	rm -rf dist/lint
	OUT=dist/lint VERSION=$(VERSION) BUILD_TIME=$(BUILD_TIME) ./scripts/deb.sh amd64
	lintian --fail-on error,warning dist/lint/*.deb

deb-test:
	./scripts/deb-test.sh

twin:
	./twin/run.sh arm64 $(TWIN_CUTS)

twin-long:
	./twin/run.sh armhf $(TWIN_LONG_CUTS)
	./twin/run.sh arm64 $(TWIN_LONG_CUTS)

twin-camera:
	./twin/camera.sh test arm64

reliability:
	FUZZTIME=$(FUZZTIME) CRASH_CYCLES=$(CRASH_CYCLES) ./scripts/reliability.sh

fleet-sim:
	mkdir -p $(BIN)
	WICKET_FLEET_SIM=1 WICKET_FLEET_BROKER=$(FLEET_BROKER) WICKET_FLEET_GATES=$(FLEET_GATES) WICKET_FLEET_NATS_CONSUMERS=$(FLEET_NATS_CONSUMERS) WICKET_FLEET_TRUST_QOS=$(FLEET_TRUST_QOS) \
		WICKET_FLEET_REPORT=$(CURDIR)/$(BIN)/fleet-sim-$(FLEET_BROKER).md \
		sh -c '{ $(GO) test -count=1 -v -timeout 60m -run "TestFleetSim$$" ./sync/fleetsim/ 2>&1; echo $$? >$(BIN)/fleet-sim.rc; } | grep -vE "^=== "; exit $$(cat $(BIN)/fleet-sim.rc)'
	./scripts/splice-section.sh docs/fleet-sim.md $(BIN)/fleet-sim-$(FLEET_BROKER).md
	./scripts/splice-section.sh docs/BENCHMARKS.md $(BIN)/fleet-sim-$(FLEET_BROKER).md

clean:
	rm -rf $(BIN) dist
