# jailmgr — build, test, e2e, bench, install.
# sudo resets PATH; find Go where the official tarball puts it too.
GO      ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
PREFIX  ?= /usr/local
DESTDIR ?=
BIN     := bin/jailmgr

.PHONY: build test fuzz e2e bench install clean

# Static and without cgo: the session init re-executes this binary inside
# jails, where the host's libc may not exist.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/jailmgr

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
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s $$pkg >/dev/null; \
	  done; \
	done

# Against the real archives (network). Mirrors come from the host's apt
# sources and, for Ubuntu, from debootstrap's suite scripts, at run time.
e2e: build
	bash scripts/e2e.sh

# Side by side with debootstrap and mmdebstrap, through a loopback caching mirror.
bench: build
	bash scripts/bench.sh

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/jailmgr
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d $(DESTDIR)$(PREFIX)/share/man/man1
	$(BIN) completion bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/jailmgr
	$(BIN) completion zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_jailmgr
	$(BIN) completion fish > $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/jailmgr.fish
	$(BIN) man $(DESTDIR)$(PREFIX)/share/man/man1

clean:
	rm -rf bin
