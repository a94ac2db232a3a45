# jailmgr — build, test, e2e, bench, install.
# sudo resets PATH; find Go where the official tarball puts it too.
GO      ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
PREFIX  ?= /usr/local
DESTDIR ?=
# Where build puts the binaries (install builds there first).
BUILDDIR ?= bin
BIN     := $(BUILDDIR)/jailmgr
INIT    := $(BUILDDIR)/jailmgr-init

# The configuration, store, session state and schroot folders that the
# binary uses when nothing else says, baked in with -X. Left empty, they
# are the code's own (/etc/jailmgr.conf, /var/lib/jailmgr,
# /run/jailmgr/sessions, /etc/schroot). Give GNU's directory variables,
# or each one: make install SETUID=1 SYSCONFDIR=/opt/jm/etc
# LOCALSTATEDIR=/opt/jm/var RUNSTATEDIR=/opt/jm/run. A setuid jailmgr
# takes no JAILMGR_* variable from its caller, so for a setuid install
# this is the only way to move them (test-privilege installs so).
SYSCONFDIR    ?=
LOCALSTATEDIR ?=
RUNSTATEDIR   ?=
CONFFILE      ?= $(if $(SYSCONFDIR),$(SYSCONFDIR)/jailmgr.conf)
STOREDIR      ?= $(if $(LOCALSTATEDIR),$(LOCALSTATEDIR)/lib/jailmgr)
RUNDIR        ?= $(if $(RUNSTATEDIR),$(RUNSTATEDIR)/jailmgr/sessions)
SCHROOTDIR    ?= $(if $(SYSCONFDIR),$(SYSCONFDIR)/schroot)
# One absolute path each, nothing the -ldflags quoting would split.
$(foreach v,CONFFILE STOREDIR RUNDIR SCHROOTDIR,$(if $(strip $($(v))),$(if $(and $(filter /%,$($(v))),$(filter 1,$(words $($(v)))),$(if $(findstring ",$($(v))),,$(if $(findstring ',$($(v))),,ok))),,$(error $(v)="$($(v))" is not one absolute path without quotes))))
PATH_FLAGS := $(if $(strip $(CONFFILE)),-X jailmgr/conf.DefaultPath=$(strip $(CONFFILE))) \
	$(if $(strip $(STOREDIR)),-X jailmgr/store.DefaultDir=$(strip $(STOREDIR))) \
	$(if $(strip $(RUNDIR)),-X jailmgr/session.DefaultRunDir=$(strip $(RUNDIR))) \
	$(if $(strip $(SCHROOTDIR)),-X main.defaultSchrootDir=$(strip $(SCHROOTDIR)))

# The same stamp in jailmgr and its session init, so that jailmgr only ever
# starts the jailmgr-init of its own build. (The init has none of the
# paths: the linker passes over -X of a name a binary does not have.)
BUILD_STAMP := $(shell git describe --always --dirty 2>/dev/null)-$(shell date -u +%Y%m%dT%H%M%S.%N)
STAMP_FLAGS := -ldflags "$(strip -X jailmgr/session.buildStamp=$(BUILD_STAMP) $(PATH_FLAGS))"

.PHONY: build test test-privilege fuzz e2e bench install install-schroot clean

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

# As root, on a machine where adding users is fine (CI): installs jailmgr
# setuid root into a scratch prefix under /var/tmp with its own
# configuration, store, session and schroot folders (make install with the
# paths above), adds two users, and attacks the privilege boundary as them
# (cmd/jailmgr/privtest); every attack must fail. Not part of 'test',
# which would skip it: it adds and removes users and installs a setuid
# binary. PRIVTEST_SRC=DIR installs from another checkout (a baseline).
test-privilege:
	$(GO) vet ./cmd/jailmgr/privtest
	JAILMGR_PRIVTEST=1 $(if $(PRIVTEST_SRC),JAILMGR_PRIVTEST_SRC=$(abspath $(PRIVTEST_SRC))) $(GO) test -count=1 -timeout 8m -v $(PRIVTEST_FLAGS) ./cmd/jailmgr/privtest

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
	CGO_ENABLED=0 $(GO) build -trimpath -tags man -ldflags "$(strip $(PATH_FLAGS))" -o $(BUILDDIR)/jailmgr-man ./cmd/jailmgr
	$(BUILDDIR)/jailmgr-man man $(DESTDIR)$(PREFIX)/share/man/man1

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
