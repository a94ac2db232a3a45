package store

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestOpenClosesStoreToOthers(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("tightening an existing store and attacking it as another user need root; CI runs as root")
	}
	dir := filepath.Join(t.TempDir(), "store")
	// The test's temporary folders are 0700: open them, so that only the
	// store's own modes stand between other users and its files.
	for d := filepath.Dir(dir); d != filepath.Clean(os.TempDir()) && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	// A store as older versions left it: everything 0755, an image root
	// with a setuid-root program.
	suid := filepath.Join(dir, "images", "deb", "1", "rootfs", "usr", "bin", "su")
	for _, d := range []string{filepath.Dir(suid), filepath.Join(dir, "persist", "j", "upper"), filepath.Join(dir, "sessions", "s", "upper"), filepath.Join(dir, "tags", "deb"), filepath.Join(dir, "cache", "debs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(suid, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(suid, os.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range storeFolders {
		fi, err := os.Stat(filepath.Join(s.Dir, d))
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, %v; want 0700", filepath.Join(s.Dir, d), fi.Mode(), err)
		}
	}
	// Another user reaches nothing: not the image's setuid program, not
	// the upper dirs of sessions, not the cache.
	for _, p := range []string{suid, filepath.Join(dir, "images"), filepath.Join(dir, "persist", "j", "upper"), filepath.Join(dir, "sessions", "s"), filepath.Join(dir, "cache", "debs")} {
		cmd := exec.Command("stat", p)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "Permission denied") {
			t.Errorf("uid 65534: stat %s: %v %s", p, err, out)
		}
	}
	// What the store makes from now on is root's alone too.
	stg, err := s.NewStaging()
	if err != nil {
		t.Fatal(err)
	}
	img, err := stg.Commit("fresh", &Manifest{Suite: "bookworm"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Tag(img.Ref(), "fresh:stable"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Dir(img.Dir), img.Dir, filepath.Join(s.Dir, "tags", "fresh")} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, %v; want 0700", d, fi.Mode(), err)
		}
	}
	if fi, err := os.Stat(img.RootFS()); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("the image's root: %v, %v; want 0755 (it is the jail's /)", fi.Mode(), err)
	}
}
