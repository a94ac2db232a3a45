# jailmgr — build, test, e2e, bench, install.
# sudo resets PATH; find Go where the official tarball puts it too.
GO      ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
PREFIX  ?= /usr/local
DESTDIR ?=
BIN     := bin/jailmgr
INIT    := bin/jailmgr-init
# The same stamp in jailmgr and its session init, so that jailmgr only ever
# starts the jailmgr-init of its own build.
BUILD_STAMP := $(shell git describe --always --dirty 2>/dev/null)-$(shell date -u +%Y%m%dT%H%M%S.%N)
STAMP_FLAGS := -ldflags "-X jailmgr/session.buildStamp=$(BUILD_STAMP)"

.PHONY: build test fuzz e2e bench install install-schroot clean

# Static and without cgo: the session init re-executes this binary inside
# jails, where the host's libc may not exist. jailmgr-init is the session
# init alone (the session code without the bootstrap's), which starts in
# half the time; jailmgr runs that role itself where it is missing.
build:
	CGO_ENABLED=0 $(GO) build -trimpath $(STAMP_FLAGS) -o $(BIN) ./cmd/jailmgr
	CGO_ENABLED=0 $(GO) build -trimpath -tags jailmgr_init $(STAMP_FLAGS) -o $(INIT) ./cmd/jailmgr-init

# Hermetic: generated archives served on loopback. As root, the privileged
# tests (unpack ownership, chroot configure, full bootstraps) run too.
test: build
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	$(MAKE) fuzz FUZZTIME=$${FUZZTIME:-5s}

# Each fuzz target briefly (go test -fuzz takes one target per run).
FUZZTIME ?= 5s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$t ($(FUZZTIME))"; \
	    out=$$($(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s $$pkg 2>&1) || { echo "$$out" | tail -n 40; exit 1; }; \
	  done; \
	done

# Against the real archives (network). Mirrors come from the host's apt
# sources and, for Ubuntu, from debootstrap's suite scripts, at run time.
e2e: build
	bash scripts/e2e.sh

# Side by side with debootstrap and mmdebstrap, through a loopback caching mirror.
bench: build
	bash scripts/bench.sh

# SETUID=1 installs jailmgr setuid root, as schroot is, so that users open
# sessions in the jails the configuration grants them (see README, "The
# privilege model").
SETUID ?= 0

install: build
	install -D -m $(if $(filter 1,$(SETUID)),4755,0755) $(BIN) $(DESTDIR)$(PREFIX)/bin/jailmgr
	install -d -m 0755 $(DESTDIR)$(PREFIX)/lib/jailmgr
	install -m 0755 $(INIT) $(DESTDIR)$(PREFIX)/lib/jailmgr/jailmgr-init
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d $(DESTDIR)$(PREFIX)/share/man/man1
	$(BIN) completion bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/jailmgr
	$(BIN) completion zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_jailmgr
	$(BIN) completion fish > $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/jailmgr.fish
	CGO_ENABLED=0 $(GO) build -trimpath -tags man -o bin/jailmgr-man ./cmd/jailmgr
	bin/jailmgr-man man $(DESTDIR)$(PREFIX)/share/man/man1

# schroot's command line: a "schroot" link to jailmgr, made on request and
# never over (or in front of, on PATH) a schroot that is not jailmgr.
install-schroot: install
	@link=$(DESTDIR)$(PREFIX)/bin/schroot; \
	if [ -e "$$link" ] && [ "$$(readlink "$$link")" != jailmgr ]; then \
	  echo "$$link exists and is not jailmgr: left alone" >&2; exit 1; fi; \
	other=$$(command -v schroot || true); \
	if [ -n "$$other" ] && [ "$$other" != "$$link" ] && [ "$$(readlink -f "$$other")" != "$$(readlink -f $(DESTDIR)$(PREFIX)/bin/jailmgr)" ]; then \
	  echo "schroot is installed ($$other): jailmgr will not stand in front of it" >&2; exit 1; fi; \
	ln -sfn jailmgr "$$link" && echo "$$link -> jailmgr"

clean:
	rm -rf bin
