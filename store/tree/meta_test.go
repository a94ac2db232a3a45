package tree

import (
	"archive/tar"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestChtimesStaysInside(t *testing.T) {
	r, rootDir, outside := setup(t)
	for _, h := range []*tar.Header{entry(tar.TypeDir, "d/", ""), entry(tar.TypeSymlink, "out", outside), entry(tar.TypeSymlink, "d/link", "../d")} {
		if err := write(r, h, ""); err != nil {
			t.Fatal(err)
		}
	}
	when := time.Unix(1000, 5)
	if err := r.Chtimes("d", when); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(rootDir, "d")); !fi.ModTime().Equal(when) {
		t.Errorf("d has time %v, want %v", fi.ModTime(), when)
	}
	// A symlink's own time is set, not its target's.
	if err := r.Chtimes("d/link", time.Unix(2000, 0)); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(rootDir, "d")); !fi.ModTime().Equal(when) {
		t.Errorf("Chtimes followed the symlink d/link")
	}
	before, _ := os.Stat(outside)
	for _, name := range []string{"out/secret", "../outside", "/etc"} {
		if err := r.Chtimes(name, time.Unix(0, 0)); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("Chtimes(%s) = %v, want ErrUnsafePath", name, err)
		}
	}
	if after, _ := os.Stat(outside); !after.ModTime().Equal(before.ModTime()) {
		t.Error("a folder outside the root changed time")
	}
}

func TestSetXattr(t *testing.T) {
	r, rootDir, outside := setup(t)
	for _, h := range []*tar.Header{entry(tar.TypeReg, "f", ""), entry(tar.TypeSymlink, "out", outside), entry(tar.TypeSymlink, "l", "f")} {
		if err := write(r, h, "x"); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.SetXattr("f", "user.test", []byte("v")); err != nil {
		t.Skipf("no user xattrs here: %v", err)
	}
	buf := make([]byte, 8)
	if n, err := unix.Getxattr(filepath.Join(rootDir, "f"), "user.test", buf); err != nil || string(buf[:n]) != "v" {
		t.Errorf("user.test = %q, %v", buf[:n], err)
	}
	if err := r.SetXattr("l", "user.test", []byte("v")); !errors.Is(err, ErrUnsupported) {
		t.Errorf("SetXattr on a symlink = %v, want ErrUnsupported", err)
	}
	if err := r.SetXattr("out/secret", "user.test", []byte("v")); !errors.Is(err, ErrUnsafePath) {
		t.Errorf("SetXattr through an escaping symlink = %v, want ErrUnsafePath", err)
	}
	if _, err := unix.Getxattr(filepath.Join(outside, "secret"), "user.test", buf); err == nil {
		t.Error("a file outside the root got the attribute")
	}
}
