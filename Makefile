# berth's build and test entry points. Plain `go build ./...` and
# `go test ./...` work without make; these targets add install steps,
# test tiers and flags.

GO      ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
PREFIX  ?= /usr/local
BIN     := bin/berth
COMMIT  := $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS := -s -w -X github.com/berth/berth/internal/version.Commit=$(COMMIT)
UNIT_PKGS = $(shell $(GO) list ./... | grep -v /test/)
DATA_ROOT ?= /var/lib/berth
HOST      ?= unix:///run/berth/berth.sock

export PATH := $(dir $(GO)):$(PATH)

.PHONY: all build build-deps install start stop hello deps test test-nonroot root-test integration conformance lint bench check clean

all: build

# The container init and the user-namespace entry helper are built first,
# static, and embedded in berth
# (internal/ociruntime/initbin; docs/decisions/0090-static-init.md).
# berth itself is linked statically, libseccomp included, with Go's own
# DNS resolver and user lookup (docs/decisions/0095-static-berth.md).
INITBIN := internal/ociruntime/initbin/blob

build:
	CGO_ENABLED=0 GOEXPERIMENT=jsonv2 $(GO) build -trimpath -ldflags '-s -w' -o $(INITBIN)/berth-init ./cmd/berth-init
	sha256sum $(INITBIN)/berth-init | cut -c1-64 >$(INITBIN)/berth-init.id
	$(CC) -static -Os -s -Wall -o $(INITBIN)/berth-nsenter cmd/berth-nsenter/nsenter.c
	sha256sum $(INITBIN)/berth-nsenter | cut -c1-64 >$(INITBIN)/berth-nsenter.id
	$(GO) build -trimpath -tags embedinit,netgo,osusergo -ldflags '$(LDFLAGS) -linkmode external -extldflags "-static"' -o $(BIN) ./cmd/berth

install: build
	install -D -m 0755 $(BIN) $(PREFIX)/bin/berth

# start runs the daemon in the background unless one already answers.
start:
	@scripts/start-daemon.sh $(PREFIX)/bin/berth

stop:
	@if [ -f /run/berth/berth.pid ]; then kill "$$(cat /run/berth/berth.pid)" && echo "berth daemon stopped"; fi

# What building needs beyond Go (libseccomp for cgo), installed when missing.
build-deps:
	@scripts/install-deps.sh build

# README command 1: build, install, start the daemon if needed, run hello.
hello: build-deps install start
	$(PREFIX)/bin/berth run --rm hello

# Every test dependency: Debian packages, then Go tools via the module proxy.
deps:
	@scripts/install-deps.sh

# Unit tier: no root needed; root-only tests skip with a reason.
test:
	BERTH_TEST_ROOT=skip $(GO) test -race -count=1 $(UNIT_PKGS)

# The unit tier again as user nobody (from root): proves it needs no root.
test-nonroot:
	@GO=$(GO) scripts/test-nonroot.sh

# Root tier: namespaces, mounts, cgroups. Fails (never skips) without root.
root-test:
	BERTH_TEST_ROOT=require $(GO) test -count=1 $(UNIT_PKGS)

# Integration tier: a real daemon through client/, and the real docker CLI.
integration: build
	BERTH_TEST_ROOT=require BERTH_BINARY=$(CURDIR)/$(BIN) $(GO) test -count=1 ./test/...

# Conformance tier: third-party suites for the parts that exist.
conformance: build
	@scripts/conformance.sh $(CURDIR)/$(BIN)

lint:
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	@out=$$(gofmt -l cmd api client internal test); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) mod tidy -diff

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(UNIT_PKGS)

# README command 2: install every test dependency, then run every tier.
check: deps lint test test-nonroot root-test integration conformance

clean:
	rm -rf bin $(INITBIN)/berth-init $(INITBIN)/berth-init.id $(INITBIN)/berth-nsenter $(INITBIN)/berth-nsenter.id
