package bootstrap

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"jailmgr/debian/archivetest"
	"jailmgr/store"
)

// failingBootstrap bootstraps pkgs, which must fail, and returns the store
// and the error.
func failingBootstrap(t *testing.T, pkgs []archivetest.Package) (*store.Store, error) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("a full bootstrap chroots and sets file ownership: run as root (CI does)")
	}
	srv := archivetest.Serve(t, &archivetest.Archive{Suite: "bookworm", Codename: "bookworm", Packages: pkgs})
	st := openStore(t)
	o := options(srv)
	_, err := runBootstrap(t, o, st)
	if err == nil {
		t.Fatalf("the bootstrap succeeded; its log:\n%s", o.Log)
	}
	if imgs, _ := st.Images(); len(imgs) != 0 {
		t.Errorf("a failed bootstrap committed %d images", len(imgs))
	}
	if ents, _ := os.ReadDir(filepath.Join(st.Dir, "staging")); len(ents) != 0 {
		t.Errorf("a failed bootstrap left %d entries in staging", len(ents))
	}
	t.Logf("the error:\n%s", err)
	return st, err
}

// TestPostinstFailureNamed: a postinst that fails makes an error that names
// its package and shows what it printed, and the packages that could not
// be configured because of it; the whole log is kept in the store, root's
// alone, until gc removes it a day later.
func TestPostinstFailureNamed(t *testing.T) {
	pkgs := append(minimalSystem(t),
		archivetest.Package{
			Name: "jm-broken", Version: "2.1-3", Priority: "required",
			Files: []archivetest.File{{Path: "/usr/share/doc/jm-broken/README", Data: []byte("x\n")}},
			Control: []archivetest.ControlFile{{Name: "postinst", Data: []byte(
				"#!/bin/sh\necho 'jm-broken: looking for the frobnicator'\necho 'jm-broken: the frobnicator is missing' >&2\nexit 1\n")}},
		},
		archivetest.Package{
			Name: "jm-needs-broken", Priority: "required", Depends: "jm-broken",
			Files: []archivetest.File{{Path: "/usr/share/doc/jm-needs-broken/README", Data: []byte("x\n")}},
		},
	)
	st, err := failingBootstrap(t, pkgs)
	msg := err.Error()
	var ce *ConfigureError
	if !errors.As(err, &ce) || len(ce.Failures) == 0 {
		t.Fatalf("error %q is no ConfigureError naming packages", msg)
	}
	var names []string
	for _, f := range ce.Failures {
		names = append(names, f.Package)
	}
	if !slices.Contains(names, "jm-broken") || !slices.Contains(names, "jm-needs-broken") {
		t.Errorf("failed packages %v, want jm-broken and jm-needs-broken", names)
	}
	for _, want := range []string{"jm-broken", "Setting up jm-broken (2.1-3) ...", "jm-broken: looking for the frobnicator",
		"jm-broken: the frobnicator is missing", "dpkg: error processing package jm-broken (--configure):"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not show %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "Setting up dash") {
		t.Errorf("the error shows other packages' output:\n%s", msg)
	}

	var kept *KeptLogError
	if !errors.As(err, &kept) {
		t.Fatalf("error %q keeps no log", msg)
	}
	if filepath.Dir(kept.Path) != st.LogsDir() || !strings.HasPrefix(filepath.Base(kept.Path), "bootstrap-bookworm-") ||
		!strings.HasSuffix(msg, "\nfull log: "+kept.Path) {
		t.Errorf("log kept at %s, error %q; want logs/bootstrap-bookworm-*.log, named last", kept.Path, msg)
	}
	fi, err := os.Stat(kept.Path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("kept log: %v, mode %v; want 0600", err, fi.Mode())
	}
	if di, err := os.Stat(st.LogsDir()); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("logs folder: %v, want mode 0700", err)
	}
	data, _ := os.ReadFile(kept.Path)
	for _, want := range []string{"Setting up dash", "jm-broken: the frobnicator is missing", "Errors were encountered while processing:"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("the kept log does not hold %q:\n%s", want, data)
		}
	}

	// gc leaves a fresh log alone and removes it once it is a day old.
	rep, err := st.GC(store.GCOptions{Keep: 1})
	if err != nil || rep.Logs != 0 {
		t.Fatalf("gc of a fresh log: %+v, %v; want it kept", rep, err)
	}
	old := time.Now().Add(-25 * time.Hour)
	os.Chtimes(kept.Path, old, old)
	if rep, err = st.GC(store.GCOptions{Keep: 1}); err != nil || rep.Logs != 1 || rep.LogBytes != fi.Size() {
		t.Errorf("gc of a day-old log: %+v, %v; want 1 log of %d bytes", rep, err, fi.Size())
	}
	if _, err := os.Stat(kept.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("gc left the day-old log: %v", err)
	}
}

// TestPreinstFailureNamed: a preinst, which jailmgr runs itself before
// dpkg configures anything, is named when it fails, with its output.
func TestPreinstFailureNamed(t *testing.T) {
	pkgs := append(minimalSystem(t), archivetest.Package{
		Name: "jm-preinst-fails", Priority: "required",
		Files: []archivetest.File{{Path: "/usr/share/doc/jm-preinst-fails/README", Data: []byte("x\n")}},
		Control: []archivetest.ControlFile{{Name: "preinst", Data: []byte(
			"#!/bin/sh\necho \"jm-preinst-fails: refusing to $1\" >&2\nexit 3\n")}},
	})
	_, err := failingBootstrap(t, pkgs)
	msg := err.Error()
	var ce *ConfigureError
	if !errors.As(err, &ce) || len(ce.Failures) != 1 || ce.Failures[0].Package != "jm-preinst-fails" || ce.Failures[0].Script != "preinst" {
		t.Fatalf("error %q does not name the preinst of jm-preinst-fails", msg)
	}
	if !strings.HasPrefix(msg, "configure packages: preinst of jm-preinst-fails failed (exit status 3):") ||
		!strings.Contains(msg, "jm-preinst-fails: refusing to install") {
		t.Errorf("the error does not show the preinst's output:\n%s", msg)
	}
	var kept *KeptLogError
	if !errors.As(err, &kept) {
		t.Errorf("error %q keeps no log", msg)
	}
}

// TestUpdateFailureKeepsLog: an update whose apt fails keeps apt's whole
// log in the store, and says where.
func TestUpdateFailureKeepsLog(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("bootstraps, chroots and mounts overlays: run as root (CI does)")
	}
	if testing.Short() {
		t.Skip("bootstraps an image with apt")
	}
	base, err := archivetest.MinimalSystem("apt", "perl-base", "sed", "grep", "findutils", "diffutils", "mawk", "debianutils")
	if err != nil {
		t.Skipf("cannot repack the host's apt into a test system: %v", err)
	}
	srv := archivetest.Serve(t, &archivetest.Archive{Suite: "bookworm", Codename: "bookworm", Packages: base})
	st := openStore(t)
	o := options(srv)
	o.CustomizeHooks = []string{"cp " + srv.KeyringPath + ` "$1/etc/apt/trusted.gpg.d/jailmgr-test.gpg"`}
	if _, err := runBootstrap(t, o, st); err != nil {
		t.Fatalf("%v\n%s", err, o.Log)
	}
	_, err = Update(context.Background(), st, UpdateOptions{Ref: "test", Include: []string{"jm-no-such-package"}})
	var kept *KeptLogError
	if !errors.As(err, &kept) {
		t.Fatalf("update with a package the archive lacks: %v; want an error that keeps the log", err)
	}
	t.Logf("the error:\n%s", err)
	if filepath.Dir(kept.Path) != st.LogsDir() || !strings.HasPrefix(filepath.Base(kept.Path), "update-test-") ||
		!strings.HasSuffix(err.Error(), "\nfull log: "+kept.Path) {
		t.Errorf("log kept at %s, error %q; want logs/update-test-*.log, named last", kept.Path, err)
	}
	if data, err := os.ReadFile(kept.Path); err != nil || !strings.Contains(string(data), "Unable to locate package jm-no-such-package") {
		t.Errorf("the kept log holds %q, %v", data, err)
	}
	if imgs, _ := st.Images(); len(imgs) != 1 {
		t.Errorf("the failed update left %d versions, want 1", len(imgs))
	}
	if ents, _ := os.ReadDir(filepath.Join(st.Dir, "staging")); len(ents) != 0 {
		t.Errorf("the failed update left %d entries in staging", len(ents))
	}
}
